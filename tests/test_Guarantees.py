"""Issue 6's guarantees: bad input gets a named OptimizerError and changes nothing; non-finite steps can be
skipped; checkpoints survive kills and corruption; concurrent optimizers do not interfere."""
import threading

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import ParamBag, randomGrads, snapshot
from reference import rmspropStep
from test_RMSProp import trainAndCompare
from puzzlelib_rmsprop import OptimizerError, RMSProp
from puzzlelib_rmsprop.Errors import OptimizerTypeError


def state(bag, opt):
	"""Everything an update may touch: params, grads, ms, t, skippedSteps."""
	return ({n: v.data.get() for n, v in bag.vars.items()}, {n: v.grad.get() for n, v in bag.vars.items()},
			{n: s["ms"].get() for n, s in opt.states.items()}, opt.t, opt.skippedSteps)


def assertUnchanged(before, after):
	for b, a in zip(before[:3], after[:3]):
		assert b.keys() == a.keys()
		for name in b:
			np.testing.assert_array_equal(a[name], b[name])
	assert before[3:] == after[3:]


@pytest.mark.parametrize("name, value, message", [
	("learnRate", -1e-3, r"RMSProp.learnRate must be in \[0, inf\), got -0.001"),
	("learnRate", float("nan"), r"RMSProp.learnRate must be in \[0, inf\), got nan"),
	("factor", 1.5, r"RMSProp.factor must be in \[0, 1\], got 1.5"),
	("factor", -0.1, r"RMSProp.factor must be in \[0, 1\]"),
	("factor", float("inf"), r"RMSProp.factor must be in \[0, 1\]"),
	("epsilon", -1.0, r"RMSProp.epsilon must be in \[0, inf\), got -1.0"),
	("epsilon", float("nan"), r"RMSProp.epsilon must be in \[0, inf\)"),
	("t", -1, r"RMSProp.t must be in \[0, inf\)"),
])
def test_hyperparameters_out_of_range(name, value, message):
	with pytest.raises(OptimizerError, match=message):
		RMSProp(**{name: value}) if name != "t" else RMSProp().setAttr("t", value)

	opt = RMSProp()
	before = getattr(opt, name)
	with pytest.raises(OptimizerError, match=message):
		setattr(opt, name, value)
	with pytest.raises(OptimizerError, match=message):
		opt.setAttr(name, value)
	assert getattr(opt, name) == before


def test_hyperparameter_of_wrong_type():
	with pytest.raises(OptimizerTypeError, match="RMSProp.learnRate must be a real number, got '0.1'"):
		RMSProp(learnRate="0.1")
	assert issubclass(OptimizerTypeError, TypeError) and issubclass(OptimizerError, ValueError)


@pytest.mark.parametrize("useGlobalState", [False, True])
def test_non_finite_multiplier_changes_nothing(useGlobalState, rng):
	bag = ParamBag({"a": ((5, ), np.float32), "b": ((3, ), np.float16)}, rng=rng)
	opt = RMSProp(learnRate=0.1)
	opt.setupOn(bag, useGlobalState=useGlobalState)
	randomGrads(bag, rng)
	opt.update()

	randomGrads(bag, rng)
	bag.getVar("b").learnRate = float("nan")
	before = state(bag, opt)
	with pytest.raises(OptimizerError, match="variable 'bag.b': learnRate multiplier must be a finite number, got nan"):
		opt.update()
	assertUnchanged(before, state(bag, opt))


@pytest.mark.parametrize("useGlobalState", [False, True])
def test_zero_size_parameters_are_a_no_op(useGlobalState, rng):
	trainAndCompare({"empty": ((0, ), np.float32), "w": ((4, ), np.float32), "none": ((3, 0), np.float16)}, rng,
					steps=3, useGlobalState=useGlobalState)


