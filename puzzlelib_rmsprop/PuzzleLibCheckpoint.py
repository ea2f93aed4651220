"""PuzzleLib 1.0.3's global-state checkpoints, mapped back to variables.

PuzzleLib keys global state by dtype: one dataset per state over the flat buffer of all variables of a dtype,
``<name>.states/float32.ms`` from its CUDA backend and ``<name>.states/<class 'numpy.float32'>.ms`` from its CPU
backend. Nothing in the file says which variable sits where, but the layout is its SharedArray's and can be
rebuilt from the module (Optimizers/Optimizer.py setupGlobalState, Cuda/Utils.py and CPU/Utils.py): variables sorted
by their first name (a plain string sort), those with their own updater skipped, one buffer per dtype in order of
first appearance; on CUDA every block padded to 16 bytes, on the CPU packed. The key format tells which layout a
file has, so PuzzleLib's CPU and CUDA files (which PuzzleLib itself cannot interchange) both load. A file is taken
for PuzzleLib's global state by its structure, not by a name: none of the module's own keys, every key a dtype key,
each dataset one flat buffer of exactly the module's length for that dtype (checked before reading it).
"""
import re
from typing import Dict, List, Sequence, Tuple

import numpy as np

CUDA_ALIGNMENT = 16  # bytes, PuzzleLib's Cuda/Utils.py SharedArray.alignment
_CPU_KEY = re.compile(r"^<class 'numpy\.(\w+)'>$")


def dtypeOfKey(key: str):
	"""(dtype, padded) for a PuzzleLib global-state key, or None for a parameter name."""
	match = _CPU_KEY.match(key)
	name = match.group(1) if match else key
	try:
		dtype = np.dtype(name)
	except TypeError:
		return None
	if dtype.kind != "f" or (not match and name != dtype.name):
		return None
	return dtype, match is None


class GlobalLayout:
	"""Where PuzzleLib's global state put each variable, given the variables in PuzzleLib's order: (dtype, [(name,
	shape)]) per dtype, in order of first appearance, names sorted, updater variables left out."""

	def __init__(self, groups: Sequence[Tuple[np.dtype, List[Tuple[str, tuple]]]]):
		self.groups = [(np.dtype(dtype), list(members)) for dtype, members in groups]

	def blocks(self, dtype, padded: bool) -> Tuple[List[Tuple[str, int, tuple]], int]:
		"""([(name, offset, shape)], total elements) of one dtype's buffer; padded: CUDA's 16-byte blocks."""
		dtype = np.dtype(dtype)
		members = dict(self.groups).get(dtype, [])
		step = max(1, CUDA_ALIGNMENT // dtype.itemsize) if padded else 1
		out, offset = [], 0
		for name, shape in members:
			out.append((name, offset, tuple(shape)))
			size = int(np.prod(shape, dtype=np.int64))
			offset += -(-size // step) * step
		return out, offset

	def split(self, stateGrp) -> Tuple[Dict[str, np.ndarray], List[str]]:
		"""The per-parameter states ``{"<param>.<state>": array}`` cut out of a PuzzleLib global-state group (or a
		dict of its datasets), and every way the file does not fit this module's layout. Shapes and dtypes are
		checked before any data is read."""
		states, problems = {}, []
		dtypes = [dtype for dtype, _ in self.groups]

		for key, ds in stateGrp.items():
			stateKey, entity = key.rsplit(".", 1)
			found = dtypeOfKey(stateKey)
			if found is None:
				problems.append("%r is keyed by a parameter name among PuzzleLib global-state datasets" % key)
				continue

			dtype, padded = found
			layout = "CUDA (16-byte blocks)" if padded else "CPU (packed)"
			if dtype not in dtypes:
				problems.append("PuzzleLib global-state dataset %r is for %s variables, but this module has none" % (key, dtype))
				continue
			blocks, total = self.blocks(dtype, padded)
			if ds.dtype != dtype:
				problems.append("PuzzleLib global-state dataset %r holds %s values" % (key, ds.dtype))
			elif tuple(ds.shape) != (total, ):
				problems.append("PuzzleLib global-state dataset %r is %s, but this module's %s variables take (%d,) in "
								"PuzzleLib's %s layout: another module?" % (key, tuple(ds.shape), dtype, total, layout))
			else:
				flat = np.array(ds)
				for name, offset, shape in blocks:
					states["%s.%s" % (name, entity)] = flat[offset:offset + int(np.prod(shape, dtype=np.int64))].reshape(shape)

		return states, problems
