"""The one host-array helper: the NumPy memory behind an array, whoever made it."""
from typing import Optional

import numpy as np


def hostArray(ary, deviceCopy: bool = True) -> Optional[np.ndarray]:
	"""The NumPy memory of a host array (NumPy's, the CPU backend's, PuzzleLib's CPUArray, which keeps it in ``.data``)
	as it is, no copy; for device memory a host copy (``ary.get()``), or None when ``deviceCopy`` is False."""
	if isinstance(ary, np.ndarray):
		return ary
	if isinstance(getattr(ary, "data", None), np.ndarray):
		return ary.data
	return np.asarray(ary.get()) if deviceCopy else None
