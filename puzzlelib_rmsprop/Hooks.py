"""Optimizer hooks. As PuzzleLib calls them: in local state ``hook(var, state, stream)`` for every variable, in global
state ``hook(globalVar, state)`` once per dtype on the packed buffer. A hook whose ``eachVariable`` is True is called
per variable in global state too, on the variables' views of the buffer."""
import numpy as np

from .Backend import getBackend


class Hook:
	#: called per variable in global state as well (instead of once per dtype on the packed buffer)
	eachVariable = False

	def __call__(self, var, state, stream=None):
		raise NotImplementedError()


class WeightDecay(Hook):
	"""L2 weight decay, PuzzleLib's: ``grad -= rate * var.wc * param`` for each variable with ``wc > 0``.

	Works in global state too (PuzzleLib loses ``wc`` there): it is called per variable in both modes
	(``eachVariable``), so each variable's own ``wc`` applies. float32 variables only, as in PuzzleLib."""

	eachVariable = True

	def __init__(self, rate: float):
		self.rate = rate

	def __call__(self, var, state, stream=None):
		if var.wc > 0.0:
			if var.grad.dtype != np.float32:
				raise TypeError("WeightDecay supports float32 variables, got %s" % var.grad.dtype)
			getBackend().decayGrad(var.grad, var.data, self.rate * var.wc, stream=stream)
