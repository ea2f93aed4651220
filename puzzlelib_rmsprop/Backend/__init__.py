"""Backends: CUDA (pycuda) and CPU (C extension), chosen once per process. See ``Backend.gpuarray``."""
from .Selector import getBackend, resetBackend
from . import gpuarray

__all__ = ["getBackend", "resetBackend", "gpuarray"]
