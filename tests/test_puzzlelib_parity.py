"""Drop-in proof: PuzzleLib 1.0.3 nets trained by PuzzleLib's RMSProp and by ours, from the same weights and data.

Tolerances (docs/tolerances.md), all absolute and growing with the steps taken since both sides held the same state.
PuzzleLib's CPU kernel is compiled with -O3 -march=native -ffast-math and contracts to FMA, ours is IEEE float32
without contraction, so one step from the same state differs by at most STEP_ULPS = 2 ulp of ms and of the parameter
(test_one_step_from_the_same_state). A run adds that at every step, and the earlier differences come back through
the forward pass, the gradient and ms about as much again; so a tensor after k steps must agree within
WEIGHT_ULPS = 2 * STEP_ULPS ulp per step of its scale (its largest |value|, at least lr: a bias starts at 0 and
moves by about lr per step), and the loss on the weights after k steps within WEIGHT_ULPS * (k + 1) ulp of the
largest loss so far (a small loss sums squares of residuals that keep the absolute error of the initial scale).
Measured over every run here: at most 3.7 ulp per step on the weights and 0.5 on the losses. Our reference
modules against PuzzleLib's (test_reference_modules_on_our_backend_match_puzzlelib) also compute the forward and
backward passes in another summation order: MODULE_WEIGHT_ULPS = 16 per step on the weights (measured 10.7), the
losses as above (measured 0.5; numpy 2.4.6). A wrong sign, epsilon placement, factor or multiplier moves a weight by
about a full step (1e-3): thousands of those ulps at step 1.
"""
import importlib.util
import re

import h5py
import numpy as np
import pytest

import puzzlelib_oracle
from conftest import flushToZero, runTestFiles
from puzzlelib_rmsprop import OptimizerError, RMSProp, RMSPropGraves, WeightDecay
from puzzlelib_rmsprop.Backend import getBackend, gpuarray

pytestmark = pytest.mark.puzzlelib

#: Our optimizer on PuzzleLib's nets needs PuzzleLib's arrays to be our backend's kind: its CPUArrays on our CPU backend
#: (PuzzleLib runs on its CPU backend here), its CUDA arrays on our CUDA backend (on a GPU where its CUDA driver was
#: built: tests/gpu/device_check.sh). Otherwise test_reference_modules_on_our_backend_match_puzzlelib compares.
onPuzzleLibArrays = pytest.mark.skipif(getBackend().name != puzzlelib_oracle.BACKEND,
									   reason="PuzzleLib's %s arrays need our %s backend" % ((puzzlelib_oracle.BACKEND, ) * 2))

STEPS = 20
LEARN_RATE = 1e-3  # of every run compared here
#: ulps one step of our kernel may differ from PuzzleLib's from the same state
STEP_ULPS = 2
#: per step, for runs of the same PuzzleLib net: the kernel's STEP_ULPS and as much again fed back through the net
WEIGHT_ULPS = 2 * STEP_ULPS
#: per step, our reference modules against PuzzleLib's (another summation order in the passes too): measured x 1.5-2
MODULE_WEIGHT_ULPS = 16


def stepBound(expected, steps: int, ulps: int) -> float:
	"""The absolute tolerance for a tensor after ``steps`` steps: ``ulps`` ulp per step of the tensor's scale, its
	largest |value| or lr, whichever is larger."""
	scale = max(float(np.abs(np.asarray(expected, np.float32)).max()), LEARN_RATE)
	return ulps * steps * float(np.spacing(np.float32(scale)))


def assertAfterSteps(got, expected, steps: int, what: str, ulps: int = WEIGHT_ULPS) -> None:
	np.testing.assert_allclose(got, expected, rtol=0, atol=stepBound(expected, steps, ulps), err_msg="%s after %d steps" % (what, steps))


def assertLossAfterSteps(got, expected, steps: int, scale: float, ulps: int = WEIGHT_ULPS) -> None:
	"""The loss computed on the weights after ``steps`` steps: within ``ulps`` ulp per step, plus one, of ``scale``,
	the largest loss so far. Not of itself: a small loss is a sum of squares of residuals that are differences of
	outputs and targets of the initial loss's scale, and those keep their absolute rounding error."""
	bound = ulps * (steps + 1) * float(np.spacing(np.float32(scale)))
	assert abs(float(got) - float(expected)) <= bound, "loss %r vs PuzzleLib's %r after %d steps (bound %.3g)" % (got, expected, steps, bound)


