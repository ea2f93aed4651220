"""``python -m puzzlelib_rmsprop.bench.threads``: the CPU kernel on one thread against all of them, at sizes around
the parallel threshold, in the three situations a training loop meets: calls back to back (a benchmark, or several
dtypes in one step), calls after a 3 ms NumPy GEMM (a training step's forward and backward: NumPy's BLAS threads
then spin for a while and hold the cores), and calls after 3 ms of sleep (an idle machine). Medians of single
calls, interleaved; ratios in one run (docs/benchmarks.md#threads)."""
import argparse
import time

import numpy as np

from .. import Config
from ..Backend import getBackend
from .candidates import oursKernel

SIZES = (4096, 8192, 16384, 32768, 65536, 131072, 262144, 1_000_000, 10_000_000)


def backToBack(step, calls: int) -> float:
	start = time.perf_counter()
	for _ in range(calls):
		step()
	return (time.perf_counter() - start) / calls


def afterPause(step, pause) -> float:
	step()
	pause()
	start = time.perf_counter()
	step()
	return time.perf_counter() - start


def main(argv=None) -> None:
	parser = argparse.ArgumentParser(description=__doc__)
	parser.add_argument("--rounds", type=int, default=31)
	parser.add_argument("--max-elements", type=float, default=SIZES[-1], help="skip sizes larger than this")
	args = parser.parse_args(argv)

	backend, gemm = getBackend(), np.random.default_rng(0).random((300, 300))
	if backend.name != "cpu":
		parser.error("the CPU kernels' threads: run with PUZZLELIB_RMSPROP_BACKEND=cpu (the backend is %s)" % backend.name)

	def busy():
		end = time.perf_counter() + 3e-3
		while time.perf_counter() < end:
			gemm @ gemm

	situations = {"back to back": None, "after a GEMM": busy, "after a sleep": lambda: time.sleep(3e-3)}
	print("Backend: %s (%s), one thread against all (%d)" % (backend.name, backend.deviceName, backend.kernels.maxThreads()))
	print("%10s  %-13s %12s %12s %8s" % ("elements", "calls", "1 thread us", "all us", "all/1"))
	for size in (s for s in SIZES if s <= args.max_elements):
		step = oursKernel(backend, [(size, )]).step
		calls = max(10, 2_000_000 // size)
		for name, pause in situations.items():
			times = {1: [], 0: []}
			for _ in range(args.rounds):
				for threads in times:
					Config.cpuThreads = threads
					times[threads].append(backToBack(step, calls) if pause is None else afterPause(step, pause))
			one, every = (float(np.median(times[t])) * 1e6 for t in (1, 0))
			print("%10d  %-13s %12.2f %12.2f %8.2f" % (size, name, one, every, every / one))
	Config.cpuThreads = 0


if __name__ == "__main__":
	main()
