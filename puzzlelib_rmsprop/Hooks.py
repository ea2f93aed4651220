"""Optimizer hooks, called as ``hook(var, state, stream=None)`` for every variable before the update."""
import numpy as np

from .Backend import getBackend


class Hook:
	def __call__(self, var, state, stream=None):
		raise NotImplementedError()


class WeightDecay(Hook):
	"""L2 weight decay, PuzzleLib's: ``grad -= rate * var.wc * param`` for each variable with ``wc > 0``.

	Works in global state too (PuzzleLib loses ``wc`` there). float32 variables only, as in PuzzleLib."""

	def __init__(self, rate: float):
		self.rate = rate

	def __call__(self, var, state, stream=None):
		if var.wc > 0.0:
			if var.grad.dtype != np.float32:
				raise TypeError("WeightDecay supports float32 variables, got %s" % var.grad.dtype)
			getBackend().decayGrad(var.grad, var.data, self.rate * var.wc, stream=stream)