def buildSequential(pl, seed):
	np.random.seed(seed)
	seq = pl.Sequential.Sequential(name="seq")
	seq.append(pl.Linear.Linear(32, 16, name="fc1"))
	seq.append(pl.Activation.Activation(pl.Activation.tanh, name="act1"))
	seq.append(pl.Linear.Linear(16, 8, useBias=False, name="fc2"))
	seq.append(pl.Activation.Activation(pl.Activation.sigmoid, name="act2"))
	seq.append(pl.Linear.Linear(8, 1, name="fc3"))
	return seq


def buildBranchGraph(pl, seed):
	"""Two Linears joined by Add, then by Concat: fc1 -> relu -> {left, right} -> Add, Concat(Add, right) -> out."""
	np.random.seed(seed)
	fc1 = pl.Linear.Linear(32, 16, name="fc1").node()
	act = pl.Activation.Activation(pl.Activation.relu, name="act").node(fc1)
	left = pl.Linear.Linear(16, 8, name="left").node(act)
	right = pl.Linear.Linear(16, 8, useBias=False, name="right").node(act)
	add = pl.Add.Add(name="add").node(left, right)
	tanh = pl.Activation.Activation(pl.Activation.tanh, name="tanh").node(add)
	concat = pl.Concat.Concat(axis=1, name="concat").node(tanh, right)
	out = pl.Linear.Linear(16, 1, name="out").node(concat)
	return pl.Graph.Graph(inputs=fc1, outputs=out, name="graph")


NETS = {"sequential": buildSequential, "branchGraph": buildBranchGraph}


def weights(net):
	return {names[0]: var.data.get() for var, names in net.getVarTable().items()}


class Run:
	"""One training run; records the loss and every weight after every step."""

	def __init__(self, pl, netName, optimizer, useGlobalState, multipliers=None, wc=None, hook=None, seed=0):
		self.pl, self.net, self.opt = pl, NETS[netName](pl, seed), optimizer
		for name, value in (multipliers or {}).items():
			self.net.getVar(name).learnRate = value
		for name, value in (wc or {}).items():
			self.net.getVar(name).wc = value
		if hook is not None:
			self.opt.addHook(hook)

		self.opt.setupOn(self.net, useGlobalState=useGlobalState)
		rng = np.random.RandomState(seed + 1)
		self.data = pl.gpuarray.to_gpu(rng.randn(16, 32).astype(np.float32))
		self.target = pl.gpuarray.to_gpu(rng.randn(16, 1).astype(np.float32))
		self.mse = pl.MSE.MSE()
		self.losses, self.history = [], []

	def train(self, steps):
		for _ in range(steps):
			error, grad = self.mse(self.net(self.data), self.target)
			self.opt.zeroGradParams()
			self.net.backward(grad, momentum=0.0)  # PuzzleLib's CPU GEMM rejects the default momentum=1.0
			self.opt.update()
			self.losses.append(float(error))
			self.history.append(weights(self.net))
		return self


def assertRunsAgree(theirs, ours):
	"""Step by step (counted from where both runs held the same state): losses and every weight within the bounds."""
	assert len(ours.losses) == len(theirs.losses) == len(theirs.history) == len(ours.history) > 0
	for step, (got, expected) in enumerate(zip(ours.losses, theirs.losses)):
		assertLossAfterSteps(got, expected, step, max(theirs.losses[:step + 1]))
	for step, (expected, got) in enumerate(zip(theirs.history, ours.history)):
		assert expected.keys() == got.keys()
		for name in expected:
			assertAfterSteps(got[name], expected[name], step + 1, name)


@onPuzzleLibArrays
@pytest.mark.parametrize("useGlobalState", [False, True])
@pytest.mark.parametrize("netName", sorted(NETS))
def test_training_matches_puzzlelib(puzzlelib, netName, useGlobalState):
	pl = puzzlelib
	# default hyperparameters on both sides: a wrong default fails here too
	theirs = Run(pl, netName, pl.RMSProp.RMSProp(), useGlobalState).train(STEPS)
	ours = Run(pl, netName, RMSProp(), useGlobalState).train(STEPS)

	assertRunsAgree(theirs, ours)
	assert theirs.losses[-1] < theirs.losses[0], "the reference run should learn"


