"""arithmetic="puzzlelib": a run of ours is bit-identical to real PuzzleLib 1.0.3's on its CPU backend, at every step.

Every comparison is of float32 bit patterns (``.view(np.uint32)``), never a tolerance. The default arithmetic ("ieee")
differs from PuzzleLib by about 1 ulp per step and these runs part after some tens of steps, so each test here fails
with it (tests/test_puzzlelib_parity.py compares that arithmetic with tolerances).
"""
import contextlib
import ctypes
import ctypes.util
import importlib
import io
import os
import subprocess
import sys
import textwrap
from functools import partial
from pathlib import Path

import numpy as np
import pytest

import puzzlelib_oracle
from puzzlelib_rmsprop import OptimizerError, RMSProp, RMSPropGraves
from puzzlelib_rmsprop.Errors import OptimizerTypeError
from puzzlelib_rmsprop.Backend import getBackend, gpuarray

pytestmark = pytest.mark.puzzlelib
#: bit-identity with PuzzleLib's CPU kernels is checked on our CPU backend; on CUDA, against PuzzleLib's CUDA kernels
#: where a GPU is lent (tests/gpu/puzzlelib_arithmetic_check.py)
onCpu = pytest.mark.skipif(getBackend().name != "cpu" or puzzlelib_oracle.BACKEND != "cpu",
						   reason="PuzzleLib's CPU kernels are compared on our CPU backend (CUDA: tests/gpu/device_check.sh)")

OURS = {"RMSProp": RMSProp, "RMSPropGraves": RMSPropGraves}


@pytest.fixture(scope="module", autouse=True)
def keepFloatingPointMode():
	"""PuzzleLib's kernel modules switch flush-to-zero on for the process when they load (gcc's crtfastmath.o):
	the floating-point environment (MXCSR included) is put back after this file, for the tests that follow."""
	libm = ctypes.CDLL(ctypes.util.find_library("m"))
	saved = ctypes.create_string_buffer(256)  # larger than any fenv_t
	assert libm.fegetenv(saved) == 0
	yield
	assert libm.fesetenv(saved) == 0
STEPS, SWITCH = 200, 100


def buildTrainSimpleNet(pl, seed):
	"""The net of PuzzleLib's Optimizer.trainSimpleTest (with names, so multipliers can be set by name)."""
	np.random.seed(seed)
	seq = pl.Sequential.Sequential(name="seq")
	seq.append(pl.Linear.Linear(128, 64, useBias=False, name="fc1"))
	seq.append(pl.Activation.Activation(pl.Activation.relu, name="act1"))
	seq.append(pl.Linear.Linear(64, 32, useBias=False, name="fc2"))
	seq.append(pl.Activation.Activation(pl.Activation.relu, name="act2"))
	seq.append(pl.Linear.Linear(32, 16, name="fc3"))
	return seq


def buildOddNet(pl, seed):
	"""Sizes that are no multiple of the vector width (PuzzleLib's packed buffer ends in the scalar tail of its loop),
	names out of sorted order."""
	np.random.seed(seed)
	seq = pl.Sequential.Sequential(name="seq")
	seq.append(pl.Linear.Linear(128, 13, name="zeta"))
	seq.append(pl.Activation.Activation(pl.Activation.relu, name="act1"))
	seq.append(pl.Linear.Linear(13, 7, name="fc3"))
	seq.append(pl.Activation.Activation(pl.Activation.tanh, name="act2"))
	seq.append(pl.Linear.Linear(7, 16, name="alpha"))
	return seq


NETS = {"trainSimple": buildTrainSimpleNet, "odd": buildOddNet}


def bits(ary) -> np.ndarray:
	return np.ascontiguousarray(ary.get() if hasattr(ary, "get") else ary, dtype=np.float32).view(np.uint32).ravel()


