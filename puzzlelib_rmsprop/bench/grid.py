"""The grid mode of the benchmark: ``mpiexec -n N python -m puzzlelib_rmsprop.bench --grid``.

On ResNet-50's parameter list (float32, 25,557,032 elements), in one run, every rank timing the same steps:

- ``MPI_Allreduce`` alone (in place, blocking) on a buffer of the same (padded) size: the reference;
- ``Reduce_scatter_block + Allgather`` alone, blocking, one piece per rank, no update;
- the averaging alone: ``MPINodeInfo.sumTensor`` on that buffer (bucketed non-blocking reduce-scatter, the mean,
  all-gather), no update: the communication both optimizer steps below contain;
- the replicated step: ``RMSProp(nodeinfo=MPINodeInfo()).update()``, the gradients averaged by the bucketed
  reduce-scatter and all-gather, then every rank updating every parameter;
- the sharded step: ``RMSProp(nodeinfo=..., shardState=True).update()``, each rank updating its pieces between the
  reduce-scatter of the grads and the all-gather of the parameters;
- the update alone on one rank's share (no communication), for context.

A step's time is the slowest rank's (barrier, step, max over the ranks); the figure is the median of interleaved
rounds. Rank 0 prints the table with the per-rank state bytes and writes results.json.
"""
import argparse
import datetime
import json
import logging
import time
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np

from .. import Config
from ..Backend import getBackend
from ..Grid import DEFAULT_BUCKET_BYTES, MPINodeInfo
from ..Modules.Module import Module
from ..RMSProp import RMSProp
from ..Variable import Variable
from . import workloads

LEARN_RATE, FACTOR, EPSILON = 1e-3, 0.9, 1e-5
#: the issue's goal: the sharded step at most this many times MPI_Allreduce alone on the same buffer
SHARDED_GOAL = 1.2


def makeOptimizer(info: MPINodeInfo, shapes, shardState: bool, dtype=np.float32):
	"""An RMSProp set up in global state over ``shapes``, with this rank's own gradients (seeded by rank)."""
	backend = getBackend()
	rng = np.random.default_rng(1 + info.index)
	module = Module("bench")
	for i, shape in enumerate(shapes):
		var = Variable(backend.to_gpu(rng.standard_normal(shape).astype(dtype)))
		var.grad.set(rng.standard_normal(shape).astype(dtype))
		module.setVar("p%04d" % i, var)
	optimizer = RMSProp(learnRate=LEARN_RATE, factor=FACTOR, epsilon=EPSILON, nodeinfo=info, shardState=shardState)
	optimizer.setupOn(module, useGlobalState=True)
	return optimizer


def timeSteps(info: MPINodeInfo, steps: Dict[str, Callable[[], None]], repeats: int, sync) -> Dict[str, List[float]]:
	"""Seconds of every round of every step, the slowest rank's, rounds interleaved (one warm-up round first)."""
	samples = {name: [] for name in steps}
	for rnd in range(repeats + 1):
		for name, step in steps.items():
			info.comm.Barrier()
			start = time.perf_counter()
			step()
			sync()
			elapsed = np.array([time.perf_counter() - start])
			info.comm.Allreduce(info.MPI.IN_PLACE, elapsed, op=info.MPI.MAX)
			if rnd > 0:
				samples[name].append(float(elapsed[0]))
	return samples


