"""Memory the user took back is never touched: arrays that replace a variable's after setupOn (local state) are
checked before any launch; the wrong ones are refused with nothing changed. Each case runs in its own process
(tests/replaced_arrays_child.py), so memory corruption shows as a failed test rather than a dead test run."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ParamBag
from puzzlelib_rmsprop import OptimizerError, RMSProp
from puzzlelib_rmsprop.Backend import gpuarray
from puzzlelib_rmsprop.Modules.Module import Module
from puzzlelib_rmsprop.Variable import Variable

CHILD = Path(__file__).with_name("replaced_arrays_child.py")
MESSAGES = {"oversize": "its data is now \\(2000,\\), but its state 'ms' is \\(1000,\\)", "undersize": "grad is \\(3,\\)",
			"float64": "grad is \\(1000,\\) float64", "strided": "grad is not contiguous", "foreign": "backend arrays, got GPUArray and Tensor",
			"shared": "shares memory", "variable": "grad is \\(2000,\\)"}


@pytest.mark.parametrize("useStreams", [False, True], ids=["launch", "streams"])
@pytest.mark.parametrize("case", sorted(MESSAGES))
def test_wrong_arrays_are_refused_and_nothing_changes(case, useStreams):
	if case == "foreign":
		pytest.importorskip("torch")
	env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(CHILD.parent.parent)] + sys.path))
	result = subprocess.run([sys.executable, str(CHILD), case, "streams" if useStreams else "launch"],
							capture_output=True, text=True, timeout=300, env=env)
	assert result.returncode == 0, "exit %d\n%s\n%s" % (result.returncode, result.stdout, result.stderr[-3000:])
	assert "OK %s" % case in result.stdout
	assert re.search(MESSAGES[case], result.stdout), result.stdout


def test_variables_sharing_memory_are_refused_at_setup():
	mod = Module("bag")
	block = gpuarray.zeros((10, ), np.float32)
	mod.setVar("a", Variable(block[:6]))
	mod.setVar("b", Variable(block[4:]))
	opt = RMSProp()
	with pytest.raises(OptimizerError, match="'bag.a': its data shares memory with the data of variable 'bag.b'|"
											 "'bag.b': its data shares memory with the data of variable 'bag.a'"):
		opt.setupOn(mod)
	assert opt.module is None and not opt.states
	RMSProp().setupOn(mod, useGlobalState=True)  # global state copies them into its own buffer


def test_replaced_arrays_are_trained_in_local_state(rng):
	"""Same-shape replacements are followed: the new arrays are updated with the variable's state."""
	bag = ParamBag({"w": ((50, ), np.float32)}, rng=rng)
	opt = RMSProp(learnRate=0.1)
	opt.setupOn(bag)
	opt.update()
	var = bag.vars["w"]
	old = var.data
	var.data, var.grad = gpuarray.to_gpu(np.zeros(50, np.float32)), gpuarray.to_gpu(np.ones(50, np.float32))
	keep = old.get().copy()
	opt.update()
	ms = opt.states["bag.w"]["ms"].get()
	np.testing.assert_array_equal(old.get(), keep)
	expected = np.float32(0.1) * 1 / (np.sqrt(ms) + np.float32(1e-5))
	np.testing.assert_allclose(var.data.get(), expected, rtol=1e-6)
	opt.zeroGradParams()
	assert not var.grad.get().any()


def test_global_state_updates_its_own_buffer_whatever_the_module_holds(rng):
	"""As PuzzleLib: a replaced array in global state is not ours; the packed buffer is updated, the array untouched."""
	bag = ParamBag({"w": ((50, ), np.float32)}, rng=rng)
	opt = RMSProp(learnRate=0.1)
	opt.setupOn(bag, useGlobalState=True)
	opt.globalVar[np.float32].grad.set(np.ones(opt.globalVar[np.float32].grad.shape, np.float32))
	var = bag.vars["w"]
	foreign = gpuarray.to_gpu(np.full(3, 5.0, np.float32))
	var.grad = foreign
	before = opt.globalVar[np.float32].data.get().copy()
	opt.update()
	assert (opt.globalVar[np.float32].data.get()[:50] > before[:50]).all()
	np.testing.assert_array_equal(foreign.get(), np.full(3, 5.0, np.float32))
