"""Drop-in under PuzzleLib's own code: the module followed as PuzzleLib follows it, hooks called as PuzzleLib calls
them, ``states[dtype]`` in global state, a second setupOn, and our ``layout="puzzlelib"`` checkpoints continued by
PuzzleLib 1.0.3 itself. Each run is compared step by step against PuzzleLib's own RMSProp on the same net.
"""
import h5py
import numpy as np
import pytest

import puzzlelib_oracle
from puzzlelib_rmsprop import RMSProp, RMSPropGraves
from puzzlelib_rmsprop.Backend import getBackend

pytestmark = [pytest.mark.puzzlelib, pytest.mark.skipif(
	getBackend().name != puzzlelib_oracle.BACKEND, reason="PuzzleLib's %s arrays need our %s backend" % ((puzzlelib_oracle.BACKEND, ) * 2))]

STEPS = 12
RTOL, ATOL = 1e-4, 2e-5  # as tests/test_puzzlelib_parity.py: far below one step at learnRate 1e-3


def buildNet(pl, seed=0):
	np.random.seed(seed)
	seq = pl.Sequential.Sequential(name="seq")
	seq.append(pl.Linear.Linear(16, 8, name="fc1"))
	seq.append(pl.Activation.Activation(pl.Activation.tanh, name="act"))
	seq.append(pl.Linear.Linear(8, 1, name="fc2"))
	return seq


def weights(net):
	return {names[0]: var.data.get().copy() for var, names in net.getVarTable().items()}


class Run:
	"""A training run of ``optimizer`` on a fresh net; ``events[step](run)`` runs before that step's update."""

	def __init__(self, pl, optimizer, useGlobalState, seed=0):
		self.pl, self.opt, self.net = pl, optimizer, buildNet(pl, seed)
		self.opt.setupOn(self.net, useGlobalState=useGlobalState)
		rng = np.random.RandomState(seed + 1)
		self.data = pl.gpuarray.to_gpu(rng.randn(12, 16).astype(np.float32))
		self.target = pl.gpuarray.to_gpu(rng.randn(12, 1).astype(np.float32))
		self.mse, self.losses, self.history = pl.MSE.MSE(), [], []

	def train(self, steps, events=None):
		for step in range(steps):
			error, grad = self.mse(self.net(self.data), self.target)
			self.opt.zeroGradParams()
			self.net.backward(grad, momentum=0.0)  # PuzzleLib's CPU GEMM rejects the default momentum=1.0
			if events and step in events:
				events[step](self)
			self.opt.update()
			self.losses.append(float(error))
			self.history.append(weights(self.net))
		return self


def assertRunsAgree(theirs, ours):
	np.testing.assert_allclose(ours.losses, theirs.losses, rtol=RTOL, atol=ATOL)
	for step, (expected, got) in enumerate(zip(theirs.history, ours.history)):
		assert expected.keys() == got.keys()
		for name in expected:
			np.testing.assert_allclose(got[name], expected[name], rtol=RTOL, atol=ATOL, err_msg="%s at step %d" % (name, step + 1))


def replaceVariable(run):
	"""A new Variable for fc1.W (PuzzleLib's class, fresh arrays), as ``net["fc1"].setVar("W", ...)`` does."""
	from PuzzleLib.Variable import Variable
	old = run.net.getVar("fc1.W")
	fresh = Variable(run.pl.gpuarray.to_gpu(np.full(old.data.shape, 0.5, np.float32)))
	fresh.grad.set(old.grad.get())
	run.net["fc1"].setVar("W", fresh)


def replaceArrays(run):
	"""New data and grad arrays (same shape and dtype) in the variables of fc2."""
	for name in ("fc2.W", "fc2.b"):
		var = run.net.getVar(name)
		var.data, var.grad = run.pl.gpuarray.to_gpu(var.data.get() * 0.5), run.pl.gpuarray.to_gpu(var.grad.get())


@pytest.mark.parametrize("events", [{0: replaceVariable}, {4: replaceVariable}, {3: replaceArrays},
									{2: replaceArrays, 6: replaceVariable}], ids=["variable@1", "variable@5", "arrays@4", "both"])
def test_replaced_variables_train_as_in_puzzlelib(puzzlelib, events):
	pl = puzzlelib
	theirs = Run(pl, pl.RMSProp.RMSProp(), False).train(STEPS, events)
	ours = Run(pl, RMSProp(), False).train(STEPS, events)
	assertRunsAgree(theirs, ours)
	assert not np.array_equal(theirs.history[-1]["fc1.W"], theirs.history[0]["fc1.W"])


@pytest.mark.parametrize("useGlobalState", [False, True])
def test_setup_on_twice_goes_on_as_puzzlelib(puzzlelib, useGlobalState):
	pl = puzzlelib
	again = {5: lambda run: run.opt.setupOn(run.net, useGlobalState=useGlobalState)}
	theirs = Run(pl, pl.RMSProp.RMSProp(), useGlobalState).train(STEPS, again)
	ours = Run(pl, RMSProp(), useGlobalState).train(STEPS, again)
	assertRunsAgree(theirs, ours)
	assert ours.opt.t == theirs.opt.t == STEPS


