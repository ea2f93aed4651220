"""A child for tests/test_Checkpoint.py: saves ever newer checkpoints to argv[1] until it is killed.
Version k has t = k and every ms element = k, so a reader can tell a whole version from a torn one.
With argv[2] = N and argv[3] = C, save N stops inside its write (after its C-th chunk is written) and prints
"inside N", so the parent's kill lands mid-save for sure."""
import os
import sys
import time

import numpy as np

from puzzlelib_rmsprop import RMSProp, Variable
from puzzlelib_rmsprop.Backend import gpuarray
from puzzlelib_rmsprop.Modules.Module import Module


def stopInsideSave(k, chunk):
	"""os.write that, on save k, writes ``chunk`` chunks, says so and waits to be killed."""
	realWrite, calls = os.write, {"save": 0, "chunks": 0}

	def write(fd, data):
		written = realWrite(fd, data)
		calls["chunks"] += calls["save"] == k
		if calls["chunks"] == chunk:
			print("inside", k, flush=True)
			time.sleep(600)
		return written
	os.write = write
	return calls


def main(path, stopAt=None, chunk=1):
	module = Module("big")
	for name in ("a", "b", "c"):
		module.setVar(name, Variable(gpuarray.zeros((2_000_000, ), np.float32)))

	opt = RMSProp()
	opt.setupOn(module, useGlobalState=True)
	calls = stopInsideSave(stopAt, chunk) if stopAt is not None else {"save": 0}

	for k in range(1, 1_000_000):
		for state in opt.states.values():
			state["ms"].fill(k)
		opt.t = k
		calls["save"] = k
		opt.save(path)
		print(k, flush=True)


if __name__ == "__main__":
	main(sys.argv[1], *map(int, sys.argv[2:4]))