class Run:
	"""trainSimpleTest's loop on its net, recording the loss and the bits of every weight after every step."""

	def __init__(self, pl, optimizer, useGlobalState, multipliers=None, seed=0, net="trainSimple"):
		self.pl, self.net, self.opt = pl, NETS[net](pl, seed), optimizer
		for name, value in (multipliers or {}).items():
			self.net.getVar(name).learnRate = value
		self.opt.setupOn(self.net, useGlobalState=useGlobalState)
		rng = np.random.RandomState(seed + 1)
		self.data = pl.gpuarray.to_gpu(rng.randn(16, 128).astype(np.float32))
		self.target = pl.gpuarray.to_gpu(rng.randn(16, 16).astype(np.float32))
		self.mse, self.losses, self.history = pl.MSE.MSE(), [], []

	def train(self, steps, switchAt=None):
		for i in range(steps):
			if i == switchAt:
				self.opt.learnRate *= 0.3  # a schedule, as PuzzleLib's scripts do it
			error, grad = self.mse(self.net(self.data), self.target)
			self.opt.zeroGradParams()
			self.net.backward(grad, momentum=0.0)  # PuzzleLib's CPU GEMM rejects the default momentum=1.0
			self.opt.update()
			self.losses.append(float(error))
			self.history.append({names[0]: bits(var.data) for var, names in self.net.getVarTable().items()})
		return self

	def stateBits(self, key):
		"""Each variable's state ``key`` by name; PuzzleLib's global state is one buffer packed in name order."""
		names = sorted(names[0] for names in self.net.getVarTable().values())
		if self.opt.states and all(name in self.opt.states for name in names):
			return {name: bits(self.opt.states[name][key]) for name in names}
		flat, offset, out = bits(self.opt.states[np.float32][key]), 0, {}
		for name in names:
			size = self.net.getVar(name).data.size
			out[name], offset = flat[offset:offset + size], offset + size
		return out


def assertBitIdentical(theirs: Run, ours: Run, stateKeys):
	assert len(ours.losses) == len(theirs.losses)
	for step, (a, b) in enumerate(zip(theirs.losses, ours.losses)):
		assert a == b, "loss at step %d: PuzzleLib %r, ours %r" % (step + 1, a, b)
	for step, (expected, got) in enumerate(zip(theirs.history, ours.history)):
		for name in expected:
			differ = int(np.count_nonzero(expected[name] != got[name]))
			assert differ == 0, "%s at step %d: %d of %d elements differ" % (name, step + 1, differ, expected[name].size)
	for key in stateKeys:
		expected, got = theirs.stateBits(key), ours.stateBits(key)
		for name in expected:
			assert np.array_equal(expected[name], got[name]), "state %s of %s differs" % (key, name)


def makePair(pl, optimizer, **hyper):
	theirs = getattr(getattr(pl, optimizer), optimizer)(**hyper)
	return theirs, OURS[optimizer](arithmetic="puzzlelib", **hyper)


STATE_KEYS = {"RMSProp": ["ms"], "RMSPropGraves": ["mg", "ms", "delta"]}


@onCpu
@pytest.mark.parametrize("net", sorted(NETS))
@pytest.mark.parametrize("useGlobalState", [False, True])
@pytest.mark.parametrize("optimizer", sorted(OURS))
def test_train_simple_run_is_bit_identical(puzzlelib, optimizer, useGlobalState, net):
	"""200 steps, learnRate cut at step 100; in local state a bias multiplier (PuzzleLib drops it in global state)."""
	pl = puzzlelib
	multipliers = None if useGlobalState else {"fc3.b": 0.5}
	theirs, ours = makePair(pl, optimizer, learnRate=1e-2)
	theirs = Run(pl, theirs, useGlobalState, multipliers, net=net).train(STEPS, switchAt=SWITCH)
	ours = Run(pl, ours, useGlobalState, multipliers, net=net).train(STEPS, switchAt=SWITCH)

	assertBitIdentical(theirs, ours, STATE_KEYS[optimizer])
	assert theirs.losses[-1] < 0.2 * theirs.losses[0], "the reference run should learn"


