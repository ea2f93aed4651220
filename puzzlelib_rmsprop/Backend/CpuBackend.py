"""The CPU backend: NumPy arrays with pycuda's GPUArray surface, updated by the host kernels (C extension)."""
import platform

import numpy as np

from .. import Config
from ..Errors import BackendError
from .HostArray import hostArray
from .TensorTable import LaunchTable
from .dtypes import DTYPES, bfloat16

#: dtype -> code understood by kernels/rmsprop_host.h
DTYPE_CODES = {np.dtype(np.float32): 0, np.dtype(np.float16): 1}
#: (parameter dtype, state dtype) -> RMSPROP_FLAVOUR_* in kernels/rmsprop_host.h
FLAVOUR_COMBOS = {
	(np.dtype(np.float32), np.dtype(np.float32)): 0, (np.dtype(np.float16), np.dtype(np.float16)): 1,
	(np.dtype(np.float16), np.dtype(np.float32)): 2,
}
if bfloat16 is not None:
	DTYPE_CODES[np.dtype(bfloat16)] = 2
	FLAVOUR_COMBOS.update({(np.dtype(bfloat16), np.dtype(bfloat16)): 3, (np.dtype(bfloat16), np.dtype(np.float32)): 4})


class GPUArray(np.ndarray):
	"""A NumPy array that also answers pycuda's GPUArray calls (get, set, ptr), so code written for the
	CUDA backend runs unchanged on the CPU. Slices, ravel() and reshape() are views, as on the GPU."""

	def get(self) -> np.ndarray:
		"""A host copy, as a plain ndarray."""
		return np.array(self, copy=True).view(np.ndarray)

	def set(self, ary) -> None:
		"""Copies ``ary`` (same size, same dtype) into this array in place."""
		ary = np.asarray(ary)
		if ary.size != self.size or ary.dtype != self.dtype:
			raise ValueError("set: got %s %s for an array of %s %s" % (ary.shape, ary.dtype, self.shape, self.dtype))
		np.copyto(self, ary.reshape(self.shape))

	@property
	def ptr(self) -> int:
		"""The address of the first element."""
		return self.__array_interface__["data"][0]

	@property
	def gpudata(self) -> int:
		return self.ptr


def to_gpu(ary) -> GPUArray:
	"""A new array holding a contiguous copy of ``ary``."""
	return np.array(ary, copy=True, order="C").view(GPUArray)


def empty(shape, dtype=np.float32) -> GPUArray:
	return np.empty(shape, dtype=dtype).view(GPUArray)


def zeros(shape, dtype=np.float32) -> GPUArray:
	return np.zeros(shape, dtype=dtype).view(GPUArray)


def dtypesSupported():
	"""(dtype, atol) pairs, as PuzzleLib's gpuarray.dtypesSupported(): bfloat16 too where ml_dtypes is installed."""
	return list(DTYPES)


def pointerOf(ary) -> int:
	"""The address of a host array: ours, a NumPy array, or anything with ``ptr`` (PuzzleLib's CPUArray)."""
	if isinstance(ary, np.ndarray):
		return ary.__array_interface__["data"][0]
	return int(ary.ptr)


def cpuModel() -> str:
	"""The processor's marketing name where Linux tells it, else the architecture."""
	try:
		with open("/proc/cpuinfo") as f:
			for line in f:
				if line.startswith("model name"):
					return line.split(":", 1)[1].strip()
	except OSError:
		pass
	return platform.processor() or platform.machine()


