"""One MPI rank for tests/test_Sharding.py: ``shard_rank.py JOB.json OUTDIR``.

JOB.json holds a list of runs, done one after another in this MPI job (one launch for many configurations):
``{"name", "kind", "options", "shard", "dtype", "steps", "bucketBytes", "poison": [step, rank] or null,
"save": [path, atStep] or null, "load": [checkpoint, params.npz] or null}``.
Each run writes OUTDIR/<name>.rank<r>.npz: the final parameters, the losses, stateNbytes, skippedSteps and t."""
import json
import os
import sys

import numpy as np

os.environ.setdefault("PUZZLELIB_RMSPROP_BACKEND", "cpu")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import shard_model  # noqa: E402
from puzzlelib_rmsprop.Grid import MPINodeInfo  # noqa: E402


def run(info, spec, out):
	dtype = spec.get("dtype", "float32")
	dtype = dtype if dtype == "mixed" else np.dtype(dtype)
	model = shard_model.Model(dtype)
	opt = shard_model.makeOptimizer(spec["kind"], spec.get("options", {}), info, spec.get("shard", True), dtype)
	opt.setupOn(model, useGlobalState=True)
	poison = tuple(spec["poison"]) if spec.get("poison") else None
	steps, losses, start = spec["steps"], [], 0

	if spec.get("load"):
		checkpoint, params = spec["load"]
		model.setParams(dict(np.load(params)))
		opt.load(checkpoint)
		start = opt.t
	if spec.get("save"):
		path, at = spec["save"]
		losses += shard_model.train(model, opt, at, info.index, info.gridsize, poison)
		opt.save(path)
		if info.index == 0:
			np.savez(path + ".params.npz", **model.params())
		steps -= at
		start = at
	losses += shard_model.train(model, opt, steps, info.index, info.gridsize, poison, start)

	np.savez(os.path.join(out, "%s.rank%d.npz" % (spec["name"], info.index)), losses=np.array(losses),
			 stateNbytes=opt.stateNbytes, skippedSteps=opt.skippedSteps, t=opt.t, **model.params())


def main(job, out):
	with open(job) as f:
		specs = json.load(f)
	infos = {}
	for spec in specs:
		bucket = spec.get("bucketBytes", 4096)
		if bucket not in infos:
			infos[bucket] = MPINodeInfo(timeout=60, bucketBytes=bucket)
		run(infos[bucket], spec, out)


if __name__ == "__main__":
	main(sys.argv[1], sys.argv[2])
