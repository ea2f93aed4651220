"""RMSProp against the independent NumPy float32 reference (tests/reference.py): bit for bit, on the CPU backend."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import ParamBag, randomGrads, snapshot
from reference import rmspropStep, weightDecay
from puzzlelib_rmsprop import RMSProp, Variable, WeightDecay
from puzzlelib_rmsprop.Backend import gpuarray
from puzzlelib_rmsprop.Kernels import rmspropKer

from puzzlelib_rmsprop.Backend.dtypes import bfloat16  # noqa: E402

# bfloat16 through ml_dtypes (in the test setup): the same kernels, rounding like ml_dtypes' casts
DTYPES = [np.float32, np.float16] + ([bfloat16] if bfloat16 is not None else [])
SHAPES = [(1, ), (7, ), (3, 5), (13, 11), (1023, ), (2 ** 20 + 3, )]


def trainAndCompare(specs, rng, steps, useGlobalState, learnRate=1e-3, factor=0.9, epsilon=1e-5, multipliers=None):
	"""Trains a ParamBag ``steps`` times with random grads and checks every parameter and ms against the reference."""
	bag = ParamBag(specs, rng=rng)
	for name, mult in (multipliers or {}).items():
		bag.vars[name].learnRate = mult

	opt = RMSProp(learnRate=learnRate, factor=factor, epsilon=epsilon)
	opt.setupOn(bag, useGlobalState=useGlobalState)

	expected = snapshot(bag)
	ms = {name: np.zeros_like(p) for name, p in expected.items()}

	for _ in range(steps):
		grads = randomGrads(bag, rng)
		opt.update()

		for name in expected:
			mult = bag.getVar(name).learnRate
			if mult > 0.0:
				expected[name], ms[name] = rmspropStep(expected[name], grads[name], ms[name], learnRate * mult, factor, epsilon)

	for name in expected:
		np.testing.assert_array_equal(bag.getVar(name).data.get(), expected[name], err_msg=name)
		np.testing.assert_array_equal(opt.states["bag." + name]["ms"].get(), ms[name], err_msg=name)

	return bag, opt


@pytest.mark.parametrize("useGlobalState", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_one_update_matches_reference(dtype, shape, useGlobalState, rng):
	trainAndCompare({"w": (shape, dtype)}, rng, steps=1, useGlobalState=useGlobalState, learnRate=1e-2)


@pytest.mark.parametrize("useGlobalState", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_many_steps_many_variables(dtype, useGlobalState, rng):
	specs = {"a": ((17, 3), dtype), "b": ((1, ), dtype), "c": ((4096 + 5, ), dtype), "d": ((70000, ), dtype)}
	trainAndCompare(specs, rng, steps=25, useGlobalState=useGlobalState)


@pytest.mark.parametrize("useGlobalState", [False, True])
def test_frozen_and_scaled_variables(useGlobalState, rng):
	specs = {name: ((33, 7), np.float32) for name in "abcde"}
	multipliers = {"a": 0.0, "b": 0.5, "c": 3.3, "e": 0.0}
	bag, opt = trainAndCompare(specs, rng, steps=5, useGlobalState=useGlobalState, learnRate=1e-2, multipliers=multipliers)

	# frozen variables keep ms at 0, as in PuzzleLib (which skips them entirely)
	assert not opt.states["bag.a"]["ms"].get().any()


@pytest.mark.parametrize("useGlobalState", [False, True])
def test_multiplier_changed_between_steps(useGlobalState, rng):
	bag = ParamBag({"a": ((50, ), np.float32), "b": ((50, ), np.float32)}, rng=rng)
	opt = RMSProp(learnRate=1e-2)
	opt.setupOn(bag, useGlobalState=useGlobalState)

	expected = snapshot(bag)
	ms = {name: np.zeros_like(p) for name, p in expected.items()}

	for step, mult in enumerate([1.0, 0.0, 0.25, 0.25, 1.0]):
		bag.getVar("b").learnRate = mult
		opt.learnRate = 1e-2 / (step + 1)  # a schedule: only the table's learnRate column changes
		grads = randomGrads(bag, rng)
		opt.update()

		for name, m in (("a", 1.0), ("b", mult)):
			if m > 0:
				expected[name], ms[name] = rmspropStep(expected[name], grads[name], ms[name], opt.learnRate * m)

	for name in expected:
		np.testing.assert_array_equal(bag.getVar(name).data.get(), expected[name])


@pytest.mark.parametrize("useGlobalState", [False, True])
def test_options_changed_between_steps(useGlobalState, rng):
	"""factor, epsilon, weightDecay and epsilonInSqrt assigned between steps take effect at the next step (the
	flavour the kernels get is cached per change of an option): every step against the flavour reference."""
	from reference import flavourStep

	bag = ParamBag({"w": ((300, ), np.float32)}, rng=rng)
	opt = RMSProp(learnRate=1e-2)
	opt.setupOn(bag, useGlobalState=useGlobalState)
	expected, ms = bag.getVar("w").data.get(), np.zeros(300, np.float32)

	changes = [{}, {"factor": 0.5}, {"epsilon": 1e-2}, {}, {"weightDecay": 0.1}, {"epsilonInSqrt": True},
			   {"factor": 0.99, "weightDecay": 0.0}, {"epsilonInSqrt": False}]
	for change in changes:
		for name, value in change.items():
			setattr(opt, name, value)
		grads = randomGrads(bag, rng)
		opt.update()
		expected, ms, _, _ = flavourStep(expected, grads["w"], ms, None, None, 1e-2, 0.0, opt.factor, opt.epsilon,
										 weightDecay=opt.weightDecay, epsilonInSqrt=opt.epsilonInSqrt)
		np.testing.assert_array_equal(bag.getVar("w").data.get(), expected, err_msg="after %r" % change)


@pytest.mark.parametrize("dtype", DTYPES)
def test_global_equals_local(dtype):
	results = []
	for useGlobalState in (False, True):
		specs = {"w%d" % i: ((i * 37 + 1, 3), dtype) for i in range(6)}
		bag, _ = trainAndCompare(specs, np.random.default_rng(7), steps=10, useGlobalState=useGlobalState,
								  multipliers={"w2": 0.0, "w4": 2.0})
		results.append(snapshot(bag))

	for name in results[0]:
		np.testing.assert_array_equal(results[0][name], results[1][name])


def test_defaults_are_puzzlelib_values(rng):
	opt = RMSProp()
	assert (opt.learnRate, opt.factor, opt.epsilon, opt.t) == (1e-3, 0.9, 1e-5, 0)
	assert opt.getAttrDict() == {"t": 0, "learnRate": 1e-3, "factor": 0.9, "epsilon": 1e-5}

	bag = ParamBag({"w": ((101, ), np.float32)}, rng=rng)
	opt.setupOn(bag)
	before = bag.getVar("w").data.get()
	grads = randomGrads(bag, rng)
	opt.update()

	expected, _ = rmspropStep(before, grads["w"], np.zeros_like(before), 1e-3, factor=0.9, epsilon=1e-5)
	np.testing.assert_array_equal(bag.getVar("w").data.get(), expected)
	assert opt.t == 1


def test_step_is_added_along_grad(rng):
	"""PuzzleLib's convention: grad is the descent direction, so a positive grad raises the parameter."""
	bag = ParamBag({"w": ((10, ), np.float32)}, rng=rng)
	opt = RMSProp(learnRate=0.1)
	opt.setupOn(bag)
	before = bag.getVar("w").data.get()

	bag.getVar("w").grad.set(np.ones(10, np.float32))
	opt.update()

	# first step: ms = 0.1 g^2, so the step is lr * g / (sqrt(0.1) |g| + eps) ~ 0.316 lr
	np.testing.assert_allclose(bag.getVar("w").data.get() - before, 0.1 / (np.sqrt(0.1) + 1e-5), rtol=1e-5)


