"""One MPI rank for tests/test_Grid.py: ``grid_rank.py MODE OUTDIR [TIMEOUT]``.

train: the demo's training, data-parallel; writes this rank's errors and final parameters to OUTDIR.
die:   rank 1 exits abruptly at iteration 10.
hang:  rank 1 stops taking part at iteration 10 (sleeps); the others must give up after TIMEOUT seconds.
die-shard, hang-shard: the same with sharded optimizer state (tests/shard_model.py's model)."""
import os
import sys
import time

import numpy as np

os.environ.setdefault("PUZZLELIB_RMSPROP_BACKEND", "cpu")

from puzzlelib_rmsprop.Grid import MPINodeInfo  # noqa: E402
from puzzlelib_rmsprop import demo  # noqa: E402


class Sabotaged(MPINodeInfo):
	"""Rank 1 dies or hangs in the gradient averaging (the reduce-scatter) of iteration 10."""

	def __init__(self, mode, out, **kwargs):
		super().__init__(**kwargs)
		self.mode, self.out, self.calls = mode, out, 0

	def reduceScatter(self, name, ary, plan, gather=False):
		self.calls += 1
		if self.index == 1 and self.calls == 10:
			if self.mode.startswith("die"):
				with open(os.path.join(self.out, "died"), "w") as f:  # when, for the test's "at once"
					f.write(repr(time.time()))
				os._exit(7)
			time.sleep(3600)
		return super().reduceScatter(name, ary, plan, gather)


def trainSharded(nodeinfo):
	"""tests/shard_model.py's model with shardState, 30 steps: (losses, model as a net with getVarTable)."""
	sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
	import shard_model
	model = shard_model.Model()
	opt = shard_model.makeOptimizer("rmsprop", {}, nodeinfo, shardState=True)
	opt.setupOn(model, useGlobalState=True)
	return shard_model.train(model, opt, 30, nodeinfo.index, nodeinfo.gridsize), model


def main(mode, out, timeout=600.0):
	nodeinfo = MPINodeInfo(timeout=timeout) if mode == "train" else Sabotaged(mode, out, timeout=timeout)
	if mode.endswith("-shard"):
		errors, net = trainSharded(nodeinfo)
	else:
		errors, net = demo.train(iterations=30, report=lambda line: None, nodeinfo=nodeinfo)

	params = {names[0]: var.data.get() for var, names in net.getVarTable().items()}
	np.savez(os.path.join(out, "rank%d.npz" % nodeinfo.index), errors=np.array(errors), **params)


if __name__ == "__main__":
	main(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 600.0)