class CpuBackend:
	"""Runs the update through the C extension, one call per dtype per step."""

	name = "cpu"

	def __init__(self):
		try:
			from . import _cpukernels
		except ImportError as e:
			raise BackendError(
				"the CPU kernels (puzzlelib_rmsprop.Backend._cpukernels) are not built: reinstall with "
				"'pip install .' from the source tree (%s)" % e
			) from e

		self.kernels = _cpukernels
		self.deviceName = "%s, %d threads%s" % (
			cpuModel(), _cpukernels.maxThreads(),
			"" if _cpukernels.threaded() else " (built without threads)"
		)

	to_gpu, empty, zeros, GPUArray = staticmethod(to_gpu), staticmethod(empty), staticmethod(zeros), GPUArray
	pointerOf, dtypesSupported = staticmethod(pointerOf), staticmethod(dtypesSupported)

	@staticmethod
	def viewLike(template, view):
		"""``view`` (of a global-state buffer) as an array of ``template``'s kind, so the module that owned
		``template`` keeps computing on it: NumPy-based arrays as they are, PuzzleLib's CPUArray wrapped."""
		if isinstance(template, np.ndarray):
			return view
		return type(template)(view.shape, view.dtype, data=view.view(np.ndarray), acquire=True)

	def zerosLike(self, template):
		"""The allocator of the global-state buffers: ours (``viewLike`` dresses the views as ``template``)."""
		return self.zeros

	@staticmethod
	def checkPlacement(name: str, ary) -> None:
		"""Host memory is reachable from anywhere."""

	def isOwnArray(self, ary) -> bool:
		"""Whether ``ary`` lives where this backend computes (host memory)."""
		return isinstance(ary, np.ndarray) or isinstance(getattr(ary, "data", None), np.ndarray)

	@staticmethod
	def prepareTable(rows: np.ndarray, dtype) -> LaunchTable:
		"""The table as the kernels read it: on the CPU, the NumPy rows themselves."""
		return LaunchTable(rows, dtype, address=rows.__array_interface__["data"][0], code=DTYPE_CODES[np.dtype(dtype)])

	@staticmethod
	def refreshTable(table: LaunchTable) -> None:
		"""Nothing to do: the kernels read the NumPy rows in place."""

	def rmsprop(self, table: LaunchTable, f, stream=None) -> None:
		"""PuzzleLib's RMSProp (``f.factor``, ``f.epsilon`` of the Flavour ``f``) for every row of ``table``."""
		self.kernels.rmsprop(table.address, len(table.rows), table.code, f.struct, int(Config.cpuThreads))

	def flavour(self, table: LaunchTable, stateDtype, f, stream=None) -> None:
		"""The flavour update (RMSProp options, RMSPropGraves) for every row of ``table``."""
		combo = FLAVOUR_COMBOS[(table.dtype, np.dtype(stateDtype))]
		self.kernels.flavour(table.address, len(table.rows), combo, f.struct, int(Config.cpuThreads))

	def puzzlelib(self, table: LaunchTable, f, joined: bool, stream=None) -> None:
		"""arithmetic="puzzlelib": PuzzleLib's own kernel for every row of ``table`` (one single-threaded loop per
		row, or per run of rows with ``joined``), compiled here at first use (Backend/PuzzleLibArithmetic.py)."""
		from .PuzzleLibArithmetic import puzzlelibRows
		puzzlelibRows(table.address, len(table.rows), f, joined)

	def quant8(self, table: LaunchTable, f, stream=None) -> None:
		"""The update with 8-bit state (any flavour) for every row of ``table`` (Quant8Entry rows)."""
		self.kernels.quant8(table.address, len(table.rows), table.code, f.struct, int(Config.cpuThreads))

	def anyNonFinite(self, tables) -> bool:
		"""Whether any grad in the tables holds inf or NaN (a vectorized, threaded pass over the grads)."""
		threads = int(Config.cpuThreads)
		return any(self.kernels.nonFinite(t.address, len(t.rows), t.code, threads) for t in tables)

	@staticmethod
	def fill(ary, value, stream=None) -> None:
		"""Fills a host array (ours, NumPy's or PuzzleLib's CPUArray) with ``value``."""
		ary.fill(value)

	@staticmethod
	def divide(ary, divisor: int, stream=None) -> None:
		"""``ary /= divisor`` in place (np.divide, in the array's dtype)."""
		host = hostArray(ary)
		np.divide(host, host.dtype.type(divisor), out=host)

	@staticmethod
	def decayGrad(grad, param, rate: float, stream=None) -> None:
		"""grad -= rate * param, in float32 (PuzzleLib's WeightDecay hook)."""
		g = hostArray(grad)
		g -= np.float32(rate) * hostArray(param)

	@staticmethod
	def streams(count: int):
		"""The CPU has no streams: one None per requested stream."""
		return [None] * count

	@staticmethod
	def synchronize(streams) -> None:
		pass

