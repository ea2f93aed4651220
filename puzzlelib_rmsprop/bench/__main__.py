"""python -m puzzlelib_rmsprop.bench [--quick] [--out DIR]; under mpiexec, --grid for the data-parallel benchmark"""
import argparse
import datetime
import gc
import logging
import os
import platform
import sys
from pathlib import Path

import numpy as np

from ..Backend import getBackend
from . import candidates, report, workloads


def machine(backend):
	info = {"backend": backend.name, "device": backend.deviceName, "emulated": "Emulated" in backend.deviceName,
			"platform": platform.platform(),
			"cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__}
	try:
		import torch
		info["torch"] = torch.__version__
	except ImportError:
		pass
	return info


def availableMemory() -> int:
	try:
		return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
	except (ValueError, OSError):
		return 8 << 30


def plan(quick: bool, backend, maxElements: int, dtypes):
	"""(name, kind, shapes, dtype) of every workload this run measures, none larger than ``maxElements``."""
	if backend.name == "cuda":
		sizes = [10 ** 6, 10 ** 7] + ([] if quick else [10 ** 8])
	else:
		sizes = [10 ** k for k in (3, 4, 5, 6, 7)] + ([] if quick else [10 ** 8])
	# every candidate holds three float32 copies; keep well inside memory
	sizes = [n for n in sizes if 12 * n * 9 < availableMemory() * 0.6]

	runs = []
	for dtype in dtypes:
		suffix = "" if len(dtypes) == 1 else " %s" % np.dtype(dtype).name
		runs += [("N=%.0e%s" % (n, suffix), "single", workloads.singleTensor(n), dtype) for n in sizes]
		if backend.name == "cpu":  # what the 1,000 tiny tensors are compared with: the same elements in one tensor
			runs.append(("N=6.4e+04%s" % suffix, "single", workloads.singleTensor(64000), dtype))
		runs.append(("ResNet-50 (161 tensors)%s" % suffix, "resnet50", workloads.resnet50(), dtype))
		runs.append(("1000 small tensors%s" % suffix, "small", workloads.smallTensors(1000), dtype))
	if backend.name == "cuda":  # launches are asynchronous: what a step costs the host is its own figure
		runs += [("overhead, %d tensors" % n, "overhead", workloads.tinyTensors(n), np.float32) for n in (1, 161, 1000)]
	else:  # the work is negligible: a step costs what the host spends per step and per variable, in both modes
		runs += [("%d tensors of 64" % n, "tiny", workloads.tinyTensors(n), np.float32) for n in (161, 1000)]
	return [run for run in runs if workloads.elements(run[2]) <= maxElements]


def contenders(backend, kind, shapes, dtype, cudaSource=None):
	single = kind == "single"
	made = [
		candidates.ours(backend, shapes, True, dtype),
		None if single else candidates.ours(backend, shapes, False, dtype),
		candidates.ours(backend, shapes, True, dtype, stateBits=8),
		candidates.oursKernel(backend, shapes, dtype),
		candidates.limit(backend, shapes, dtype),
		candidates.limit8(backend, shapes, dtype),
		candidates.triad(backend, shapes, dtype),
		candidates.naiveNumpy(backend, shapes, dtype),
		candidates.torchRMSprop(backend, shapes, True, dtype),
		candidates.torchRMSprop(backend, shapes, False, dtype),
		candidates.puzzlelibOptimizer(backend, shapes, dtype),
		None if single else candidates.puzzlelibOptimizer(backend, shapes, dtype, useGlobalState=False),
		candidates.puzzlelibKernel(backend, shapes, True, dtype, cudaSource),
		None if single else candidates.puzzlelibKernel(backend, shapes, False, dtype, cudaSource),
	]
	return [c for c in made if c is not None]


def main(argv=None) -> None:
	if "--grid" in (sys.argv[1:] if argv is None else argv):  # under mpiexec: the data-parallel benchmark (bench/grid.py)
		from . import grid
		grid.main(argv)
		return
	parser = argparse.ArgumentParser(prog="python -m puzzlelib_rmsprop.bench", description=__doc__)
	parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats: under a minute")
	parser.add_argument("--out", type=Path, default=Path("bench-out"), help="where results.json and bandwidth.png go")
	parser.add_argument("--repeats", type=int, default=None, help="timed rounds per workload (default 5 quick, 11 full)")
	parser.add_argument("--max-elements", type=float, default=float("inf"), help="skip workloads larger than this")
	parser.add_argument("--puzzlelib-path", type=Path, default=None,
						help="a directory holding PuzzleLib 1.0.3 (e.g. .cache/puzzlelib-1.0.3/site) to include it as a peer")
	parser.add_argument("--puzzlelib-source", type=Path, default=None,
						help="PuzzleLib 1.0.3's sdist (.tar.gz or unpacked): on CUDA, its rmspropKer built from it is a peer")
	parser.add_argument("--dtypes", default=None,
						help="comma-separated parameter dtypes (default: float32,float16 on CUDA, float32 on the CPU)")
	args = parser.parse_args(argv)

	logging.basicConfig(level=logging.WARNING)
	if args.puzzlelib_path:
		sys.path.append(str(args.puzzlelib_path))

	backend = getBackend()
	sync = backend.driver.Context.synchronize if backend.name == "cuda" else (lambda: None)
	repeats = args.repeats or (5 if args.quick else 11)
	results = {"date": datetime.date.today().isoformat(), "machine": machine(backend), "quick": args.quick,
			   "repeats": repeats, "workloads": []}

	from tqdm import tqdm
	dtypes = [np.dtype(d).type for d in (args.dtypes or ("float32,float16" if backend.name == "cuda" else "float32")).split(",")]
	runs = plan(args.quick, backend, args.max_elements, dtypes)
	onTerminal = sys.stderr.isatty()
	for i, (name, kind, shapes, dtype) in enumerate(tqdm(runs, desc="benchmark", unit="workload", disable=not onTerminal)):
		if not onTerminal:
			# a file or pipe (a log) gets one clean line per workload instead of a bar
			print("benchmark %d/%d: %s" % (i + 1, len(runs), name), file=sys.stderr, flush=True)
		made = contenders(backend, kind, shapes, dtype, args.puzzlelib_source)
		times = candidates_timing(made, repeats, sync)
		n = workloads.elements(shapes)
		results["workloads"].append({
			"name": name, "kind": kind, "dtype": np.dtype(dtype).name, "elements": n, "tensors": len(shapes),
			"results": {c.name: {"seconds": times[c.name], "gbps": c.bytesPerElement * n / times[c.name] / 1e9,
								 "bytesPerElement": c.bytesPerElement, **({"stateBytes": c.stateBytes} if c.stateBytes else {})}
						for c in made},
		})
		del made
		gc.collect()

	# the emulator's timings measure the host CPU running kernels thread by thread: no target applies to them
	results["targets"] = [] if results["machine"]["emulated"] else report.targets(results["workloads"], backend.name)
	report.write(results, args.out)
	plotted = report.plot(results["workloads"], args.out / "bandwidth.png",
						  "%s, %s (%s)" % (backend.deviceName, results["date"], "quick" if args.quick else "full"))

	print("Backend: %s (%s), %s, median of %d interleaved rounds" % (backend.name, backend.deviceName, results["date"], repeats))
	if results["machine"]["emulated"]:
		print("EMULATED device: these are the emulator's timings on the host CPU, not GPU figures; no target is evaluated")
	print(report.table(results["workloads"]))
	for t in results["targets"]:
		print("%-4s %-70s %8.3f (goal %.3g)" % ("met" if t["met"] else "MISS", t["target"], t["measured"], t["goal"]))
	print("wrote %s%s" % (args.out / "results.json", " and %s" % (args.out / "bandwidth.png") if plotted else
						  " (no plot: pip install matplotlib)"))


def candidates_timing(made, repeats, sync):
	from .timing import timeInterleaved
	return timeInterleaved({c.name: c.step for c in made}, repeats, sync)


if __name__ == "__main__":
	main()
