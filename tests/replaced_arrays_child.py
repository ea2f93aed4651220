"""One case of tests/test_replaced_arrays.py, in its own process: a variable's arrays are replaced by ones the kernel
must not touch; update() and zeroGradParams() must refuse them (OptimizerError naming the variable) and change
nothing: not the parameters, grads and states, not the guard arrays around the replacements. Prints "OK <case>"."""
import os
import sys

os.environ.setdefault("PUZZLELIB_RMSPROP_BACKEND", "cpu")

import numpy as np  # noqa: E402

from puzzlelib_rmsprop import OptimizerError, RMSProp  # noqa: E402
from puzzlelib_rmsprop.Backend import gpuarray  # noqa: E402
from puzzlelib_rmsprop.Backend.PuzzleLibArrays import isContiguous  # noqa: E402
from puzzlelib_rmsprop.Modules.Module import Module  # noqa: E402
from puzzlelib_rmsprop.Variable import Variable  # noqa: E402

N = 1000
GUARD = 4096


def guarded(size, dtype=np.float32):
	"""An array of ``size`` inside a block whose GUARD elements on each side hold a pattern; (array, block)."""
	block = gpuarray.to_gpu(np.full(size + 2 * GUARD, 7.25, dtype=dtype))
	return block[GUARD:GUARD + size], block


def bag():
	mod, rng = Module("bag"), np.random.default_rng(0)
	for name in ("v", "w"):
		var = Variable(gpuarray.to_gpu(rng.standard_normal(N).astype(np.float32)))
		var.grad.set(rng.standard_normal(N).astype(np.float32))
		mod.setVar(name, var)
	return mod


def replace(case, mod, blocks):
	w = mod.getVar("w")
	if case == "oversize":
		w.data, b1 = guarded(2 * N)
		w.grad, b2 = guarded(2 * N)
		blocks += [b1, b2]
	elif case == "undersize":
		w.grad, b = guarded(3)
		blocks.append(b)
	elif case == "float64":
		w.grad, b = guarded(N, np.float64)
		blocks.append(b)
	elif case == "strided":
		view, b = guarded(2 * N)
		w.grad = view[::2]
		blocks.append(b)
	elif case == "foreign":
		import torch
		w.grad = torch.ones(N)
		blocks.append(w.grad)
	elif case == "shared":
		w.grad = mod.getVar("v").grad
	elif case == "variable":  # a new Variable whose grad is oversize
		data, b1 = guarded(N)
		grad, b2 = guarded(2 * N)
		mod.setVar("w", Variable(data, grad=grad))
		blocks += [b1, b2]
	else:
		raise SystemExit("unknown case %r" % case)


def snapshot(opt, mod, blocks):
	arrays = [np.array(b.numpy() if hasattr(b, "numpy") else b.get(), copy=True) for b in blocks]  # the guards too
	for name in ("v", "w"):
		var = mod.getVar(name)
		for ary in (var.data, var.grad):
			if hasattr(ary, "numpy") or not isContiguous(ary):
				continue  # foreign and strided replacements: their whole block is in ``blocks`` already
			arrays.append(np.array(ary.get(), copy=True))
	arrays += [state["ms"].get().copy() for state in opt.states.values()]
	return arrays, opt.t


def main(case, useStreams):
	mod = bag()
	opt = RMSProp(learnRate=0.1)
	opt.setupOn(mod)
	opt.update()  # the tables are built on the original arrays
	blocks = []
	replace(case, mod, blocks)
	before = snapshot(opt, mod, blocks)
	for call in (lambda: opt.update(useStreams=useStreams), opt.zeroGradParams):
		try:
			call()
		except OptimizerError as e:
			assert "'bag.w'" in str(e) or "'bag.v'" in str(e), "the error does not name the variable: %s" % e
			print("error:", e)
		else:
			raise SystemExit("%s: no OptimizerError" % case)
		after = snapshot(opt, mod, blocks)
		assert after[1] == before[1], "t changed"
		for i, (x, y) in enumerate(zip(before[0], after[0])):
			assert np.array_equal(x, y), "%s: array %d changed" % (case, i)
	print("OK", case)


if __name__ == "__main__":
	main(sys.argv[1], sys.argv[2] == "streams")
