"""python -m puzzlelib_rmsprop.bench [--quick] [--out DIR]"""
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
	info = {"backend": backend.name, "device": backend.deviceName, "platform": platform.platform(),
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


def plan(quick: bool, backend, maxElements: int):
	"""(name, kind, shapes) of every workload this run measures, none larger than ``maxElements``."""
	if backend.name == "cuda":
		sizes = [2 ** k for k in (10, 14, 18, 22, 24, 26)] + ([] if quick else [2 ** 28])
	else:
		sizes = [10 ** k for k in (3, 4, 5, 6, 7)] + ([] if quick else [10 ** 8])
	# every candidate holds three float32 copies; keep well inside memory
	sizes = [n for n in sizes if 12 * n * 9 < availableMemory() * 0.6]

	runs = [("N=%.0e" % n if backend.name == "cpu" else "N=2^%d" % int(np.log2(n)), "single", workloads.singleTensor(n)) for n in sizes]
	runs.append(("ResNet-50 (161 tensors)", "resnet50", workloads.resnet50()))
	runs.append(("1000 small tensors", "small", workloads.smallTensors(1000)))
	return [run for run in runs if workloads.elements(run[2]) <= maxElements]


def contenders(backend, kind, shapes):
	single = kind == "single"
	made = [
		candidates.ours(backend, shapes, useGlobalState=True),
		None if single else candidates.ours(backend, shapes, useGlobalState=False),
		candidates.oursKernel(backend, shapes),
		candidates.limit(backend, shapes),
		candidates.triad(backend, shapes),
		candidates.naiveNumpy(backend, shapes),
		candidates.torchRMSprop(backend, shapes, foreach=True),
		candidates.torchRMSprop(backend, shapes, foreach=False),
		candidates.puzzlelibOptimizer(backend, shapes),
		candidates.puzzlelibKernel(backend, shapes, packed=True),
		None if single else candidates.puzzlelibKernel(backend, shapes, packed=False),
	]
	return [c for c in made if c is not None]


def main(argv=None) -> None:
	parser = argparse.ArgumentParser(prog="python -m puzzlelib_rmsprop.bench", description=__doc__)
	parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats: under a minute")
	parser.add_argument("--out", type=Path, default=Path("bench-out"), help="where results.json and bandwidth.png go")
	parser.add_argument("--repeats", type=int, default=None, help="timed rounds per workload (default 5 quick, 11 full)")
	parser.add_argument("--max-elements", type=float, default=float("inf"), help="skip workloads larger than this")
	parser.add_argument("--puzzlelib-path", type=Path, default=None,
						help="a directory holding PuzzleLib 1.0.3 (e.g. .cache/puzzlelib-1.0.3/site) to include it as a peer")
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
	runs = plan(args.quick, backend, args.max_elements)
	onTerminal = sys.stderr.isatty()
	for i, (name, kind, shapes) in enumerate(tqdm(runs, desc="benchmark", unit="workload", disable=not onTerminal)):
		if not onTerminal:
			# a file or pipe (a log) gets one clean line per workload instead of a bar
			print("benchmark %d/%d: %s" % (i + 1, len(runs), name), file=sys.stderr, flush=True)
		made = contenders(backend, kind, shapes)
		times = candidates_timing(made, repeats, sync)
		n = workloads.elements(shapes)
		results["workloads"].append({
			"name": name, "kind": kind, "elements": n, "tensors": len(shapes),
			"results": {c.name: {"seconds": times[c.name], "gbps": c.bytesPerElement * n / times[c.name] / 1e9,
								 "bytesPerElement": c.bytesPerElement} for c in made},
		})
		del made
		gc.collect()

	results["targets"] = report.targets(results["workloads"], backend.name)
	report.write(results, args.out)
	plotted = report.plot(results["workloads"], args.out / "bandwidth.png",
						  "%s, %s (%s)" % (backend.deviceName, results["date"], "quick" if args.quick else "full"))

	print("Backend: %s (%s), %s, median of %d interleaved rounds" % (backend.name, backend.deviceName, results["date"], repeats))
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
