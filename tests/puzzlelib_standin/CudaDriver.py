"""A stand-in for PuzzleLib 1.0.3's CUDA driver extension (module ``CudaDriver``: ``GPUArray``, ``Buffer``), in
Python over the CUDA driver API (ctypes), for tests on the emulated driver or on a GPU where PuzzleLib's CUDA
backend is not built.

Faithful to what puzzlelib_rmsprop relies on (Cuda/Source/Core/Array.c and Buffer.c of PuzzleLib's sdist): memory
from the device's primary context, made current as the CUDA runtime's cudaSetDevice does; ``GPUArray(shape, dtype,
allocator=None, gpudata=None)`` and the static ``empty``/``zeros``; ``ptr``, ``gpudata``, ``shape``, ``strides`` (bytes),
``contiguous``, ``dtype``, ``nbytes``, ``size``, ``ndim``, ``device``; ``get()``, ``set()`` of a NumPy array (exactly
``numpy.ndarray``, as the C code checks) or another GPUArray, ``fill()``, slicing of the first axis, ``reshape``;
``Buffer`` slicing by bytes, with no Python constructor that wraps foreign memory; no ``__cuda_array_interface__``."""
import ctypes

import numpy as np

_cuda = ctypes.CDLL("libcuda.so.1")
_device = 0


class CudaError(RuntimeError):
	pass


def _call(name, *args):
	code = getattr(_cuda, name)(*args)
	if code != 0:
		raise CudaError("%s failed with CUDA error %d" % (name, code))


def setDevice(index: int) -> None:
	"""cudaSetDevice: the device's primary context becomes current on this thread (if none is)."""
	global _device
	_device = index
	_ensureContext()


def _ensureContext():
	current = ctypes.c_void_p()
	_call("cuCtxGetCurrent", ctypes.byref(current))
	if not current.value:
		primary = ctypes.c_void_p()
		_call("cuDevicePrimaryCtxRetain", ctypes.byref(primary), _device)
		_call("cuCtxSetCurrent", primary)


class Buffer:
	"""Device memory: ``ptr``, ``size``; a slice is a Buffer over part of it (keeping the whole alive)."""

	def __init__(self, *args, **kwargs):
		raise TypeError("cannot create 'CudaDriver.Buffer' instances")  # as PuzzleLib: no wrapping foreign memory

	@classmethod
	def _allocate(cls, size: int):
		_ensureContext()
		pointer = ctypes.c_uint64()
		if size > 0:
			_call("cuMemAlloc_v2", ctypes.byref(pointer), ctypes.c_size_t(size))
		return cls._make(pointer.value, size, None)

	@classmethod
	def _make(cls, ptr, size, owner):
		buffer = object.__new__(cls)
		buffer.ptr, buffer.size, buffer._owner = ptr, size, owner
		return buffer

	def __getitem__(self, item):
		start, stop, step = item.indices(self.size)
		assert step == 1
		return Buffer._make(self.ptr + start, max(stop - start, 0), self._owner or self)

	def __del__(self):
		if getattr(self, "_owner", 1) is None and self.size > 0:
			_cuda.cuMemFree_v2(ctypes.c_uint64(self.ptr))


class GPUArray:
	def __init__(self, shape, dtype, allocator=None, gpudata=None):
		self.shape, self.dtype = tuple(int(n) for n in shape), np.dtype(dtype)
		self.size = int(np.prod(self.shape, dtype=np.int64))
		self.nbytes, self.ndim = self.size * self.dtype.itemsize, len(self.shape)
		self.gpudata = gpudata if gpudata is not None else Buffer._allocate(self.nbytes)
		assert self.gpudata.size >= self.nbytes, "buffer too small"
		self.device = _device

	@staticmethod
	def empty(shape, dtype, allocator=None):
		return GPUArray(shape, dtype, allocator)

	@staticmethod
	def zeros(shape, dtype, allocator=None):
		return GPUArray(shape, dtype, allocator).fill(0)

	@staticmethod
	def toGpu(ary, allocator=None):
		ary = np.ascontiguousarray(ary)
		result = GPUArray(ary.shape, ary.dtype, allocator)
		result.set(ary)
		return result

	@property
	def ptr(self) -> int:
		return self.gpudata.ptr

	@property
	def strides(self):
		return tuple(int(np.prod(self.shape[i + 1:], dtype=np.int64)) * self.dtype.itemsize for i in range(self.ndim))

	@property
	def contiguous(self) -> bool:
		return True

	def get(self, stream=None):
		host = np.empty(self.shape, self.dtype)
		if self.nbytes:
			_ensureContext()
			_call("cuMemcpyDtoH_v2", host.ctypes.data_as(ctypes.c_void_p), ctypes.c_uint64(self.ptr), ctypes.c_size_t(self.nbytes))
		return host

	def set(self, ary, stream=None):
		if isinstance(ary, GPUArray):
			assert ary.nbytes == self.nbytes
			_call("cuMemcpyDtoD_v2", ctypes.c_uint64(self.ptr), ctypes.c_uint64(ary.ptr), ctypes.c_size_t(self.nbytes))
			return
		if type(ary) is not np.ndarray:
			raise TypeError("input gpuarray must be numpy.ndarray or CudaDriver.GPUArray, not %s" % type(ary).__name__)
		ary = np.ascontiguousarray(ary, dtype=self.dtype)
		assert ary.size == self.size
		if self.nbytes:
			_ensureContext()
			_call("cuMemcpyHtoD_v2", ctypes.c_uint64(self.ptr), ary.ctypes.data_as(ctypes.c_void_p), ctypes.c_size_t(self.nbytes))

	def fill(self, value):
		bits = np.array(value, self.dtype).reshape(1)
		if self.size:
			name, word = {2: ("cuMemsetD16_v2", np.uint16), 4: ("cuMemsetD32_v2", np.uint32)}[self.dtype.itemsize]
			_call(name, ctypes.c_uint64(self.ptr), ctypes.c_uint32(int(bits.view(word)[0])), ctypes.c_size_t(self.size))
		return self

	def reshape(self, *shape):
		shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
		assert int(np.prod(shape, dtype=np.int64)) == self.size, "cannot reshape %s to %s" % (self.shape, shape)
		return GPUArray(shape, self.dtype, gpudata=self.gpudata)

	def __getitem__(self, item):
		start, stop, step = item.indices(self.shape[0])
		assert step == 1
		row = self.nbytes // max(self.shape[0], 1)
		return GPUArray((max(stop - start, 0), ) + self.shape[1:], self.dtype, gpudata=self.gpudata[start * row:stop * row])


GPUArray.__module__ = Buffer.__module__ = "CudaDriver"