@onCpu
@pytest.mark.parametrize("optimizer", sorted(OURS))
def test_frozen_variable_and_streams_are_bit_identical(puzzlelib, optimizer):
	"""Local state with one variable frozen (multiplier 0) and one scaled, on our per-variable (streams) path too."""
	pl = puzzlelib
	multipliers = {"fc2.W": 0.0, "fc1.W": 1.5}
	theirs, ours = makePair(pl, optimizer, learnRate=1e-2)
	theirs = Run(pl, theirs, False, multipliers).train(60)
	ours = Run(pl, ours, False, multipliers)
	update = ours.opt.update
	ours.opt.update = lambda: update(useStreams=True)
	ours.train(60)

	assertBitIdentical(theirs, ours, STATE_KEYS[optimizer])
	assert np.array_equal(ours.history[0]["fc2.W"], ours.history[-1]["fc2.W"]), "frozen"


@onCpu
@pytest.mark.parametrize("useGlobalState", [False, True])
@pytest.mark.parametrize("optimizer", sorted(OURS))
def test_puzzlelib_checkpoint_continues_bit_identically(puzzlelib, optimizer, useGlobalState, tmp_path):
	"""PuzzleLib trains 30 steps and saves; ours loads its file (and the weights) and continues: the same bits as
	PuzzleLib continuing."""
	pl, path = puzzlelib, str(tmp_path / "theirs.hdf")
	theirs, ours = makePair(pl, optimizer, learnRate=1e-2)
	theirs = Run(pl, theirs, useGlobalState, net="odd").train(30)
	theirs.opt.save(path)
	saved = {name: var.data.get() for var, (name, *_) in theirs.net.getVarTable().items()}
	theirs.losses, theirs.history = [], []
	theirs.train(40)

	ours = Run(pl, ours, useGlobalState, net="odd")
	for name, w in saved.items():
		ours.net.getVar(name).data.set(w)
	ours.opt.load(path)
	assert ours.opt.t == 30
	ours.train(40)

	assertBitIdentical(theirs, ours, STATE_KEYS[optimizer])


@contextlib.contextmanager
def backwardMomentumZero(pl):
	"""PuzzleLib's Sequential.backward defaults to momentum=1.0, which its CPU GEMM rejects (for its own optimizers
	too); zeroGradParams runs before every backward, so 0.0 changes nothing else."""
	backward = pl.Sequential.Sequential.backward
	saved = backward.__defaults__
	names = backward.__code__.co_varnames[1:backward.__code__.co_argcount]
	defaults = dict(zip(names[-len(saved):], saved), momentum=0.0)
	backward.__defaults__ = tuple(defaults[name] for name in names[-len(saved):])
	try:
		yield
	finally:
		backward.__defaults__ = saved


def runUnittest(module, seed):
	np.random.seed(seed)
	out = io.StringIO()
	with contextlib.redirect_stdout(out):
		module.unittest()
	return out.getvalue().splitlines()


@onCpu
@pytest.mark.parametrize("optimizer", sorted(OURS))
def test_puzzlelib_unittest_with_ours_prints_puzzlelib_errors(puzzlelib, optimizer, monkeypatch):
	"""PuzzleLib's own RMSProp.unittest() / RMSPropGraves.unittest() (calcTest and trainSimpleTest's 200 steps in
	global state) with our optimizer and kernel in place of its own: its assertions pass and every printed error
	(repr of the float) is PuzzleLib's."""
	pl = puzzlelib
	module = importlib.import_module("PuzzleLib.Optimizers." + optimizer)
	with backwardMomentumZero(pl):
		expected = runUnittest(module, 0)

		kernelName = {"RMSProp": "rmspropKer", "RMSPropGraves": "rmspropGravesKer"}[optimizer]
		monkeypatch.setattr(module, kernelName, partial(ourKernel, optimizer))
		monkeypatch.setattr(module, optimizer, partial(OURS[optimizer], arithmetic="puzzlelib"))
		got = runUnittest(module, 0)

	assert len(expected) == 40 and all(line.startswith("Iteration #") for line in expected)
	assert got == expected


