"""A child for tests/test_Checkpoint.py: saves ever newer checkpoints to argv[1] until it is killed.
Version k has t = k and every ms element = k, so a reader can tell a whole version from a torn one."""
import sys

import numpy as np

from puzzlelib_rmsprop import RMSProp, Variable
from puzzlelib_rmsprop.Backend import gpuarray
from puzzlelib_rmsprop.Modules.Module import Module


def main(path):
	module = Module("big")
	for name in ("a", "b", "c"):
		module.setVar(name, Variable(gpuarray.zeros((2_000_000, ), np.float32)))

	opt = RMSProp()
	opt.setupOn(module, useGlobalState=True)

	for k in range(1, 1_000_000):
		for state in opt.states.values():
			state["ms"].fill(k)
		opt.t = k
		opt.save(path)
		print(k, flush=True)


if __name__ == "__main__":
	main(sys.argv[1])
