"""Allowed values of hyperparameters and options, checked whenever one is set (constructor, assignment, setAttr,
load)."""
import math
import numbers

import numpy as np

from .Errors import OptimizerError, OptimizerTypeError

#: the kernels take hyperparameters as float32: a larger value would arrive as inf
FLOAT32_MAX = float(np.finfo(np.float32).max)


class Range:
	"""A closed or half-open interval of finite real numbers (NaN and inf are never in it, nor a value that float32,
	the kernels' type, cannot hold); ``integer``: integers only."""

	def __init__(self, low: float, high: float = math.inf, highOpen: bool = False, lowOpen: bool = False,
				 integer: bool = False):
		self.low, self.high, self.lowOpen, self.highOpen, self.integer = low, high, lowOpen, highOpen, integer

	def __str__(self):
		return "%s%g, %g%s" % ("(" if self.lowOpen else "[", self.low, self.high, ")" if self.highOpen or math.isinf(self.high) else "]")

	def check(self, owner: str, name: str, value) -> None:
		"""Raises OptimizerError (OptimizerTypeError for a non-number) naming ``owner.name`` and the value."""
		if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
			raise OptimizerTypeError("%s.%s must be a real number, got %r" % (owner, name, value))
		if self.integer and not isinstance(value, numbers.Integral):
			raise OptimizerTypeError("%s.%s must be an integer, got %r" % (owner, name, value))

		value = float(value)
		inside = (value > self.low if self.lowOpen else value >= self.low) and \
			(value < self.high if self.highOpen else value <= self.high)
		if not inside:  # also NaN
			raise OptimizerError("%s.%s must be in %s, got %r" % (owner, name, self, value))
		if not math.isfinite(value):
			raise OptimizerError("%s.%s must be finite, got %r" % (owner, name, value))
		if abs(value) > FLOAT32_MAX and not self.integer:
			raise OptimizerError("%s.%s = %r does not fit float32 (the kernels' type): it would be inf" % (owner, name, value))

	@staticmethod
	def coerce(value):
		return float(value)


class Flag:
	"""True or False (also numpy's bool, 0 and 1); anything else, a string included, is refused."""

	def __str__(self):
		return "True or False"

	def check(self, owner: str, name: str, value) -> None:
		if isinstance(value, (bool, np.bool_)) or isinstance(value, numbers.Integral) and value in (0, 1):
			return
		raise OptimizerTypeError("%s.%s must be True or False, got %r" % (owner, name, value))

	@staticmethod
	def coerce(value):
		return bool(value)


class StateBits:
	"""None (full-width state) or 8 (8-bit codes)."""

	def check(self, owner: str, name: str, value) -> None:
		if value is not None and (isinstance(value, (bool, np.bool_)) or value != 8):
			raise OptimizerError("%s.%s must be None (full-width state) or 8, got %r" % (owner, name, value))

	@staticmethod
	def coerce(value):
		return None if value is None else 8


class Option:
	"""An option (not carried by checkpoints), checked by ``rule`` on every assignment, constructor included.

	- ``fixed``: it shapes the state, so it is given to the constructor only (a later different value is refused);
	- ``fixedAfterSetup``: it only matters at setupOn (a start value), so it cannot change afterwards;
	- ``needsState``: turning it on after setupOn needs that state; refused (pass it to the constructor) where the
	  state was not created."""

	def __init__(self, rule, fixed: bool = False, fixedAfterSetup: bool = False, needsState: str = None):
		self.rule, self.fixed, self.fixedAfterSetup, self.needsState = rule, fixed, fixedAfterSetup, needsState

	def apply(self, opt, name: str, value):
		"""The value to store, or OptimizerError (nothing changed)."""
		owner, current = type(opt).__name__, opt.__dict__
		self.rule.check(owner, name, value)
		value = self.rule.coerce(value)
		if name not in current:
			return value  # the constructor's first assignment

		if value != current[name]:
			if self.fixed:
				raise OptimizerError("%s.%s cannot change after construction (it shapes the state): pass %s=%r to the "
									 "constructor of a new optimizer" % (owner, name, name, value))
			if self.fixedAfterSetup and current.get("module") is not None:
				raise OptimizerError("%s.%s is a start value, used at setupOn only: pass %s=%r to the constructor of a "
									 "new optimizer" % (owner, name, name, value))
		if self.needsState and value and current.get("module") is not None and _lacksState(opt, self.needsState):
			raise OptimizerError("%s.%s=%r needs the state %r, which setupOn did not create: pass %s=%r to the "
								 "constructor" % (owner, name, value, self.needsState, name, value))
		return value


def _lacksState(opt, key: str) -> bool:
	stores = list(opt.globalStates.values()) if opt.globalState else list(opt.states.values())
	return any(key not in store for store in stores)


def checkMultiplier(name: str, value, which: str = "learnRate") -> None:
	"""A variable's learnRate or momRate multiplier: any finite real (learnRate <= 0 freezes it, as in PuzzleLib)."""
	if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
		raise OptimizerError("variable %r: %s multiplier must be a finite number, got %r" % (name, which, value))