def main(argv=None) -> None:
	parser = argparse.ArgumentParser(prog="mpiexec -n N python -m puzzlelib_rmsprop.bench --grid", description=__doc__)
	parser.add_argument("--grid", action="store_true")
	parser.add_argument("--out", type=Path, default=Path("bench-grid-out"), help="where rank 0 writes results.json")
	parser.add_argument("--repeats", type=int, default=11, help="timed rounds (default 11)")
	parser.add_argument("--bucket-bytes", type=int, default=DEFAULT_BUCKET_BYTES, help="MPINodeInfo(bucketBytes=...)")
	parser.add_argument("--quick", action="store_true", help="a check that it runs: 200 small tensors, 2 rounds, no target")
	args, _ = parser.parse_known_args(argv)

	logging.basicConfig(level=logging.WARNING)
	info = MPINodeInfo(bucketBytes=args.bucket_bytes)
	backend = getBackend()
	sync = backend.driver.Context.synchronize if backend.name == "cuda" else (lambda: None)
	shapes, dtype = (workloads.smallTensors(200) if args.quick else workloads.resnet50()), np.float32
	n = workloads.elements(shapes)
	repeats = 2 if args.quick else args.repeats

	replicated = makeOptimizer(info, shapes, False, dtype)
	sharded = makeOptimizer(info, shapes, True, dtype)
	plan = sharded.plans[np.float32]
	flat = np.random.default_rng(info.index).standard_normal(plan.padded).astype(dtype)
	shard = np.empty(plan.padded // info.gridsize, dtype=dtype)

	def allreduce():
		info.comm.Allreduce(info.MPI.IN_PLACE, flat, op=info.MPI.SUM)

	averaged = flat.copy()

	def averaging():
		info.sumTensor("bench", averaged)

	def reduceScatterAllgather():
		info.comm.Reduce_scatter_block(flat, shard, op=info.MPI.SUM)
		info.comm.Allgather(shard, flat)

	# the update alone over this rank's share: an optimizer of one process on a buffer of one shard's size
	local = RMSProp(learnRate=LEARN_RATE, factor=FACTOR, epsilon=EPSILON)
	shareModule = Module("share")
	shareModule.setVar("share", Variable(backend.to_gpu(np.ones(plan.shardLen, dtype=dtype))))
	local.setupOn(shareModule, useGlobalState=True)

	steps = {"MPI_Allreduce alone": allreduce, "Reduce_scatter_block + Allgather alone": reduceScatterAllgather,
			 "averaging alone (MPINodeInfo.sumTensor)": averaging,
			 "replicated step (averaging + update)": replicated.update, "sharded step (averaging + update)": sharded.update,
			 "update alone, one rank's share": local.update}
	samples = timeSteps(info, steps, repeats, sync)

	states = {"replicated": replicated.stateNbytes, "sharded": sharded.stateNbytes}
	totals = np.array([states["sharded"]], dtype=np.int64)
	info.comm.Allreduce(info.MPI.IN_PLACE, totals, op=info.MPI.SUM)
	if info.index != 0:
		return

	medians = {name: float(np.median(values)) for name, values in samples.items()}
	reference = medians["MPI_Allreduce alone"]
	ratio = medians["sharded step (averaging + update)"] / reference
	total = replicated.stateNbytes
	results = {
		"date": datetime.date.today().isoformat(), "ranks": info.gridsize, "backend": backend.name, "device": backend.deviceName,
		"cpuThreadsPerRank": Config.cpuThreads,
		"workload": "%s (%d tensors, %d float32 parameters)" % ("200 small tensors" if args.quick else "ResNet-50", len(shapes), n),
		"bucketBytes": info.bucketBytes, "quick": args.quick, "repeats": repeats, "seconds": medians, "samples": samples,
		"stateBytes": {"replicated, per rank": states["replicated"], "sharded, per rank (rank 0)": states["sharded"],
					   "sharded, all ranks": int(totals[0]), "total / ranks": total / info.gridsize},
		"targets": [] if args.quick else [
			{"target": "sharded step / MPI_Allreduce alone, %d ranks" % info.gridsize, "measured": round(ratio, 3),
			 "goal": SHARDED_GOAL, "met": ratio <= SHARDED_GOAL},
			{"target": "sharded state per rank / (total / ranks)", "measured": round(states["sharded"] / (total / info.gridsize), 4),
			 "goal": "1 plus padding (at most one 256-element piece per state)",
			 "met": states["sharded"] <= total / info.gridsize + 256 * 4 * len(sharded.globalStates[np.float32])},
		],
	}
	args.out.mkdir(parents=True, exist_ok=True)
	(args.out / "results.json").write_text(json.dumps(results, indent=1))

	print("Grid benchmark: %d MPI ranks, backend %s (%s; %d CPU threads per rank), %s, %s, buckets of %d bytes, median of "
		  "%d interleaved rounds (the slowest rank's time)" % (info.gridsize, backend.name, backend.deviceName, Config.cpuThreads,
															   results["date"], results["workload"], info.bucketBytes, repeats))
	print("%-42s %10s %12s" % ("step", "ms", "x Allreduce"))
	for name, seconds in medians.items():
		print("%-42s %10.1f %12.2f" % (name, seconds * 1e3, seconds / reference))
	print("optimizer state per rank: replicated %.1f MB, sharded %.1f MB (total / %d ranks = %.1f MB)" % (
		states["replicated"] / 1e6, states["sharded"] / 1e6, info.gridsize, total / info.gridsize / 1e6))
	for t in results["targets"]:
		print("%-4s %-55s %8.3f (goal %s)" % ("met" if t["met"] else "MISS", t["target"], t["measured"], t["goal"]))
	print("wrote %s" % (args.out / "results.json"))


if __name__ == "__main__":
	main()
