"""Kernel entry points in PuzzleLib's style: ``rmspropKer(dtype)(param, grad, ms, learnRate, factor, epsilon)``.

Memoized per dtype (and backend). ``param``, ``grad`` and ``ms`` are either three arrays (one tensor) or three
TensorLists (one launch for all of them, with one learnRate per tensor).
"""
import numpy as np

from .Backend import getBackend
from .Backend.TensorTable import TensorList
from .Errors import OptimizerError


def asTensorList(tensors, backend) -> TensorList:
	return tensors if isinstance(tensors, TensorList) else TensorList([tensors], backend.pointerOf)


def _makeRmspropKer(dtype: np.dtype, backend):
	def rmsprop(param, grad, ms, learnRate, factor, epsilon, stream=None):
		params = asTensorList(param, backend)
		if params.dtype != dtype:
			raise OptimizerError("rmspropKer(%s) was given %s tensors" % (dtype, params.dtype))

		table = params.launchTable(backend, asTensorList(grad, backend), asTensorList(ms, backend), learnRate)
		backend.rmsprop(table, factor, epsilon, stream=stream)

		if params is not param:
			# a table built for this call only: its device copy must outlive the asynchronous launch
			backend.synchronize([stream])

	return rmsprop


_kernels = {}


def rmspropKer(dtype):
	"""The fused RMSProp update for ``dtype`` (float32 or float16) on the current backend, memoized."""
	backend = getBackend()
	kernel = _kernels.get((dtype, backend))

	if kernel is None:
		normalized = np.dtype(dtype)
		if normalized not in [np.dtype(d) for d, _ in backend.dtypesSupported()]:
			raise OptimizerError("RMSProp supports %s tensors, not %s" % (
				", ".join(str(np.dtype(d)) for d, _ in backend.dtypesSupported()), normalized))
		kernel = _kernels[(dtype, backend)] = _makeRmspropKer(normalized, backend)

	return kernel
