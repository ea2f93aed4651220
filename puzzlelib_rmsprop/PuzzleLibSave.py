"""The states as PuzzleLib 1.0.3's own optimizer would write them, for ``save(..., layout="puzzlelib")``.

Local state: ``<param>.<state>``, as ours. Global state: one dataset per state over the flat buffer of each dtype,
keyed as the backend keys it (CPU ``<class 'numpy.float32'>``, CUDA ``float32``), variables where PuzzleLib's
SharedArray puts them (PuzzleLibCheckpoint.GlobalLayout: CPU packed, CUDA 16-byte blocks), padding zero.
"""
from typing import Callable, Dict

import numpy as np

from .Errors import OptimizerError
from .PuzzleLibCheckpoint import GlobalLayout
from .Quantized8 import QuantizedState, hostArray
from .StateLayouts import HostState


def puzzlelibKey(dtype, cuda: bool) -> str:
	"""PuzzleLib's global-state key of ``dtype``: ``str(dtype)`` of the dtype's type on its CPU backend, the
	dtype's name on its CUDA backend."""
	return np.dtype(dtype).name if cuda else str(np.dtype(dtype).type)


def _host(name: str, key: str, entity, dtype) -> np.ndarray:
	if isinstance(entity, QuantizedState):
		raise OptimizerError("save(layout='puzzlelib'): state %r of %r is 8-bit; PuzzleLib has no 8-bit state" % (key, name))
	ary = np.asarray(hostArray(entity))
	if ary.dtype != np.dtype(dtype):
		raise OptimizerError("save(layout='puzzlelib'): state %r of %r is %s but the parameter is %s; PuzzleLib keeps "
							 "the state in the parameters' dtype" % (key, name, ary.dtype, np.dtype(dtype)))
	return ary


def puzzlelibStates(states: Dict[str, Dict], layout: GlobalLayout, globalState: bool, cuda: bool) -> Dict:
	"""``states`` (by parameter name, of the variables ``layout`` lists) as PuzzleLib writes them."""
	out: Dict[str, Dict] = {}
	for dtype, members in layout.groups:
		if not globalState:
			for name, _ in members:
				out[name] = {key: HostState(_host(name, key, entity, dtype)) for key, entity in states[name].items()}
			continue
		blocks, total = layout.blocks(dtype, padded=cuda)
		flat: Dict[str, np.ndarray] = {}
		for name, offset, shape in blocks:
			for key, entity in states[name].items():
				ary = _host(name, key, entity, dtype).reshape(-1)
				flat.setdefault(key, np.zeros(total, dtype=dtype))[offset:offset + ary.size] = ary
		out[puzzlelibKey(dtype, cuda)] = {key: HostState(ary) for key, ary in flat.items()}
	return out


def packer(layout: GlobalLayout, globalState: bool, cuda: bool, flavourOk: bool, className: str) -> Callable[[Dict], Dict]:
	"""The function ``save`` applies to the by-name states; refuses options PuzzleLib's class does not have."""
	if not flavourOk:
		raise OptimizerError("save(layout='puzzlelib'): PuzzleLib's %s has none of the options set here (momentum, "
							 "centered, epsilonInSqrt, weightDecay); it could not continue this state" % className)
	return lambda states: puzzlelibStates(states, layout, globalState, cuda)