def ourKernel(optimizer, dtype):
	"""PuzzleLib's kernel call ``ker(dtype)(w, dw, [mg,] ms, [delta,] lr, ...)`` on our puzzlelib arithmetic."""
	from puzzlelib_rmsprop.Kernels import MOMENTUM_IN_LR, Flavour, flavourUpdate

	def launch(*args, stream=None):
		arrays = [a for a in args if hasattr(a, "data") and hasattr(a, "shape")]
		ours = [gpuarray.to_gpu(a.data) for a in arrays]
		if optimizer == "RMSProp":
			lr, factor, epsilon = args[3:]
			w, dw, ms = ours
			flavourUpdate(w, dw, ms, None, None, lr, 0.0, Flavour(factor, epsilon, arithmetic=1))
		else:
			lr, alpha, momRate, epsilon = args[5:]
			w, dw, mg, ms, delta = ours
			flavourUpdate(w, dw, ms, mg, delta, lr, momRate, Flavour(alpha, epsilon, centered=True, epsilonInSqrt=True,
																	  momentumMode=MOMENTUM_IN_LR, arithmetic=1))
		for mine, theirs in zip(ours, arrays):
			theirs.data[...] = mine.get()
	return launch


@pytest.mark.parametrize("options", [
	{"momentum": 0.9}, {"centered": True}, {"epsilonInSqrt": True}, {"initialMs": 1.0}, {"weightDecay": 1e-4},
	{"stateDtype": np.float32}, {"stateBits": 8}, {"shardState": True}])
def test_combinations_without_a_puzzlelib_kernel_are_refused(options):
	name = next(iter(options))
	with pytest.raises(OptimizerError, match="arithmetic='puzzlelib' reproduces PuzzleLib's own kernel, which has no %s" % name):
		RMSProp(arithmetic="puzzlelib", **options)
	if name in ("stateBits", "shardState"):
		with pytest.raises(OptimizerError, match="which has no %s" % name):
			RMSPropGraves(arithmetic="puzzlelib", **options)


def test_bad_arithmetic_and_float16_are_refused():
	with pytest.raises(OptimizerError, match=r"RMSProp.arithmetic must be one of 'ieee', 'puzzlelib', got 'fast'"):
		RMSProp(arithmetic="fast")
	with pytest.raises(TypeError):
		RMSProp(1e-3, 0.9, 1e-5, None, "puzzlelib")  # keyword-only

	from conftest import ParamBag
	bag = ParamBag({"w": ((8, ), np.float16)})
	opt = RMSProp(arithmetic="puzzlelib")
	opt.setupOn(bag)
	before = bag.getVar("w").data.get()
	with pytest.raises(OptimizerTypeError, match="float32 only: got float16 parameters with float16 state"):
		opt.update()
	assert np.array_equal(bag.getVar("w").data.get(), before)


