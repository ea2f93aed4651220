"""The contenders, each built over a list of shapes and a dtype: a zero-argument callable doing one update step."""
from typing import Callable, List, NamedTuple, Optional

import numpy as np

from ..Backend.TensorTable import TensorList
from ..Modules.Module import Module
from ..RMSProp import RMSProp
from ..Variable import Variable
from . import referenceKernels
from .puzzlelibPeer import importCpuPuzzleLib
from .workloads import Shape, elements

LEARN_RATE, FACTOR, EPSILON = 1e-3, 0.9, 1e-5


class Candidate(NamedTuple):
	name: str
	step: Callable[[], None]
	bytesPerElement: float  # bytes one element's step moves: 3 reads and 2 writes (20 for float32, 10 for float16)
	stateBytes: int = 0     # the optimizer's stateNbytes, where it is ours


#: 8-bit state moves param in and out, grad in, its code in and out, and a float32 scale in and out per 256
QUANT8_BYTES = lambda dtype: 3 * np.dtype(dtype).itemsize + 2 + 8 / 256


def _host(shapes: List[Shape], seed: int, positive: bool = False, dtype=np.float32) -> List[np.ndarray]:
	rng = np.random.default_rng(seed)
	return [(rng.random(s) if positive else rng.standard_normal(s)).astype(dtype) for s in shapes]


def traffic(dtype) -> int:
	return 5 * np.dtype(dtype).itemsize


def ours(backend, shapes: List[Shape], useGlobalState: bool, dtype=np.float32, stateBits=None) -> Candidate:
	"""The optimizer's public update(), Python overhead included (with 8-bit state for stateBits=8)."""
	module = Module("bench")
	for i, (data, grad) in enumerate(zip(_host(shapes, 1, dtype=dtype), _host(shapes, 2, dtype=dtype))):
		var = Variable(backend.to_gpu(data))
		var.grad.set(grad)
		module.setVar("p%04d" % i, var)

	optimizer = RMSProp(learnRate=LEARN_RATE, factor=FACTOR, epsilon=EPSILON, stateBits=stateBits)
	optimizer.setupOn(module, useGlobalState=useGlobalState)
	name = "ours%s (%s)" % (" 8-bit state" if stateBits else "", "global" if useGlobalState else "local")
	return Candidate(name, optimizer.update, QUANT8_BYTES(dtype) if stateBits else traffic(dtype), optimizer.stateNbytes)


def oursKernel(backend, shapes: List[Shape], dtype=np.float32) -> Candidate:
	"""The bare kernel entry (rmspropKer) over one packed buffer: what PuzzleLib's kernel is compared with."""
	from ..Kernels import rmspropKer

	lists = _flatLists(backend, shapes, 4, dtype)
	kernel = rmspropKer(np.dtype(dtype).type)
	return Candidate("ours kernel (rmspropKer)", lambda: kernel(*lists, LEARN_RATE, FACTOR, EPSILON), traffic(dtype))


def _flatLists(backend, shapes: List[Shape], seed: int, dtype) -> List[TensorList]:
	"""Param, grad and ms as one packed buffer each (positive values), as TensorLists holding them."""
	n = elements(shapes)
	return [TensorList([backend.to_gpu(a)], backend.pointerOf) for a in _host([(n, )] * 3, seed, True, dtype)]


def _flatTable(backend, shapes: List[Shape], dtype):
	lists = _flatLists(backend, shapes, 3, dtype)
	return lists[0].launchTable(backend, lists[1], lists[2], [1.0]), lists


def limit(backend, shapes: List[Shape], dtype=np.float32) -> Candidate:
	"""Read param, grad, ms and write param, ms with no math: same table, launch and threads as our update."""
	table, arrays = _flatTable(backend, shapes, dtype)
	return Candidate("limit (same traffic, no math)", lambda keep=arrays: referenceKernels.traffic(backend, table), traffic(dtype))


def limit8(backend, shapes: List[Shape], dtype=np.float32) -> Optional[Candidate]:
	"""The 8-bit state update's traffic (param, grad, codes and scales) with no math, float32 parameters."""
	if np.dtype(dtype) != np.float32:
		return None
	from ..Quantized8 import Quant8Table
	from ..Quantized8 import encode, QuantizedState
	param, grad, _ = _flatLists(backend, shapes, 5, dtype)
	codes, scales = encode(_host([(elements(shapes), )], 6, True)[0], False)
	ms = QuantizedState(backend.to_gpu(codes), backend.to_gpu(scales), codes.shape, False)
	table = Quant8Table(backend, param, grad, TensorList([ms], backend.pointerOf)).launchTable(1.0, 0.0)
	keep = (param, grad, ms)
	return Candidate("limit 8-bit state (same traffic, no math)", lambda keep=keep: referenceKernels.quant8Traffic(backend, table),
					 QUANT8_BYTES(dtype))


