"""The 8-bit and the 32-bit host kernels of several builds of the extension, side by side in one process: PuzzleLib's
plain update over one float32 tensor (rmspropHostApply; rmspropHostQuant8 with ms codes only), every kernel once per
round, rounds interleaved, medians. No part of the package or the tests.
	python benchmarks/2026-12-02-cpu-8bit/ab_kernels.py THREADS 1e6,1e7 before.so after.so   (ROUNDS=31 for more)
A build is a copy of puzzlelib_rmsprop/Backend/_cpukernels*.so made after `setup.py build_ext --inplace`."""
import ctypes
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from puzzlelib_rmsprop.Kernels import FLAVOUR_STRUCT  # noqa: E402
from puzzlelib_rmsprop.Quantized8 import QUANT8_DTYPE  # noqa: E402

TENSOR_ENTRY = np.dtype([("param", np.uint64), ("grad", np.uint64), ("ms", np.uint64), ("size", np.int64),
						 ("learnRate", np.float32), ("blockOffset", np.int32)])


def main():
	threads, sizes, paths = int(sys.argv[1]), [int(float(s)) for s in sys.argv[2].split(",")], sys.argv[3:]
	rounds = int(os.environ.get("ROUNDS", "21"))
	libs = []
	for path in paths:  # each copy under its own name, so the loader keeps them apart
		copy = Path(tempfile.mkdtemp()) / ("k%d.so" % len(libs))
		shutil.copy(path, copy)
		lib = ctypes.CDLL(str(copy), mode=ctypes.RTLD_LOCAL)
		for fn in (lib.rmspropHostApply, lib.rmspropHostQuant8):
			fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
		libs.append((Path(path).name, lib))
	flavour = np.zeros((), FLAVOUR_STRUCT)
	flavour["factor"], flavour["epsilon"], flavour["plain"] = 0.9, 1e-5, 1
	flavour = ctypes.create_string_buffer(flavour.tobytes(), flavour.itemsize)
	rng = np.random.default_rng(0)

	for n in sizes:
		p, g, ms = (rng.standard_normal(n).astype(np.float32) for _ in range(3))
		ms = np.abs(ms)
		full = np.zeros(1, TENSOR_ENTRY)
		full["param"], full["grad"], full["ms"], full["size"], full["learnRate"] = p.ctypes.data, g.ctypes.data, ms.ctypes.data, n, 1e-3
		p8, blocks = p.copy(), (n + 255) // 256
		codes, scales = rng.integers(0, 256, n).astype(np.uint8), (rng.random(blocks) * 1e-3).astype(np.float32)
		quant = np.zeros(1, QUANT8_DTYPE)
		quant["param"], quant["grad"], quant["codes"][0, 0], quant["scales"][0, 0] = p8.ctypes.data, g.ctypes.data, codes.ctypes.data, scales.ctypes.data
		quant["size"], quant["blocks"], quant["learnRate"] = n, blocks, 1e-3

		steps = {}
		for name, lib in libs:
			steps["32 " + name] = lambda lib=lib: lib.rmspropHostApply(full.ctypes.data, 1, 0, flavour, threads)
			steps["8 " + name] = lambda lib=lib: lib.rmspropHostQuant8(quant.ctypes.data, 1, 0, flavour, threads)
		calls = max(1, int(3e6 // n))
		samples = {k: [] for k in steps}
		for step in steps.values():
			step()
		for _ in range(rounds):
			for k, step in steps.items():
				start = time.perf_counter()
				for _ in range(calls):
					step()
				samples[k].append((time.perf_counter() - start) / calls)
		median = {k: float(np.median(v)) for k, v in samples.items()}
		print("N=%.0e, %d threads, median of %d rounds" % (n, threads, rounds))
		for name, _ in libs:
			a, b = median["32 " + name], median["8 " + name]
			print("  %-12s 32-bit %8.3f ms  8-bit %8.3f ms  8-bit / 32-bit %.3f  (8-bit %.3f ns an element)" % (
				name, a * 1e3, b * 1e3, b / a, b / n * 1e9))


if __name__ == "__main__":
	main()