@pytest.mark.parametrize("useGlobalState", [False, True])
@pytest.mark.parametrize("optimizer", sorted(OURS))
def test_runs_on_this_backend_close_to_the_ieee_reference(optimizer, useGlobalState):
	"""On any backend (the emulated CUDA driver too): PuzzleLib's kernel, launched on our arrays, stays within a few
	ulp of the float32 NumPy reference over 20 steps, with multipliers and a learnRate change."""
	from conftest import ParamBag, randomGrads
	from reference import flavourStep

	specs = {"a": ((1003, ), np.float32), "b": ((7, 5), np.float32), "c": ((16, ), np.float32)}
	bag, rng = ParamBag(specs, rng=np.random.default_rng(3)), np.random.default_rng(4)
	bag.getVar("b").learnRate, bag.getVar("c").learnRate = 0.5, 0.0
	opt = OURS[optimizer](learnRate=1e-2, arithmetic="puzzlelib")
	opt.setupOn(bag, useGlobalState=useGlobalState)
	graves = optimizer == "RMSPropGraves"
	hyper = dict(factor=opt.alpha, epsilon=opt.epsilon, centered=True, epsilonInSqrt=True, momentumMode=2) if graves \
		else dict(factor=opt.factor, epsilon=opt.epsilon)
	expected = {name: [var.data.get(), np.zeros(var.data.shape, np.float32), np.zeros(var.data.shape, np.float32),
					   np.zeros(var.data.shape, np.float32)] for name, var in bag.vars.items()}

	for step in range(20):
		if step == 10:
			opt.learnRate *= 0.5
		grads = randomGrads(bag, rng)
		opt.update()
		for name, var in bag.vars.items():
			if var.learnRate > 0:
				p, m, a, d = expected[name]
				expected[name] = flavourStep(p, grads[name], m, a if graves else None, d if graves else None,
											 opt.learnRate * var.learnRate, opt.momRate * var.momRate if graves else 0.0, **hyper)
				expected[name] = [x if x is not None else np.zeros_like(p) for x in expected[name]]
			np.testing.assert_allclose(var.data.get(), expected[name][0], rtol=1e-5, atol=1e-6, err_msg="%s step %d" % (name, step))
			np.testing.assert_allclose(opt.states["bag." + name]["ms"].get(), expected[name][1], rtol=1e-5, err_msg=name)
	assert np.array_equal(bag.getVar("c").data.get(), expected["c"][0]), "frozen"


def childEnv(tmp_path):
	root = Path(__file__).resolve().parent.parent
	return dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), PYTHONPATH=os.pathsep.join(
		filter(None, [str(root), str(root / "tests"), os.environ.get("PYTHONPATH")])))


FLUSH_CHECK = """
	import numpy as np
	from puzzlelib_rmsprop.Backend import gpuarray
	from puzzlelib_rmsprop.Kernels import Flavour, flavourUpdate
	tiny = np.float32(1.5e-39)  # subnormal
	def survives():
		return bool(np.multiply(np.array([tiny], np.float32), np.float32(0.5))[0] != 0)
	assert survives(), "flush-to-zero was on before anything ran"
	w, g, ms = (gpuarray.to_gpu(np.full(37, v, np.float32)) for v in (1.0, 1e-20, 0.0))
	flavourUpdate(w, g, ms, None, None, 1e-3, 0.0, Flavour(0.9, 1e-5, arithmetic=1))
	assert survives(), "loading or running PuzzleLib's arithmetic switched flush-to-zero on for the process"
	print(ms.get().view(np.uint32)[0])
"""


@onCpu
def test_our_kernel_leaves_the_process_fpu_mode_alone(tmp_path):
	"""gcc links crtfastmath.o into -ffast-math libraries, whose constructor sets FTZ/DAZ for the whole process:
	ours must not (it flushes around its own loops only, as PuzzleLib's kernels always run)."""
	result = subprocess.run([sys.executable, "-c", textwrap.dedent(FLUSH_CHECK)], env=childEnv(tmp_path),
							capture_output=True, text=True, timeout=300)
	assert result.returncode == 0, result.stderr[-3000:]
	assert result.stdout.split()[-1] == "0", "ms = 0.1 * (1e-20)^2 is subnormal: PuzzleLib's kernel flushes it to 0"


@onCpu
def test_subnormals_flush_as_in_puzzlelib(puzzlelib):
	"""PuzzleLib's kernels run with FTZ/DAZ (its modules set them when loaded): ms of tiny grads is 0 there, and ours."""
	from PuzzleLib.CPU.Kernels import ElementWise
	from puzzlelib_rmsprop.Kernels import Flavour, flavourUpdate

	g = np.array([1e-20, 3e-21, 1e-19, 2e-18, 1e-3] * 3, dtype=np.float32)
	theirs = [puzzlelib.gpuarray.to_gpu(a) for a in (np.ones_like(g), g, np.zeros_like(g))]
	ElementWise.rmspropKer(np.float32)(theirs[0], theirs[1], theirs[2], 1e-3, 0.9, 1e-5)
	ours = [gpuarray.to_gpu(a) for a in (np.ones_like(g), g, np.zeros_like(g))]
	flavourUpdate(ours[0], ours[1], ours[2], None, None, 1e-3, 0.0, Flavour(0.9, 1e-5, arithmetic=1))
	for a, b in zip(theirs, ours):
		assert np.array_equal(bits(a), bits(b))