def triad(backend, shapes: List[Shape], dtype=np.float32) -> Optional[Candidate]:
	"""STREAM's a = b + s*c, counted as STREAM counts it (12 bytes; it really moves 16 with write-allocate)."""
	if backend.name != "cpu" or np.dtype(dtype) != np.float32:
		return None
	table, arrays = _flatTable(backend, shapes, dtype)
	return Candidate("STREAM triad (12 B counted)", lambda keep=arrays: referenceKernels.traffic(backend, table, kind=1), 12)


def naiveNumpy(backend, shapes: List[Shape], dtype=np.float32) -> Optional[Candidate]:
	"""The textbook NumPy loop over tensors, allocating temporaries."""
	if backend.name != "cpu" or np.dtype(dtype) != np.float32:
		return None
	params, grads, mss = _host(shapes, 1), _host(shapes, 2), [np.zeros(s, np.float32) for s in shapes]

	def step():
		for i, g in enumerate(grads):
			mss[i] = FACTOR * mss[i] + (1 - FACTOR) * g * g
			params[i] = params[i] + LEARN_RATE * g / (np.sqrt(mss[i]) + EPSILON)

	return Candidate("naive NumPy", step, 20)


def torchRMSprop(backend, shapes: List[Shape], foreach: bool, dtype=np.float32) -> Optional[Candidate]:
	"""torch.optim.RMSprop with the same hyperparameters, on the backend's device."""
	try:
		import torch
	except ImportError:
		return None

	device = "cuda" if backend.name == "cuda" else "cpu"
	if device == "cuda" and not torch.cuda.is_available():
		return None

	params = [torch.nn.Parameter(torch.from_numpy(a).to(device)) for a in _host(shapes, 1, dtype=dtype)]
	for p, g in zip(params, _host(shapes, 2, dtype=dtype)):
		p.grad = torch.from_numpy(g).to(device)
	optimizer = torch.optim.RMSprop(params, lr=LEARN_RATE, alpha=FACTOR, eps=EPSILON, foreach=foreach)

	def step():
		optimizer.step()
		if device == "cuda":
			torch.cuda.synchronize()

	return Candidate("torch %s (foreach=%s)" % (torch.__version__, foreach), step, traffic(dtype))


def _cpuPuzzleLib(backend, dtype):
	"""PuzzleLib's CPU modules when both we and it run on the CPU in float32, else None."""
	return importCpuPuzzleLib() if backend.name == "cpu" and np.dtype(dtype) == np.float32 else None


def puzzlelibOptimizer(backend, shapes: List[Shape], dtype=np.float32, useGlobalState: bool = True) -> Optional[Candidate]:
	"""PuzzleLib 1.0.3's own RMSProp.update() in global or local state, Python overhead included: our update()'s peer
	in the same mode."""
	puzzlelib = _cpuPuzzleLib(backend, dtype)
	if puzzlelib is None:
		return None

	from PuzzleLib.Optimizers.RMSProp import RMSProp as PuzzleLibRMSProp
	from PuzzleLib.Variable import Variable as PuzzleLibVariable

	_, gpuarray, _ = puzzlelib
	module = Module("bench")
	for i, (data, grad) in enumerate(zip(_host(shapes, 1), _host(shapes, 2))):
		module.setVar("p%04d" % i, PuzzleLibVariable(gpuarray.to_gpu(data), grad=gpuarray.to_gpu(grad)))

	optimizer = PuzzleLibRMSProp(learnRate=LEARN_RATE, factor=FACTOR, epsilon=EPSILON)
	optimizer.setupOn(module, useGlobalState=useGlobalState)
	return Candidate("PuzzleLib 1.0.3 update() (%s)" % ("global" if useGlobalState else "local"), optimizer.update, 20)


def puzzlelibKernel(backend, shapes: List[Shape], packed: bool, dtype=np.float32, cudaSource=None) -> Optional[Candidate]:
	"""PuzzleLib 1.0.3's rmspropKer: one call on a packed buffer (its global state) or one per tensor (local). On
	the CPU its own compiled kernel; on CUDA its elementwise kernel generated by its own code from its sdist
	(``cudaSource``), compiled as PuzzleLib compiles it."""
	if backend.name == "cuda":
		if cudaSource is None:
			return None
		from .puzzlelibCudaPeer import rmspropKer
		kernel, toDevice = rmspropKer(cudaSource, backend, dtype), backend.to_gpu
	else:
		puzzlelib = _cpuPuzzleLib(backend, dtype)
		if puzzlelib is None:
			return None
		_, gpuarray, cpuKer = puzzlelib
		kernel, toDevice = cpuKer(np.float32), gpuarray.to_gpu

	layout = [(elements(shapes), )] if packed else shapes
	hosts = (_host(layout, seed, positive=seed == 3, dtype=dtype) for seed in (1, 2, 3))
	tensors = list(zip(*(map(toDevice, host) for host in hosts)))

	def step():
		for p, g, m in tensors:
			kernel(p, g, m, LEARN_RATE, FACTOR, EPSILON)

	return Candidate("PuzzleLib 1.0.3 kernel (%s)" % ("global" if packed else "local"), step, traffic(dtype))
