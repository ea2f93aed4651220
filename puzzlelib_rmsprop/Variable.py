"""PuzzleLib's Variable: a trainable tensor, its gradient and its per-variable multipliers."""
from typing import Callable, Optional

from .Backend import gpuarray


class Variable:
	"""``data`` and ``grad`` arrays, plus ``learnRate`` (a multiplier of the optimizer's; 0 freezes it),
	``momRate`` and ``wc`` (the weight-decay coefficient a WeightDecay hook uses).

	A variable with an ``updater`` is updated by it (``update(learnRate)``) instead of by the optimizer."""

	index = 0

	def __init__(self, data, name: Optional[str] = None, withgrad: bool = True, grad=None,
				 updater: Optional[Callable] = None, postUpdater: Optional[Callable] = None):
		if name is None:
			self.name = str(type(self).index)
			type(self).index += 1
		else:
			self.name = name

		self.data = data
		self.updater = updater
		self.postUpdater = postUpdater

		self.grad = grad
		if grad is None and withgrad and updater is None:
			self.grad = gpuarray.zeros(shape=data.shape, dtype=data.dtype)

		self.learnRate, self.momRate = 1.0, 1.0
		self.wc = 0.0

	@property
	def hasUpdater(self) -> bool:
		return self.updater is not None

	@property
	def hasPostUpdater(self) -> bool:
		return self.postUpdater is not None

	def update(self, learnRate: float) -> None:
		"""Runs the variable's own updater."""
		self.updater(self, learnRate)

	def postUpdate(self) -> None:
		self.postUpdater(self)

	def set(self, variable: "Variable") -> None:
		"""Copies another variable's data (and grad) into this one."""
		self.data.set(variable.data)
		if self.grad is not None:
			self.grad.set(variable.grad)