class GlobalNormClip:
	"""Gradient clipping by the global norm, written for PuzzleLib's global state: ``hook(globalVar, state)``."""

	def __init__(self, maxNorm):
		self.maxNorm, self.calls = maxNorm, 0

	def __call__(self, var, state):
		self.calls += 1
		grad = var.grad.get()
		norm = float(np.linalg.norm(grad))
		if norm > self.maxNorm:
			var.grad.set((grad * np.float32(self.maxNorm / norm)).astype(np.float32))


def test_two_argument_hook_in_global_state(puzzlelib):
	pl = puzzlelib
	theirHook, ourHook = GlobalNormClip(0.05), GlobalNormClip(0.05)
	theirOpt, ourOpt = pl.RMSProp.RMSProp(learnRate=1e-2), RMSProp(learnRate=1e-2)
	theirOpt.addHook(theirHook)
	ourOpt.addHook(ourHook)
	theirs = Run(pl, theirOpt, True).train(STEPS)
	ours = Run(pl, ourOpt, True).train(STEPS)
	assertRunsAgree(theirs, ours)
	assert ourHook.calls == theirHook.calls == STEPS  # once per dtype per step


def test_states_by_dtype_in_global_state(puzzlelib):
	pl = puzzlelib
	theirs = Run(pl, pl.RMSProp.RMSProp(), True).train(3)
	ours = Run(pl, RMSProp(), True).train(3)
	theirMs, ourMs = theirs.opt.states[np.float32]["ms"].get(), ours.opt.states[np.float32]["ms"].get()
	# over the whole packed buffer (ours starts each variable on 16 bytes, PuzzleLib's CPU buffer is packed)
	assert ourMs.shape == ours.opt.globalVar[np.float32].data.shape
	theirOffset = 0
	for name in sorted(weights(ours.net)):
		shape, offset = ours.opt.shParams[np.float32].regs[name]
		size = int(np.prod(shape))
		np.testing.assert_allclose(ourMs[offset:offset + size], theirMs[theirOffset:theirOffset + size], rtol=1e-4, atol=1e-7)
		np.testing.assert_array_equal(ours.opt.states[name]["ms"].get().ravel(), ourMs[offset:offset + size])
		theirOffset += size
	assert theirOffset == theirMs.size and ourMs.any()
	assert np.float32 in ours.opt.states and "fc1.W" in ours.opt.states and np.float64 not in ours.opt.states


OPTIMIZERS = {"RMSProp": (lambda pl: pl.RMSProp.RMSProp(), RMSProp),
			  "RMSPropGraves": (lambda pl: pl.RMSPropGraves.RMSPropGraves(), RMSPropGraves)}


@pytest.mark.parametrize("useGlobalState", [False, True])
@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
def test_puzzlelib_continues_our_puzzlelib_layout(puzzlelib, tmp_path, kind, useGlobalState):
	"""Ours trains, saves with layout="puzzlelib"; PuzzleLib's own optimizer of the class loads it into a net with
	the same weights and goes on: its steps equal ours going on from the same point."""
	pl = puzzlelib
	theirMake, ourMake = OPTIMIZERS[kind]
	ours = Run(pl, ourMake(), useGlobalState).train(5)
	path = tmp_path / "opt.h5"
	ours.opt.save(str(path), layout="puzzlelib")

	theirs = Run(pl, theirMake(pl), useGlobalState)
	for name, value in weights(ours.net).items():
		theirs.net.getVar(name).data.set(value)
	theirs.opt.load(str(path))
	assert theirs.opt.t == 5

	ours.train(STEPS)
	theirs.train(STEPS)
	ours.losses, ours.history = ours.losses[5:], ours.history[5:]
	assertRunsAgree(theirs, ours)


def test_fresh_state_would_differ(puzzlelib):
	"""The check above can fail: going on from zero state instead of the saved one moves the weights apart."""
	pl = puzzlelib
	ours = Run(pl, RMSProp(), True).train(5)
	theirs = Run(pl, pl.RMSProp.RMSProp(), True)
	for name, value in weights(ours.net).items():
		theirs.net.getVar(name).data.set(value)
	ours.train(3)
	theirs.train(3)
	ours.losses, ours.history = ours.losses[5:], ours.history[5:]
	with pytest.raises(AssertionError):
		assertRunsAgree(theirs, ours)


@pytest.mark.parametrize("useGlobalState", [False, True])
def test_puzzlelib_layout_file_keys(puzzlelib, tmp_path, useGlobalState):
	"""The keys are PuzzleLib's: by name in local state, by the CPU backend's dtype key over the packed buffer."""
	pl = puzzlelib
	ours = Run(pl, RMSProp(), useGlobalState).train(2)
	theirs = Run(pl, pl.RMSProp.RMSProp(), useGlobalState).train(2)
	ours.opt.save(str(tmp_path / "ours.h5"), layout="puzzlelib")
	theirs.opt.save(str(tmp_path / "theirs.h5"))
	with h5py.File(tmp_path / "ours.h5", "r") as a, h5py.File(tmp_path / "theirs.h5", "r") as b:
		assert sorted(a[".states"].keys()) == sorted(b[".states"].keys())
		assert sorted(a[".attrs"].keys()) == sorted(b[".attrs"].keys())
		for key in b[".states"]:
			assert a[".states"][key].shape == b[".states"][key].shape and a[".states"][key].dtype == b[".states"][key].dtype