@pytest.mark.parametrize("useGlobalState", [False, True])
def test_weight_decay_hook(useGlobalState, rng):
	bag = ParamBag({"a": ((20, 3), np.float32), "b": ((9, ), np.float32)}, rng=rng)
	bag.getVar("a").wc = 0.5

	opt = RMSProp(learnRate=1e-2)
	opt.addHook(WeightDecay(0.1))
	opt.setupOn(bag, useGlobalState=useGlobalState)
	assert bag.getVar("a").wc == 0.5, "wc must survive the global-state rebinding"

	expected = snapshot(bag)
	ms = {name: np.zeros_like(p) for name, p in expected.items()}

	for _ in range(3):
		grads = randomGrads(bag, rng)
		grads["a"] = weightDecay(grads["a"], expected["a"], 0.1 * 0.5)
		opt.update()
		for name in expected:
			expected[name], ms[name] = rmspropStep(expected[name], grads[name], ms[name], 1e-2)

	for name in expected:
		np.testing.assert_array_equal(bag.getVar(name).data.get(), expected[name])


@pytest.mark.parametrize("useGlobalState", [False, True])
def test_custom_updater_variables(useGlobalState, rng):
	calls = []
	bag = ParamBag({"w": ((5, ), np.float32)}, rng=rng)
	custom = Variable(gpuarray.to_gpu(np.zeros(3, np.float32)), updater=lambda var, lr: calls.append((var, lr)))
	bag.setVar("emb", custom)

	opt = RMSProp(learnRate=0.25)
	opt.setupOn(bag, useGlobalState=useGlobalState)
	assert opt.customVars == ["bag.emb"] and "bag.emb" not in opt.states

	randomGrads_ = {"w": bag.getVar("w")}
	randomGrads_["w"].grad.set(np.ones(5, np.float32))
	opt.update()
	opt.update()
	assert calls == [(custom, 0.25), (custom, 0.25)]


