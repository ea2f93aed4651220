"""PuzzleLib's own CUDA arrays (its driver extension's ``CudaDriver.GPUArray``), as the CUDA backend meets them.

They have ``ptr``, ``gpudata``, ``shape``, ``dtype``, ``size``, ``contiguous``, ``device``, ``get()``, ``set()``,
slicing and ``reshape``, and a static ``empty(shape, dtype)``; no ``__cuda_array_interface__``. Their memory comes
from the CUDA runtime (cudaMalloc), so it lives in the device's primary context. PuzzleLib's modules, cuBLAS and
cuDNN wrappers accept only these arrays, and a Buffer cannot wrap foreign memory: whatever PuzzleLib computes on
must be allocated by PuzzleLib."""

MODULE, CLASS = "CudaDriver", "GPUArray"


def isPuzzleLibCudaArray(ary) -> bool:
	kind = type(ary)
	return kind.__module__ == MODULE and kind.__name__ == CLASS


def isContiguous(ary) -> bool:
	"""C-contiguity of NumPy-like arrays (``flags``) and of PuzzleLib's (``contiguous``)."""
	flags = getattr(ary, "flags", None)
	return bool(flags.c_contiguous) if flags is not None else bool(getattr(ary, "contiguous", False))


def emptyLike(template, shape, dtype):
	"""An uninitialized array of ``template``'s class, from its allocator."""
	return type(template).empty(tuple(shape), dtype)


class DeviceMemory:
	"""Device memory described for MPI: ``__cuda_array_interface__`` over a PuzzleLib array (which has none),
	for CUDA-aware MPI; also ``ptr``, ``shape``, ``dtype`` and ``size`` for the backend's kernels."""

	def __init__(self, ary):
		self.array, self.ptr, self.shape, self.dtype, self.size = ary, int(ary.ptr), tuple(ary.shape), ary.dtype, ary.size

	@property
	def __cuda_array_interface__(self):
		return {"shape": self.shape, "typestr": self.dtype.str, "data": (self.ptr, False), "version": 3, "strides": None}
