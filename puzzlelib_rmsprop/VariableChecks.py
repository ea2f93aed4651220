"""What every array a launch reads or writes must be: the backend's own, of a supported dtype, contiguous, of
the variable's shape, and memory no other variable's array overlaps."""
import numpy as np

from .Backend.PuzzleLibArrays import isContiguous
from .Errors import OptimizerError, OptimizerTypeError


def checkVariable(name: str, var, backend) -> None:
	"""Raises OptimizerError if ``var`` cannot be updated by this optimizer."""
	data, grad = var.data, var.grad
	supported = [np.dtype(d) for d, _ in backend.dtypesSupported()]

	if grad is None:
		raise OptimizerError("variable %r has no grad" % name)
	if not backend.isOwnArray(data) or not backend.isOwnArray(grad):
		raise OptimizerTypeError("variable %r: data and grad must be %s backend arrays, got %s and %s" % (
			name, backend.name, type(data).__name__, type(grad).__name__
		))
	if np.dtype(data.dtype) not in supported:
		raise OptimizerTypeError("variable %r has dtype %s; supported: %s" % (name, data.dtype, [str(d) for d in supported]))
	if tuple(grad.shape) != tuple(data.shape) or grad.dtype != data.dtype:
		raise OptimizerError("variable %r: grad is %s %s but data is %s %s" % (
			name, tuple(grad.shape), grad.dtype, tuple(data.shape), data.dtype
		))
	for role, ary in (("data", data), ("grad", grad)):
		if not isContiguous(ary):
			raise OptimizerError("variable %r: %s is not contiguous" % (name, role))
		backend.checkPlacement(name, ary)


def checkNoSharing(named, backend) -> None:
	"""Raises OptimizerError if two of the arrays (``[(variable name, role, array)]``) overlap in memory: their
	rows would race in one launch."""
	spans = sorted((backend.pointerOf(ary), int(ary.nbytes), name, role) for name, role, ary in named if ary.nbytes)
	for (a, n, name, role), (b, _, other, otherRole) in zip(spans, spans[1:]):
		if b < a + n:
			raise OptimizerError("variable %r: its %s shares memory with the %s of variable %r; give each variable "
								 "arrays of its own (or use useGlobalState=True, which copies them)" % (other, otherRole, role, name))