def test_use_streams_path_equals_fused(rng):
	results = []
	for useStreams in (False, True):
		bag = ParamBag({"a": ((30, ), np.float32), "b": ((4, 4), np.float32)}, rng=np.random.default_rng(3))
		bag.getVar("b").learnRate = 0.5
		opt = RMSProp(learnRate=1e-2)
		opt.setupOn(bag)
		gradRng = np.random.default_rng(4)
		for _ in range(4):
			randomGrads(bag, gradRng)
			opt.update(useStreams=useStreams)
		results.append(snapshot(bag))

	for name in results[0]:
		np.testing.assert_array_equal(results[0][name], results[1][name])


def test_zero_grad_params(rng):
	for useGlobalState in (False, True):
		bag = ParamBag({"a": ((6, ), np.float32), "b": ((3, ), np.float16)}, rng=rng)
		opt = RMSProp()
		opt.setupOn(bag, useGlobalState=useGlobalState)
		randomGrads(bag, rng)
		opt.zeroGradParams()
		assert all(not var.grad.get().any() for var in bag.vars.values())


def test_puzzlelib_calc_test_through_our_kernel():
	"""PuzzleLib's own RMSProp.calcTest: ms starts at 1 + randn^2, shape 11x13, lr 0.01."""
	rng = np.random.default_rng(5)
	hostW, hostDw = rng.standard_normal((11, 13)).astype(np.float32), rng.standard_normal((11, 13)).astype(np.float32)
	hostMs = (1.0 + rng.standard_normal((11, 13)) ** 2).astype(np.float32)

	w, dw, ms = gpuarray.to_gpu(hostW), gpuarray.to_gpu(hostDw), gpuarray.to_gpu(hostMs)
	rmspropKer(np.float32)(w, dw, ms, 0.01, 0.9, 1e-5)

	expectedW, expectedMs = rmspropStep(hostW, hostDw, hostMs, 0.01, 0.9, 1e-5)
	np.testing.assert_array_equal(ms.get(), expectedMs)
	np.testing.assert_array_equal(w.get(), expectedW)


def test_kernel_entry_checks_loose_arrays():
	"""A direct kernel call with mismatched arrays is refused before anything is launched."""
	from puzzlelib_rmsprop.Errors import OptimizerTypeError

	w, ms = gpuarray.to_gpu(np.ones(8, np.float32)), gpuarray.zeros((8, ), np.float32)
	with pytest.raises(OptimizerTypeError, match=r"float32\[8\], float32\[7\], float32\[8\]"):
		rmspropKer(np.float32)(w, gpuarray.zeros((7, ), np.float32), ms, 0.1, 0.9, 1e-5)
	with pytest.raises(OptimizerTypeError, match="float16"):
		rmspropKer(np.float32)(w, gpuarray.zeros((8, ), np.float16), ms, 0.1, 0.9, 1e-5)
	with pytest.raises(OptimizerTypeError, match="not float64"):
		rmspropKer(np.float64)
	np.testing.assert_array_equal(w.get(), np.ones(8, np.float32))


@settings(max_examples=40, deadline=None)
@given(
	sizes=st.lists(st.integers(0, 300), min_size=1, max_size=6),
	dtype=st.sampled_from(DTYPES),
	learnRate=st.floats(0, 1), factor=st.floats(0, 0.999), epsilon=st.floats(1e-8, 1),
	offsets=st.lists(st.integers(0, 7), min_size=6, max_size=6),
	multipliers=st.lists(st.sampled_from([0.0, 0.5, 1.0, 1.7]), min_size=6, max_size=6),
)
def test_property_multi_tensor_table(sizes, dtype, learnRate, factor, epsilon, offsets, multipliers):
	"""Random sizes, buffer offsets (misaligned starts), hyperparameters and multipliers, through one launch."""
	from puzzlelib_rmsprop.Backend import getBackend
	from puzzlelib_rmsprop.Backend.TensorTable import TensorList

	rng = np.random.default_rng(len(sizes))
	backend = getBackend()
	arrays, expected = {"p": [], "g": [], "m": []}, []

	for size, offset, mult in zip(sizes, offsets, multipliers):
		host = [rng.standard_normal(size + offset).astype(dtype) for _ in range(2)] + [rng.random(size + offset).astype(dtype)]
		views = [gpuarray.to_gpu(h)[offset:] for h in host]
		for key, view in zip("pgm", views):
			arrays[key].append(view)
		expected.append(rmspropStep(host[0][offset:], host[1][offset:], host[2][offset:], learnRate * mult, factor, epsilon))

	lists = [TensorList(arrays[key], backend.pointerOf) for key in "pgm"]
	rates = learnRate * np.array(multipliers[:len(sizes)])
	rmspropKer(dtype)(*lists, rates, factor, epsilon)

	for i, (p, m) in enumerate(expected):
		np.testing.assert_array_equal(arrays["p"][i].get(), p)
		np.testing.assert_array_equal(arrays["m"][i].get(), m)
