"""Allowed ranges of hyperparameters, checked whenever one is set (constructor, assignment, setAttr, load)."""
import math
import numbers

from .Errors import OptimizerError, OptimizerTypeError


class Range:
	"""A closed or half-open interval of real numbers; NaN is never in it."""

	def __init__(self, low: float, high: float = math.inf, highOpen: bool = False, lowOpen: bool = False):
		self.low, self.high, self.lowOpen, self.highOpen = low, high, lowOpen, highOpen

	def __str__(self):
		return "%s%g, %g%s" % ("(" if self.lowOpen else "[", self.low, self.high, ")" if self.highOpen or math.isinf(self.high) else "]")

	def check(self, owner: str, name: str, value) -> None:
		"""Raises OptimizerError (OptimizerTypeError for a non-number) naming ``owner.name`` and the value."""
		if isinstance(value, bool) or not isinstance(value, numbers.Real):
			raise OptimizerTypeError("%s.%s must be a real number, got %r" % (owner, name, value))

		value = float(value)
		inside = (value > self.low if self.lowOpen else value >= self.low) and \
			(value < self.high if self.highOpen else value <= self.high)
		if not inside:  # also NaN
			raise OptimizerError("%s.%s must be in %s, got %r" % (owner, name, self, value))


def checkMultiplier(name: str, value, which: str = "learnRate") -> None:
	"""A variable's learnRate or momRate multiplier: any finite real (learnRate <= 0 freezes it, as in PuzzleLib)."""
	if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
		raise OptimizerError("variable %r: %s multiplier must be a finite number, got %r" % (name, which, value))