@onPuzzleLibArrays
@pytest.mark.parametrize("useGlobalState", [False, True])
def test_our_optimizer_trains_puzzlelib_net_on_its_own_arrays(puzzlelib, useGlobalState):
	"""In global state the net's variables are rebound to CPUArray views of our buffers: the net computes on them."""
	pl = puzzlelib
	run = Run(pl, "branchGraph", RMSProp(learnRate=1e-2), useGlobalState)
	for var in run.net.getVarTable():
		assert type(var.data).__name__ == "CPUArray" and type(var).__module__ == "PuzzleLib.Variable"

	if useGlobalState:
		flat = run.opt.globalVar[np.float32].data
		first = run.net.getVar("fc1.W").data
		assert np.shares_memory(first.data, flat), "fc1.W must be a view of the global buffer"

	run.train(30)
	assert run.losses[-1] < 0.5 * run.losses[0]


MULTIPLIERS = {"fc1.W": 0.5, "fc2.W": 0.0, "fc3.b": 2.0}


@onPuzzleLibArrays
@pytest.mark.parametrize("useGlobalState", [False, True])
def test_per_variable_learn_rate(puzzlelib, useGlobalState):
	"""PuzzleLib honours multipliers only in local state: ours honours them in both, with the same numbers."""
	pl = puzzlelib
	theirs = Run(pl, "sequential", pl.RMSProp.RMSProp(learnRate=1e-3), False, multipliers=MULTIPLIERS).train(STEPS)
	ours = Run(pl, "sequential", RMSProp(learnRate=1e-3), useGlobalState, multipliers=MULTIPLIERS).train(STEPS)

	assertRunsAgree(theirs, ours)
	np.testing.assert_array_equal(ours.history[-1]["fc2.W"], weights(NETS["sequential"](pl, 0))["fc2.W"])


@onPuzzleLibArrays
@pytest.mark.parametrize("useGlobalState", [False, True])
def test_weight_decay(puzzlelib, useGlobalState):
	pl = puzzlelib
	wc = {"fc1.W": 1.0, "fc3.W": 0.5}
	theirs = Run(pl, "sequential", pl.RMSProp.RMSProp(learnRate=1e-3), False, wc=wc,
				 hook=pl.Hooks.WeightDecay(0.05)).train(STEPS)
	ours = Run(pl, "sequential", RMSProp(learnRate=1e-3), useGlobalState, wc=wc, hook=WeightDecay(0.05)).train(STEPS)

	assertRunsAgree(theirs, ours)


def test_puzzlelib_global_state_loses_multipliers(puzzlelib):
	"""The flaw we fix, shown on PuzzleLib itself: its global state ignores a frozen variable."""
	pl = puzzlelib
	run = Run(pl, "sequential", pl.RMSProp.RMSProp(learnRate=1e-3), True, multipliers={"fc2.W": 0.0}).train(2)
	assert not np.array_equal(run.history[-1]["fc2.W"], weights(NETS["sequential"](pl, 0))["fc2.W"])


def test_one_step_from_the_same_state(puzzlelib):
	"""From identical param, grad and ms, one step of each kernel agrees within 2 ulp."""
	pl = puzzlelib
	rng = np.random.RandomState(3)
	param, grad = rng.randn(4099).astype(np.float32), rng.randn(4099).astype(np.float32)
	ms = (rng.randn(4099) ** 2).astype(np.float32)

	from PuzzleLib.Backend.Kernels.ElementWise import rmspropKer as theirKer
	from puzzlelib_rmsprop.Kernels import rmspropKer as ourKer
	from puzzlelib_rmsprop.Backend import gpuarray

	theirs = [pl.gpuarray.to_gpu(a) for a in (param, grad, ms)]
	ours = [gpuarray.to_gpu(a) for a in (param, grad, ms)]
	theirKer(np.float32)(theirs[0], theirs[1], theirs[2], 1e-3, 0.9, 1e-5)
	ourKer(np.float32)(ours[0], ours[1], ours[2], 1e-3, 0.9, 1e-5)

	for i in (0, 2):
		ulps = np.abs(theirs[i].get().view(np.int32).astype(np.int64) - ours[i].get().view(np.int32).astype(np.int64))
		assert ulps.max() <= STEP_ULPS


