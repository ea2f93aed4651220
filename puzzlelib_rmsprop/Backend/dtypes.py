"""The storage dtypes the backends accept: float32, float16, and bfloat16 where ml_dtypes provides it to NumPy."""
import numpy as np

try:  # NumPy has no bfloat16; ml_dtypes' is the one JAX and others use
	from ml_dtypes import bfloat16
except ImportError:
	bfloat16 = None

#: (dtype, atol) pairs, as PuzzleLib's gpuarray.dtypesSupported()
DTYPES = [(np.float32, 1e-5), (np.float16, 1e-2)] + ([(bfloat16, 1e-1)] if bfloat16 is not None else [])
