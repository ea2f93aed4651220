"""arithmetic="puzzlelib" on CUDA: PuzzleLib 1.0.3's own float32 kernels (kernels/rmsprop_puzzlelib.cu) compiled
with its option (-use_fast_math) through pycuda and launched as PuzzleLib launches them: one launch per tensor,
512 threads a block, one element a thread. Bit-identical to PuzzleLib's CUDA kernels once checked on a GPU
(tests/gpu/puzzlelib_arithmetic_check.py, run by tests/gpu/device_check.sh)."""
from functools import lru_cache

import numpy as np


SOURCE = "rmsprop_puzzlelib.cu"
OPTIONS = ["-use_fast_math"]  # PuzzleLib's Cuda/SourceModule.py compiles with NVRTC and this option
BLOCK = 512                   # PuzzleLib's cudaBlockSize


@lru_cache(maxsize=None)
def kernels(backend):
	"""(rmspropKer, rmspropGravesKer), prepared, for ``backend``'s context (built on first use, as the backend builds
	its own kernels)."""
	module = backend.module(SOURCE, tuple(OPTIONS))
	rmsprop, graves = module.get_function("rmspropKer"), module.get_function("rmspropGravesKer")
	rmsprop.prepare("PPPfffi")
	graves.prepare("PPPPPffffi")
	return rmsprop, graves


def grid(size: int):
	"""PuzzleLib's ElementwiseKernel grid for ``size`` elements: (blocks, threads)."""
	block = min(BLOCK, -(-size // 32) * 32)
	return -(-size // block), block


def launchRows(backend, rows: np.ndarray, f, stream=None) -> None:
	"""PuzzleLib's kernel for every FlavourEntry row (device pointers): Graves where the row has mg."""
	rmsprop, graves = kernels(backend)
	factor, epsilon = np.float32(f.factor), np.float32(f.epsilon)
	for row in rows:
		size = int(row["size"])
		if size >= 2 ** 31:
			raise ValueError("arithmetic='puzzlelib': PuzzleLib's CUDA kernels index with int, %d elements is too many" % size)
		blocks, threads = grid(size)
		if row["mg"]:
			graves.prepared_async_call((blocks, 1), (threads, 1, 1), stream, int(row["param"]), int(row["grad"]),
									   int(row["mg"]), int(row["ms"]), int(row["mom"]), row["learnRate"], factor,
									   row["momentum"], epsilon, size)
		else:
			rmsprop.prepared_async_call((blocks, 1), (threads, 1, 1), stream, int(row["param"]), int(row["grad"]),
										int(row["ms"]), row["learnRate"], factor, epsilon, size)