def test_puzzlelib_kernels_flush_denormals_and_ours_do_not(puzzlelib):
	"""PuzzleLib's -ffast-math kernels run in the flush-to-zero mode they set for themselves (a denormal parameter
	with a zero step reads as 0); back in our code denormals are IEEE again (tests/puzzlelib_oracle.py)."""
	from PuzzleLib.Backend.Kernels.ElementWise import rmspropKer as theirKer

	denormal = np.full(8, 1e-40, dtype=np.float32)
	param, grad, ms = (puzzlelib.gpuarray.to_gpu(a) for a in (denormal, np.zeros(8, np.float32), np.ones(8, np.float32)))
	theirKer(np.float32)(param, grad, ms, 1e-3, 0.9, 1e-5)
	np.testing.assert_array_equal(param.get(), 0, err_msg="PuzzleLib's kernel kept denormals: not its own mode")
	assert not flushToZero(), "PuzzleLib's kernel left flush-to-zero on"
	assert (denormal * np.float32(1.0) == denormal).all()


def test_denormal_suites_pass_after_puzzlelib(puzzlelib):
	"""The order that once failed: PuzzleLib's kernels first, then the suites whose inputs include float32
	denormals (hypothesis draws them; test_Quantized8 feeds them), in one process, in both file orders."""
	files = ["tests/test_puzzlelib_parity.py::test_one_step_from_the_same_state",
			 "tests/test_Guarantees.py::test_property_optimizer_against_reference",
			 "tests/test_Quantized8.py::test_codes_match_the_independent_reference"]
	for order in (files, files[::-1]):
		summary = runTestFiles(order, timeout=600)
		assert re.search(r"^\d+ passed in", summary), summary


def onOurBackend(kernelCall, *cpuArrays):
	"""Runs ``kernelCall`` on copies of PuzzleLib CPUArrays in our backend's arrays (device memory on CUDA) and
	writes the results back, so PuzzleLib's own tests check our kernels' numbers on either backend."""
	ours = [gpuarray.to_gpu(a.data) for a in cpuArrays]
	kernelCall(*ours)
	for mine, theirs in zip(ours, cpuArrays):
		theirs.data[...] = mine.get()


def test_puzzlelib_calc_test_on_our_kernel(puzzlelib, monkeypatch):
	"""PuzzleLib's own RMSProp.calcTest, with its kernel swapped for ours: its assertions check our numbers."""
	import importlib
	from puzzlelib_rmsprop.Kernels import rmspropKer

	module = importlib.import_module("PuzzleLib.Optimizers.RMSProp")
	seen = []

	def ourKer(dtype):
		kernel = rmspropKer(dtype)

		def launch(w, dw, ms, lr, factor, epsilon, stream=None):
			seen.append(dtype)
			onOurBackend(lambda *arrays: kernel(*arrays, lr, factor, epsilon), w, dw, ms)
		return launch

	monkeypatch.setattr(module, "rmspropKer", ourKer)
	np.random.seed(0)
	module.calcTest(np.float32, 1e-5)
	assert seen == [np.float32]


def saveAndContinue(saver: Run, path: str, before: int = 5, after: int = 10):
	"""Trains ``saver`` ``before`` steps, saves, trains ``after`` more; returns the weights at the save."""
	saver.train(before)
	saver.opt.save(path)
	saved = saver.history[-1]
	saver.train(after)
	saver.history, saver.losses = saver.history[-after:], saver.losses[-after:]
	return saved


def resumeAndCompare(expected: Run, loader: Run, saved, path: str, after: int = 10):
	"""Puts the saved weights into ``loader``'s net, loads the checkpoint, trains: must match ``expected``."""
	for name, w in saved.items():
		loader.net.getVar(name).data.set(w)
	loader.opt.load(path)
	assert loader.opt.t == 5 and loader.opt.learnRate == 1e-3
	loader.train(after)
	assertRunsAgree(expected, loader)