@onCpu
def test_no_compiler_is_a_clear_error(tmp_path, monkeypatch):
	from puzzlelib_rmsprop.Backend import PuzzleLibArithmetic

	monkeypatch.setattr(PuzzleLibArithmetic, "_library", None)
	monkeypatch.setenv("PATH", str(tmp_path))
	with pytest.raises(OptimizerError, match="needs gcc: none found on PATH"):
		PuzzleLibArithmetic.library()


@onCpu
def test_the_build_is_cached_per_machine_and_kept_out_of_the_installed_extension(tmp_path, monkeypatch):
	from puzzlelib_rmsprop.Backend import PuzzleLibArithmetic

	monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
	first = PuzzleLibArithmetic.build()
	assert first.parent == tmp_path / "puzzlelib_rmsprop" and first.is_file()
	stamp = first.stat().st_mtime_ns
	assert PuzzleLibArithmetic.build() == first and first.stat().st_mtime_ns == stamp
	assert [p.name for p in first.parent.iterdir()] == [first.name], "no temporary file left behind"

	setupPy = Path(__file__).resolve().parent.parent / "setup.py"
	if setupPy.is_file():  # the checkout (the installed-package suite runs a copy of tests/ alone)
		setup = setupPy.read_text()
		assert "rmsprop_puzzlelib.c" not in setup and "-march=native" not in setup and "-ffast-math" not in setup


@pytest.mark.parametrize("options", [{"momentum": 0.9}, {"centered": True}, {"epsilonInSqrt": True}, {"weightDecay": 1e-4}])
def test_later_assignments_without_a_puzzlelib_kernel_are_refused(options):
	"""The options go through the same rule when set after construction; the arithmetic itself is fixed."""
	(name, value), = options.items()
	opt = RMSProp(arithmetic="puzzlelib")
	with pytest.raises(OptimizerError, match="which has no %s" % name):
		setattr(opt, name, value)
	assert not getattr(opt, name) and opt.flavour().plain
	for ours in (opt, RMSPropGraves(arithmetic="puzzlelib")):
		with pytest.raises(OptimizerError, match="arithmetic cannot change after construction"):
			ours.arithmetic = "ieee"
		assert ours.arithmetic == "puzzlelib"


@onCpu
@pytest.mark.parametrize("useGlobalState", [False, True])
@pytest.mark.parametrize("optimizer", sorted(OURS))
def test_puzzlelib_continues_our_puzzlelib_layout_bit_identically(puzzlelib, optimizer, useGlobalState, tmp_path):
	"""Ours trains 30 steps and saves PuzzleLib's layout; PuzzleLib loads it (and the weights) and continues: the
	same bits as PuzzleLib's uninterrupted run."""
	pl, path = puzzlelib, str(tmp_path / "ours.hdf")
	theirs, ours = makePair(pl, optimizer, learnRate=1e-2)
	ours = Run(pl, ours, useGlobalState, net="odd").train(30)
	ours.opt.save(path, layout="puzzlelib")
	saved = {name: var.data.get() for var, (name, *_) in ours.net.getVarTable().items()}

	uninterrupted = Run(pl, theirs, useGlobalState, net="odd").train(30)
	uninterrupted.losses, uninterrupted.history = [], []
	uninterrupted.train(40)

	resumed = Run(pl, makePair(pl, optimizer, learnRate=1e-2)[0], useGlobalState, net="odd")
	for name, w in saved.items():
		resumed.net.getVar(name).data.set(w)
	resumed.opt.load(path)
	assert resumed.opt.t == 30
	resumed.train(40)

	assertBitIdentical(uninterrupted, resumed, STATE_KEYS[optimizer])
