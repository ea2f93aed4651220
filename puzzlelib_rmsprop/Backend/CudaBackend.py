"""The CUDA backend: pycuda GPUArrays, updated by kernels/rmsprop.cu compiled by nvcc (through pycuda's compiler).

Importing this module needs pycuda (the ``cuda`` extra); creating the backend needs a driver, a device and an nvcc
that can compile for it (CudaBuild): the kernels are compiled, or loaded from the cache, when the backend is created.
"""
import sys
from functools import cached_property, lru_cache
from typing import Optional

import numpy as np

from .. import Config
from ..Errors import BackendError, OptimizerError
from .CudaBuild import UnusableDevice, deviceImage
from .CudaContext import ThreadContexts, onBackendThread
from .CudaOccupancy import blocksPerSM
from .PuzzleLibArrays import emptyLike, isPuzzleLibCudaArray
from .dtypes import DTYPES, bfloat16
from .kernelSource import kernelDir
from .TensorTable import PACKET_BYTES, LaunchTable

BLOCK = 256          # RMSPROP_BLOCK in kernels/rmsprop.cu
#: tables of at most this many rows take the plain kernels that walk every row (rmspropFloat32: the row is the whole
#: grid's, in uniform registers, 32 registers on sm_90); larger ones the kernels whose threads find their own rows
#: (rmspropFloat32Rows, 57 registers) so that no thread reads every row of a table of many (kernels/multi_tensor_apply.cuh)
FEW_ROWS = 8

KERNEL_NAMES = {np.dtype(np.float32): "Float32", np.dtype(np.float16): "Float16"}
if bfloat16 is not None:
	KERNEL_NAMES[np.dtype(bfloat16)] = "Bfloat16"


def plainKernel(prefix: str, rows: int, dtype) -> str:
	"""The plain kernel (``prefix`` rmsprop, nonFinite or the benchmark's trafficLimit) for a table of ``rows``."""
	return prefix + KERNEL_NAMES[np.dtype(dtype)] + ("Rows" if rows > FEW_ROWS else "")


def importPycuda():
	"""pycuda's driver and gpuarray modules, or a BackendError that says which part is missing."""
	try:
		import pycuda
	except ImportError as e:
		raise BackendError("pycuda is not installed (pip install 'puzzlelib_rmsprop[cuda]'): %s" % e) from e

	try:
		import pycuda.driver as driver
		import pycuda.gpuarray as gpuarray
	except ImportError as e:
		raise BackendError("pycuda %s cannot load the CUDA driver library (no NVIDIA driver?): %s" % (
			pycuda.VERSION_TEXT, e
		)) from e

	return driver, gpuarray


def compileOptions():
	"""nvcc options: --fmad=false keeps the results bit-identical to the host kernels (it costs nothing here:
	the update is memory-bound)."""
	return ["--fmad=false", "-O3"]


def compileKernels(arch: str, source: str = "rmsprop.cu"):
	"""The cubin bytes of every kernel of kernels/``source`` for ``arch`` (e.g. "sm_90"), uncached (the SASS
	checks; the backend builds through CudaBuild)."""
	from pycuda import compiler

	text = (kernelDir() / source).read_text()
	return compiler.compile(text, arch=arch, no_extern_c=True, include_dirs=[str(kernelDir())], options=compileOptions())


@lru_cache(maxsize=None)
def arrayClass(backend):
	"""A subclass of pycuda's GPUArray (made once pycuda is imported) whose ``fill`` is the backend's."""

	class GPUArray(backend.gpuarray.GPUArray):
		__doc__ = backend.gpuarray.GPUArray.__doc__

		def fill(self, value, stream=None):
			"""Fills the array with ``value`` (any dtype, float16 and bfloat16 included); returns it, as pycuda's."""
			backend.fill(self, value, stream)
			return self

	return GPUArray