@onPuzzleLibArrays
def test_checkpoint_from_puzzlelib_continues_exactly_as_puzzlelib(puzzlelib, tmp_path):
	pl, path = puzzlelib, str(tmp_path / "theirs.hdf")
	theirs = Run(pl, "branchGraph", pl.RMSProp.RMSProp(learnRate=1e-3), False)
	saved = saveAndContinue(theirs, path)

	for useGlobalState in (False, True):
		resumeAndCompare(theirs, Run(pl, "branchGraph", RMSProp(), useGlobalState), saved, path)


@onPuzzleLibArrays
def test_puzzlelib_loads_our_checkpoint(puzzlelib, tmp_path):
	pl, path = puzzlelib, str(tmp_path / "ours.hdf")
	ours = Run(pl, "sequential", RMSProp(learnRate=1e-3), True)
	saved = saveAndContinue(ours, path)

	resumeAndCompare(ours, Run(pl, "sequential", pl.RMSProp.RMSProp(), False), saved, path)


def buildUnsortedGraph(pl, seed):
	"""Variable names out of sorted order, upper and lower case ("zeta", "Alpha", "mid"), odd sizes, and a variable
	with its own updater (PuzzleLib's global state leaves it out of the buffer)."""
	np.random.seed(seed)
	zeta = pl.Linear.Linear(32, 7, name="zeta").node()
	act = pl.Activation.Activation(pl.Activation.tanh, name="act").node(zeta)
	alpha = pl.Linear.Linear(7, 5, name="Alpha").node(act)
	net = pl.Graph.Graph(inputs=zeta, outputs=pl.Linear.Linear(5, 1, name="mid").node(alpha), name="graph")
	net.getVar("mid.b").updater = lambda var, learnRate: var.data.set(var.data.get() * np.float32(0.99))
	return net


NETS["unsortedGraph"] = buildUnsortedGraph


@onPuzzleLibArrays
@pytest.mark.parametrize("optimizers", ["RMSProp", "RMSPropGraves"])
def test_puzzlelib_global_state_checkpoint_continues_as_puzzlelib(puzzlelib, optimizers, tmp_path):
	"""PuzzleLib's global-state file (keyed by dtype, one flat buffer) loads into ours in both state modes, mapped
	to the variables through the module's layout, and training continues with PuzzleLib's numbers."""
	pl, path = puzzlelib, str(tmp_path / "global.hdf")
	make = lambda: getattr(getattr(pl, optimizers), optimizers)(learnRate=1e-3)
	ours = {"RMSProp": RMSProp, "RMSPropGraves": RMSPropGraves}[optimizers]
	theirs = Run(pl, "unsortedGraph", make(), True)
	saved = saveAndContinue(theirs, path)
	with h5py.File(path, "r") as f:
		assert all(key.startswith("<class 'numpy.float32'>.") for key in f[".states"]), "PuzzleLib's global layout"

	for useGlobalState in (False, True):
		resumeAndCompare(theirs, Run(pl, "unsortedGraph", ours(), useGlobalState), saved, path)


@onPuzzleLibArrays
def test_puzzlelib_global_state_checkpoint_of_another_module_is_refused(puzzlelib, tmp_path):
	pl, path = puzzlelib, str(tmp_path / "global.hdf")
	Run(pl, "unsortedGraph", pl.RMSProp.RMSProp(), True).train(2).opt.save(path)

	ours = Run(pl, "sequential", RMSProp(), True).train(1)
	before = {name: state["ms"].get() for name, state in ours.opt.states.items()}
	message = r"dataset \"<class 'numpy.float32'>.ms\" is \(276,\), but this module's float32 variables take \(665,\) in " \
			  r"PuzzleLib's CPU \(packed\) layout: another module\?"
	with pytest.raises(OptimizerError, match=message):
		ours.opt.load(path)
	assert ours.opt.t == 1 and all(np.array_equal(ours.opt.states[n]["ms"].get(), ms) for n, ms in before.items())