@pytest.mark.parametrize("useGlobalState", [False, True])
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_skip_non_finite(useGlobalState, bad, rng):
	bag = ParamBag({"a": ((300, ), np.float32), "b": ((70001, ), np.float16)}, rng=rng)
	bag.getVar("a").learnRate = 0.0  # a frozen variable's grad is checked too
	opt = RMSProp(learnRate=1e-2, skipNonFinite=True)
	opt.setupOn(bag, useGlobalState=useGlobalState)

	randomGrads(bag, rng)
	opt.update()
	assert (opt.t, opt.skippedSteps) == (1, 0)

	for name, index in (("a", 17), ("b", 69999)):
		grads = randomGrads(bag, rng)
		grads[name][index] = bad
		bag.getVar(name).grad.set(grads[name])
		before = state(bag, opt)
		opt.update()
		after = state(bag, opt)
		assert after[3:] == (1, before[4] + 1)
		assertUnchanged(before[:3] + (1, ), after[:3] + (1, ))

	# a finite step afterwards goes through as usual
	expected = snapshot(bag)
	ms = {n: opt.states["bag." + n]["ms"].get() for n in expected}
	grads = randomGrads(bag, rng)
	opt.update()
	assert opt.t == 2
	p, _ = rmspropStep(expected["b"], grads["b"], ms["b"], 1e-2)
	np.testing.assert_array_equal(bag.getVar("b").data.get(), p)


def test_default_keeps_puzzlelib_behaviour(rng):
	"""Without skipNonFinite a NaN grad goes into the update, as in PuzzleLib."""
	bag = ParamBag({"w": ((8, ), np.float32)}, rng=rng)
	opt = RMSProp()
	opt.setupOn(bag)
	grads = randomGrads(bag, rng)
	grads["w"][3] = np.nan
	bag.getVar("w").grad.set(grads["w"])
	opt.update()
	assert np.isnan(bag.getVar("w").data.get()[3]) and opt.t == 1 and opt.skippedSteps == 0


def test_two_optimizers_in_two_threads_equal_sequential():
	"""The C kernels run without the GIL; nothing in the backend is shared between optimizers."""
	def run(seed, out, steps=200):
		bag = ParamBag({"a": ((300, 301), np.float32), "b": ((5000, ), np.float16)}, rng=np.random.default_rng(seed))
		opt = RMSProp(learnRate=1e-3, skipNonFinite=True)
		opt.setupOn(bag, useGlobalState=bool(seed % 2))
		gradRng = np.random.default_rng(seed + 100)
		for _ in range(steps):
			randomGrads(bag, gradRng)
			opt.update()
		out[seed] = snapshot(bag)

	sequential, threaded = {}, {}
	for seed in (1, 2):
		run(seed, sequential)

	threads = [threading.Thread(target=run, args=(seed, threaded)) for seed in (1, 2)]
	for t in threads:
		t.start()
	for t in threads:
		t.join()

	for seed in (1, 2):
		for name in sequential[seed]:
			np.testing.assert_array_equal(threaded[seed][name], sequential[seed][name])


@settings(max_examples=25, deadline=None)
@given(
	sizes=st.lists(st.tuples(st.integers(0, 40), st.integers(1, 9)), min_size=1, max_size=5),
	dtypes=st.lists(st.sampled_from([np.float32, np.float16]), min_size=5, max_size=5),
	multipliers=st.lists(st.sampled_from([0.0, -1.0, 0.3, 1.0, 2.5]), min_size=5, max_size=5),
	learnRate=st.floats(0, 0.1), factor=st.floats(0, 0.99), epsilon=st.floats(1e-8, 1e-2),
	useGlobalState=st.booleans(),
)
def test_property_optimizer_against_reference(sizes, dtypes, multipliers, learnRate, factor, epsilon, useGlobalState):
	"""Random shapes, dtypes, hyperparameters and multipliers (negative ones freeze, as in PuzzleLib), both modes."""
	specs = {"v%d" % i: (shape, dtypes[i]) for i, shape in enumerate(sizes)}
	mults = {"v%d" % i: multipliers[i] for i in range(len(sizes))}
	trainAndCompare(specs, np.random.default_rng(len(sizes)), steps=3, useGlobalState=useGlobalState,
					learnRate=learnRate, factor=factor, epsilon=epsilon, multipliers=mults)
