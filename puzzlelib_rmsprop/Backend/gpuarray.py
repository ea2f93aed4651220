"""PuzzleLib's ``Backend.gpuarray``, over the selected backend.

``to_gpu``, ``empty``, ``zeros``, ``GPUArray``, ``SharedArray(dtype)`` and ``dtypesSupported()``. On CUDA
the arrays are pycuda GPUArrays (a subclass whose ``fill`` works for float16 and bfloat16 too, which pycuda's own
cannot); on the CPU, a NumPy array with the same surface (get, set, fill, shape, dtype, size, nbytes, ravel,
reshape). Attributes resolve on first access, which is when the backend is chosen.
"""
from .SharedArray import SharedArray
from .Selector import getBackend

_DELEGATED = ("to_gpu", "empty", "zeros", "GPUArray", "dtypesSupported")

__all__ = list(_DELEGATED) + ["SharedArray"]


def __getattr__(name):
	if name in _DELEGATED:
		return getattr(getBackend(), name)
	raise AttributeError("module %r has no attribute %r" % (__name__, name))