@onPuzzleLibArrays
def test_puzzlelib_cuda_global_state_layout(puzzlelib, tmp_path):
	"""PuzzleLib's CUDA global-state files (key "float32.ms", blocks padded to 16 bytes): the layout we rebuild is
	the one PuzzleLib's own Cuda/Utils.py SharedArray makes, run from its sdist over a host stand-in array."""
	from puzzlelib_rmsprop.bench.puzzlelibCudaPeer import packageRoot

	# the installed PuzzleLib is CPU-only: Cuda/Utils.py (pure Python) comes from the sdist, by its path
	spec = importlib.util.spec_from_file_location("puzzlelibCudaUtils", packageRoot(puzzlelib_oracle.sdist()) / "PuzzleLib" / "Cuda" / "Utils.py")
	utils = importlib.util.module_from_spec(spec)
	spec.loader.exec_module(utils)

	class HostBuffer:
		def __init__(self, memory, offset=0):
			self.memory, self.offset = memory, offset

		def __getitem__(self, item):
			return HostBuffer(self.memory, self.offset + item.start)

	class HostArray:
		def __init__(self, shape, dtype, allocator=None, gpudata=None):
			self.shape, self.dtype = tuple(shape), np.dtype(dtype)
			self.gpudata = gpudata or HostBuffer(np.zeros(int(np.prod(shape)) * self.dtype.itemsize, np.uint8))

		@staticmethod
		def empty(shape, dtype, allocator=None):
			return HostArray(shape, dtype, allocator)

	class SharedArray(utils.SharedArray):
		GPUArray = HostArray

	pl = puzzlelib
	net = buildUnsortedGraph(pl, 0)
	variables = sorted(((names, var) for var, names in net.getVarTable().items()), key=lambda item: item[0][0])
	shared = SharedArray(np.float32)
	for names, var in variables:
		if not var.hasUpdater:  # PuzzleLib's setupGlobalState
			shared.register(var.data.shape, var.data.dtype.type, names[0])
	shared.build()

	flat = np.full(shared.ary.gpudata.memory.size // 4, np.nan, np.float32)  # padding holds garbage, as on a GPU
	expected = {}
	for i, (name, block) in enumerate(shared.blocks.items()):
		offset, size = block.gpudata.offset // 4, int(np.prod(block.shape))
		flat[offset:offset + size] = expected[name] = np.arange(size, dtype=np.float32) + 1000 * i
	path = str(tmp_path / "cuda.hdf")
	with h5py.File(path, "w") as f:
		f.create_dataset(".attrs/t", data=3)
		f.create_dataset(".states/float32.ms", data=flat)

	for useGlobalState in (False, True):
		ours = Run(pl, "unsortedGraph", RMSProp(), useGlobalState)
		ours.opt.load(path)
		assert ours.opt.t == 3 and sorted(ours.opt.states) == sorted(expected) and "mid.b" not in expected
		for name, ms in expected.items():
			np.testing.assert_array_equal(ours.opt.states[name]["ms"].get().ravel(), ms, err_msg=name)


@onPuzzleLibArrays
@pytest.mark.parametrize("useGlobalState", [False, True])
@pytest.mark.parametrize("netName", sorted(NETS))
def test_graves_matches_puzzlelib(puzzlelib, netName, useGlobalState):
	"""RMSPropGraves with default hyperparameters except a larger learnRate (so 20 steps move the weights)."""
	pl = puzzlelib
	theirs = Run(pl, netName, pl.RMSPropGraves.RMSPropGraves(learnRate=1e-3), useGlobalState).train(STEPS)
	ours = Run(pl, netName, RMSPropGraves(learnRate=1e-3), useGlobalState).train(STEPS)

	assertRunsAgree(theirs, ours)
	assert theirs.losses[-1] < theirs.losses[0]


@onPuzzleLibArrays
def test_graves_checkpoints_interchange(puzzlelib, tmp_path):
	pl, path = puzzlelib, str(tmp_path / "graves.hdf")
	theirs = Run(pl, "sequential", pl.RMSPropGraves.RMSPropGraves(learnRate=1e-3), False)
	saved = saveAndContinue(theirs, path)
	resumeAndCompare(theirs, Run(pl, "sequential", RMSPropGraves(), True), saved, path)


@onPuzzleLibArrays
@pytest.mark.parametrize("useGlobalState", [False, True])
def test_puzzlelib_graves_loads_our_checkpoint(puzzlelib, useGlobalState, tmp_path):
	"""Our RMSPropGraves's file (ms, mg, delta per variable) in PuzzleLib's RMSPropGraves: it continues with
	PuzzleLib's numbers, i.e. as our optimizer would have."""
	pl, path = puzzlelib, str(tmp_path / "ours-graves.hdf")
	ours = Run(pl, "sequential", RMSPropGraves(learnRate=1e-3), useGlobalState)
	saved = saveAndContinue(ours, path)
	resumeAndCompare(ours, Run(pl, "sequential", pl.RMSPropGraves.RMSPropGraves(), False), saved, path)


def test_puzzlelib_graves_calc_test_on_our_kernel(puzzlelib, monkeypatch):
	"""PuzzleLib's own RMSPropGraves.calcTest (epsilon 10, random initial mg, ms, delta), on our flavour kernel."""
	import importlib
	from puzzlelib_rmsprop.Kernels import MOMENTUM_IN_LR, Flavour, flavourUpdate

	module = importlib.import_module("PuzzleLib.Optimizers.RMSPropGraves")
	calls = []

	def ourKer(dtype):
		def launch(w, dw, mg, ms, delta, lr, alpha, mr, epsilon, stream=None):
			calls.append(dtype)
			flavour = Flavour(alpha, epsilon, centered=True, epsilonInSqrt=True, momentumMode=MOMENTUM_IN_LR)
			onOurBackend(lambda w, dw, mg, ms, delta: flavourUpdate(w, dw, ms, mg, delta, lr, mr, flavour), w, dw, mg, ms, delta)
		return launch

	monkeypatch.setattr(module, "rmspropGravesKer", ourKer)
	np.random.seed(0)
	module.calcTest(np.float32, 1e-5)
	assert calls == [np.float32]


@pytest.mark.parametrize("optimizers", ["RMSProp", "RMSPropGraves"])
@pytest.mark.parametrize("useGlobalState", [False, True])
def test_reference_modules_on_our_backend_match_puzzlelib(puzzlelib, optimizers, useGlobalState):
	"""The demo's net (Linear, relu, Linear) in PuzzleLib on its CPU backend, trained by PuzzleLib's optimizer, and
	the same net in our reference modules on our backend (CUDA on the emulated driver in CI), trained by ours, from
	the same weights and data: the same losses and weights at every step."""
	from puzzlelib_rmsprop import demo
	from puzzlelib_rmsprop.Cost.MSE import MSE

	pl = puzzlelib
	np.random.seed(0)
	fc1 = pl.Linear.Linear(128, 64, name="fc1").node()
	act = pl.Activation.Activation(pl.Activation.relu, name="act").node(fc1)
	theirNet = pl.Graph.Graph(inputs=fc1, outputs=pl.Linear.Linear(64, 1, name="fc2").node(act), name="net")
	ourNet = demo.buildNet()
	for name, w in weights(theirNet).items():
		ourNet.getVar(name).data.set(w)

	theirOpt = getattr(getattr(pl, optimizers), optimizers)(learnRate=1e-3)
	ourOpt = {"RMSProp": RMSProp, "RMSPropGraves": RMSPropGraves}[optimizers](learnRate=1e-3)
	theirOpt.setupOn(theirNet, useGlobalState=False)
	ourOpt.setupOn(ourNet, useGlobalState=useGlobalState)

	rng = np.random.RandomState(1)
	data, target = rng.randn(16, 128).astype(np.float32), rng.randn(16, 1).astype(np.float32)
	theirData, theirTarget = pl.gpuarray.to_gpu(data), pl.gpuarray.to_gpu(target)
	ourData, ourTarget = gpuarray.to_gpu(data), gpuarray.to_gpu(target)
	theirLoss, ourLoss = pl.MSE.MSE(), MSE()

	lossScale = 0.0
	for step in range(STEPS):
		theirError, grad = theirLoss(theirNet(theirData), theirTarget)
		theirOpt.zeroGradParams()
		theirNet.backward(grad, momentum=0.0)
		theirOpt.update()

		ourError, grad = ourLoss(ourNet(ourData), ourTarget)
		ourOpt.zeroGradParams()
		ourNet.backward(grad)
		ourOpt.update()

		lossScale = max(lossScale, float(theirError))
		assertLossAfterSteps(ourError, theirError, step, lossScale)
		for name, w in weights(theirNet).items():
			assertAfterSteps(ourNet.getVar(name).data.get(), w, step + 1, name, MODULE_WEIGHT_ULPS)