class CudaBackend:
	"""Runs the update as one multi-tensor kernel launch per dtype per step."""

	name = "cuda"

	def __init__(self, deviceIdx: Optional[int] = 0):
		"""On device ``deviceIdx`` (None: the MPI rank's local index modulo the visible devices); compiles (or loads
		from the cache) the kernels for it, or raises BackendError (UnusableDevice where the device is there but
		nvcc cannot target it)."""
		driver, gpuarray = importPycuda()

		try:
			driver.init()
			count = driver.Device.count()
		except driver.Error as e:
			raise BackendError("the CUDA driver failed to initialise: %s" % e) from e

		if count == 0:
			raise BackendError("the CUDA driver sees no device")
		if deviceIdx is None:
			deviceIdx = (Config.localRank or 0) % count
		if not 0 <= deviceIdx < count:
			raise BackendError("Config.deviceIdx is %d but there are %d CUDA devices" % (deviceIdx, count))

		self.driver, self.gpuarray = driver, gpuarray

		if driver.Context.get_current() is None:
			# the primary context is the one torch and the runtime API share
			self.context = driver.Device(deviceIdx).retain_primary_context()
			self.context.push()

			import atexit
			atexit.register(self.context.pop)

		self.contexts = ThreadContexts(driver, driver.Context.get_current())
		self.device = driver.Context.get_device()
		self.deviceIndex = next(i for i in range(count) if driver.Device(i).pci_bus_id() == self.device.pci_bus_id())
		self.smCount = self.device.get_attribute(driver.device_attribute.MULTIPROCESSOR_COUNT)
		self.deviceName = "%s (%d SMs)" % (self.device.name(), self.smCount)
		self._streams = []
		self.target, *loaded = self.loadKernels()
		self._modules = {"rmsprop.cu": tuple(loaded)}  # key -> (module, image): the image for the occupancy query

	def loadKernels(self, source: str = "rmsprop.cu", options: Optional[tuple] = None):
		"""(the Target built, the loaded module, its image): every kernel of kernels/``source``, compiled for this device (with
		``options``, by default compileOptions()) or read from the cache."""
		capability = self.device.compute_capability()
		where = "CUDA device %d (%s)" % (self.deviceIndex, self.device.name())
		options = compileOptions() if options is None else list(options)
		target, nvcc, image = deviceImage(capability, where, (kernelDir() / source).read_text(), options)
		try:
			return target, self.driver.module_from_buffer(image), image
		except self.driver.Error as e:
			raise UnusableDevice("%s (compute capability %d.%d) cannot load the kernels nvcc %s built as %s %s: %s" % (
				where, capability[0], capability[1], nvcc.version, target.kind, target.arch, e)) from e

	@onBackendThread
	def to_gpu(self, ary):
		ary = np.ascontiguousarray(ary)
		result = self.empty(ary.shape, ary.dtype)
		result.set(ary)
		return result

	@onBackendThread
	def empty(self, shape, dtype=np.float32):
		result = self.GPUArray(shape, dtype)
		if result.gpudata is None:
			# pycuda allocates nothing for an empty array, and then cannot slice it (int(None)): give it a byte
			result.gpudata = self.driver.mem_alloc(1)
		return result

	def zeros(self, shape, dtype=np.float32):
		result = self.empty(shape, dtype)
		self.fill(result, 0)
		return result

	@property
	def GPUArray(self):
		"""pycuda's GPUArray with a ``fill`` that works for every dtype (pycuda's fill kernel has no float16 or
		bfloat16: its dtype_to_ctype raises)."""
		return arrayClass(self)

	@onBackendThread
	def fill(self, ary, value, stream=None) -> None:
		"""Fills a contiguous device array (pycuda's, ours or PuzzleLib's) with ``value`` by cuMemsetD8/D16/D32,
		so no pycuda elementwise kernel is involved; other item sizes go to the array's own ``fill``."""
		if ary.size == 0:
			return
		bits = np.array(value, dtype=ary.dtype).reshape(1)
		memset = {1: ("d8", np.uint8), 2: ("d16", np.uint16), 4: ("d32", np.uint32)}.get(ary.dtype.itemsize)
		if memset is None:  # float64 and the like: pycuda's kernel has them
			base = self.gpuarray.GPUArray
			base.fill(ary, value, stream) if isinstance(ary, base) else ary.fill(value)
			return

		name, word = memset
		pattern, pointer = int(bits.view(word)[0]), self.pointerOf(ary)
		if stream is None:
			getattr(self.driver, "memset_" + name)(pointer, pattern, ary.size)
		else:
			getattr(self.driver, "memset_%s_async" % name)(pointer, pattern, ary.size, stream)

	@onBackendThread
	def divide(self, ary, divisor: int, stream=None) -> None:
		"""``ary /= divisor`` in place, on the device, in float32 arithmetic rounded to the storage dtype (as
		np.divide does on the host): Grid's mean under CUDA-aware MPI."""
		if ary.size > 0:
			kernel = self.kernel("divide" + KERNEL_NAMES[np.dtype(ary.dtype)], "Pfq")
			grid = self.gridFor(ary.size, ary.dtype.itemsize, "divide" + KERNEL_NAMES[np.dtype(ary.dtype)])
			kernel.prepared_async_call((grid, 1, 1), (BLOCK, 1, 1), stream, self.pointerOf(ary), np.float32(divisor),
									   np.int64(ary.size))

	@staticmethod
	def dtypesSupported():
		"""float32 and float16, and bfloat16 where ml_dtypes is installed."""
		return list(DTYPES)

	@staticmethod
	def pointerOf(ary) -> int:
		"""The device address (0 for an empty array, which pycuda does not allocate)."""
		if ary.size == 0:
			return 0
		return int(ary.ptr) if hasattr(ary, "ptr") else int(ary.gpudata)

	@staticmethod
	def viewLike(template, view):
		"""Global-state views are already of their variables' kind (``zerosLike`` allocated the buffer)."""
		return view

	def zerosLike(self, template):
		"""An allocator of zeroed arrays of ``template``'s kind, for the global-state buffers: PuzzleLib's arrays get
		buffers from PuzzleLib's allocator (its modules, cuBLAS and cuDNN accept nothing else), others ours."""
		if not isPuzzleLibCudaArray(template):
			return self.zeros

		def zeros(shape, dtype):
			ary = emptyLike(template, shape, dtype)
			self.fill(ary, 0)
			return ary

		return zeros

	def isOwnArray(self, ary) -> bool:
		"""Whether ``ary`` is device memory this backend updates: a pycuda GPUArray (or view), or PuzzleLib's."""
		return isinstance(ary, self.gpuarray.GPUArray) or isPuzzleLibCudaArray(ary)

	def checkPlacement(self, name: str, ary) -> None:
		"""Raises OptimizerError if the kernels cannot reach ``ary`` from the backend's context. PuzzleLib's arrays
		come from the CUDA runtime, in the primary context of their device: the backend must work in that very
		context (a second context on the device could not touch them), on that device."""
		if not isPuzzleLibCudaArray(ary):
			return
		if ary.device != self.deviceIndex:
			raise OptimizerError("variable %r is on CUDA device %d, but puzzlelib_rmsprop's backend is on device %d "
								 "(set Config.deviceIdx)" % (name, ary.device, self.deviceIndex))
		if not self.inPrimaryContext:
			raise OptimizerError(
				"variable %r is a PuzzleLib array, which lives in the primary context of device %d (the CUDA runtime's), "
				"but puzzlelib_rmsprop's CUDA backend runs in another context (0x%x), which cannot reach it; let the "
				"backend create its context (do not push one of your own, e.g. by importing pycuda.autoinit), or use "
				"pycuda.autoprimaryctx" % (name, self.deviceIndex, self.contexts.context.handle))

	@cached_property
	def inPrimaryContext(self) -> bool:
		"""Whether the backend's context is its device's primary one (asked once: the context never changes)."""
		primary = self.driver.Device(self.deviceIndex).retain_primary_context()
		try:
			return primary.handle == self.contexts.context.handle
		finally:
			primary.detach()

	def module(self, source: str = "rmsprop.cu", options: Optional[tuple] = None):
		"""The module of kernels/``source``: the optimizer's (rmsprop.cu) loaded when the backend was created, others
		(the benchmark's references, arithmetic="puzzlelib"'s kernels with their ``options``) at their first use,
		built the same way (CudaBuild: this device's SASS, or PTX, cached)."""
		key = source if options is None else (source, tuple(options))
		if key not in self._modules:
			self._modules[key] = self.loadKernels(source, options)[1:]
		return self._modules[key][0]

	@lru_cache(maxsize=None)
	def kernel(self, name: str, signature: str, source: str = "rmsprop.cu"):
		"""A prepared kernel function of kernels/``source``, memoized by name (one per dtype)."""
		function = self.module(source).get_function(name)
		function.prepare(signature)
		return function

	@lru_cache(maxsize=None)
	def maxGrid(self, name: str, source: str = "rmsprop.cu") -> int:
		"""The most blocks of kernel ``name`` resident at once: its blocks per SM by occupancy (the driver's answer,
		from the kernel's real registers) times the SM count. A larger grid would run in uneven waves."""
		function = self.module(source).get_function(name)
		perSM = blocksPerSM(self.driver, self.device, function, self._modules[source][1], name, BLOCK)
		return self.smCount * perSM

	def gridFor(self, elements: int, itemsize: int, name: str) -> int:
		"""Enough blocks for one 128-bit packet per thread, at most one full wave of kernel ``name``."""
		packets = -(-elements * itemsize // PACKET_BYTES)
		return max(1, min(self.maxGrid(name), -(-packets // BLOCK)))

	@onBackendThread
	def prepareTable(self, rows: np.ndarray, dtype) -> LaunchTable:
		"""Copies the rows to the device once; they are reused every step until the variables change."""
		itemsize = np.dtype(dtype).itemsize
		# sized for the dtype's plain kernel; the other kernels of the table cap it at their own wave (launchGrid)
		grid = self.gridFor(int(rows["size"].sum()), itemsize, plainKernel("rmsprop", len(rows), dtype))

		memory = self.driver.to_device(rows) if len(rows) > 0 else None
		return LaunchTable(rows, dtype, address=int(memory) if memory is not None else 0, keepAlive=memory, grid=grid)

	def launchGrid(self, table: LaunchTable, name: str) -> int:
		"""The table's grid, capped at one full wave of kernel ``name``."""
		return max(1, min(table.grid, self.maxGrid(name)))

	@onBackendThread
	def refreshTable(self, table: LaunchTable) -> None:
		"""Uploads rows whose learnRate column changed (a learning-rate schedule), reusing the allocation."""
		if table.keepAlive is not None:
			self.driver.memcpy_htod(table.keepAlive, table.rows)

	@onBackendThread
	def rmsprop(self, table: LaunchTable, f, stream=None) -> None:
		"""PuzzleLib's RMSProp (``f.factor``, ``f.epsilon`` of the Flavour ``f``): one launch for every row of ``table``."""
		if len(table.rows) == 0:
			return
		name = plainKernel("rmsprop", len(table.rows), table.dtype)
		kernel = self.kernel(name, "Pi%ds" % len(f.struct))
		kernel.prepared_async_call((self.launchGrid(table, name), 1, 1), (BLOCK, 1, 1), stream, table.address, len(table.rows), f.struct)

	@onBackendThread
	def flavour(self, table: LaunchTable, stateDtype, f, stream=None) -> None:
		"""The flavour update (RMSProp options, RMSPropGraves) for every row of ``table``."""
		if len(table.rows) == 0:
			return
		name = "flavour" + KERNEL_NAMES[table.dtype] + ("State32" if np.dtype(stateDtype) != table.dtype else "")
		kernel = self.kernel(name, "Pi%ds" % len(f.struct))
		kernel.prepared_async_call((self.launchGrid(table, name), 1, 1), (BLOCK, 1, 1), stream, table.address, len(table.rows), f.struct)

	@onBackendThread
	def puzzlelib(self, table: LaunchTable, f, joined: bool, stream=None) -> None:
		"""arithmetic="puzzlelib": PuzzleLib's own kernel, one launch per row (Backend/PuzzleLibCuda.py). ``joined``
		changes nothing here: on CUDA no element's arithmetic depends on the launch."""
		from .PuzzleLibCuda import launchRows
		launchRows(self, table.rows, f, stream)

	def quant8Grid(self, table: LaunchTable) -> int:
		"""One warp per block of 8-bit state (QUANT8_BLOCK elements), at most one full wave of the dtype's kernel."""
		warpsPerBlock = BLOCK // 32
		blocks = int(table.rows["blocks"].sum())
		return max(1, min(self.maxGrid("quant8" + KERNEL_NAMES[table.dtype]), -(-blocks // warpsPerBlock)))

	@onBackendThread
	def quant8(self, table: LaunchTable, f, stream=None) -> None:
		"""The update with 8-bit state (any flavour) for every row of ``table`` (Quant8Entry rows): one launch."""
		if len(table.rows) == 0:
			return
		kernel = self.kernel("quant8" + KERNEL_NAMES[table.dtype], "Pi%ds" % len(f.struct))
		kernel.prepared_async_call((self.quant8Grid(table), 1, 1), (BLOCK, 1, 1), stream, table.address, len(table.rows),
								   f.struct)

	@onBackendThread
	def anyNonFinite(self, tables) -> bool:
		"""Whether any grad in the tables holds inf or NaN: one check kernel per table into a device flag, then
		one 4-byte read, which waits for the device (the price of skipNonFinite on CUDA)."""
		device = self.driver.mem_alloc(4)  # per call: no state shared between optimizers or threads
		self.driver.memset_d32(device, 0, 1)

		for table in tables:
			if len(table.rows) > 0:
				name = "nonFinite" + KERNEL_NAMES[table.dtype]
				kernel = self.kernel(name, "PiP")
				kernel.prepared_call((self.launchGrid(table, name), 1, 1), (BLOCK, 1, 1), table.address, len(table.rows), device)

		flag = np.zeros(1, np.int32)
		self.driver.memcpy_dtoh(flag, device)
		return bool(flag[0])

	@onBackendThread
	def decayGrad(self, grad, param, rate: float, stream=None) -> None:
		"""grad -= rate * param on the device (PuzzleLib's WeightDecay hook)."""
		kernel = self.kernel("decayGradFloat32", "PPfq")
		grid = self.gridFor(grad.size, grad.dtype.itemsize, "decayGradFloat32")
		kernel.prepared_async_call(
			(grid, 1, 1), (BLOCK, 1, 1), stream, grad.ptr, param.ptr, np.float32(rate), np.int64(grad.size)
		)

	@onBackendThread
	def streams(self, count: int):
		"""``count`` streams from a pool that grows as needed (PuzzleLib's useStreams path)."""
		while len(self._streams) < count:
			self._streams.append(self.driver.Stream())
		return self._streams[:count]

	@onBackendThread
	def synchronize(self, streams) -> None:
		"""Waits for the streams (None: the whole context)."""
		for stream in streams:
			stream.synchronize() if stream is not None else self.driver.Context.synchronize()


def deviceIndex() -> Optional[int]:
	"""Config.deviceIdx; where it is None, in an MPI grid (MPINodeInfo) None: the rank's local index modulo the
	visible devices; else PuzzleLib's (when PuzzleLib is imported), else 0."""
	if Config.deviceIdx is not None:
		return Config.deviceIdx
	if Config.localRank is not None:
		return None
	puzzlelibConfig = sys.modules.get("PuzzleLib.Config")
	return int(getattr(puzzlelibConfig, "deviceIdx", 0) or 0)


def create() -> CudaBackend:
	"""The CUDA backend on ``deviceIndex()``, or a BackendError saying why it cannot work here."""
	return CudaBackend(deviceIndex())
