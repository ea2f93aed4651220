"""Global state re-reads the variables' multipliers only after one was assigned (the variables it rebinds report it),
and gives the results of re-reading them every step."""
import copy
import pickle

import numpy as np
import pytest

from conftest import ParamBag, randomGrads
from reference import rmspropStep
from puzzlelib_rmsprop import RMSProp, Variable
from puzzlelib_rmsprop import StateLayouts

SPECS = {"a": ((5, 3), np.float32), "b": ((7, ), np.float32), "c": ((4, ), np.float32)}


@pytest.fixture
def reads(monkeypatch):
	"""Counts reads of a multiplier through the packed layout's parts."""
	counter = {"n": 0}
	original = StateLayouts.BufferPart.learnRate

	def counting(part):
		counter["n"] += 1
		return original.fget(part)

	monkeypatch.setattr(StateLayouts.BufferPart, "learnRate", property(counting))
	return counter


def test_unchanged_multipliers_are_not_read_each_step(rng, reads):
	bag = ParamBag(SPECS, rng=rng)
	opt = RMSProp(learnRate=1e-2)
	opt.setupOn(bag, useGlobalState=True)
	randomGrads(bag, rng)
	opt.update()
	first = reads["n"]
	assert first >= len(SPECS)
	for _ in range(3):
		opt.update()
	assert reads["n"] == first  # nothing was assigned: nothing re-read

	bag.getVar("b").learnRate = 0.5
	opt.update()
	assert reads["n"] >= first + len(SPECS)


@pytest.mark.parametrize("attr", ["learnRate", "momRate"])
def test_a_multiplier_set_between_steps_applies(rng, attr):
	bag = ParamBag(SPECS, rng=rng)
	opt = RMSProp(learnRate=1e-2, momentum=0.5) if attr == "momRate" else RMSProp(learnRate=1e-2)
	opt.setupOn(bag, useGlobalState=True)
	grads = randomGrads(bag, rng)
	opt.update()
	before = {n: v.data.get() for n, v in bag.vars.items()}
	ms = {n: opt.states["bag." + n]["ms"].get() for n in bag.vars}

	setattr(bag.getVar("a"), attr, 0.0)
	opt.update()
	if attr == "learnRate":
		np.testing.assert_array_equal(bag.getVar("a").data.get(), before["a"])  # frozen
		p, _ = rmspropStep(before["b"], grads["b"], ms["b"], 1e-2)
		np.testing.assert_array_equal(bag.getVar("b").data.get(), p)
	else:
		assert not np.array_equal(bag.getVar("a").data.get(), before["a"])
		# momRate 0 on a: its step is the plain RMSProp step (no momentum carried over)
		p, _ = rmspropStep(before["a"], grads["a"], ms["a"], 1e-2)
		np.testing.assert_allclose(bag.getVar("a").data.get(), p, rtol=1e-6)


def test_rebound_variables_keep_their_class_for_users(rng):
	bag = ParamBag(SPECS, rng=rng)
	RMSProp().setupOn(bag, useGlobalState=True)
	var = bag.getVar("a")
	assert isinstance(var, Variable) and type(var).__name__ == "Variable" and type(var) is not Variable
	for clone in (copy.deepcopy(var), pickle.loads(pickle.dumps(var))):
		assert type(clone) is Variable and "_multiplierWatch" not in vars(clone)
		np.testing.assert_array_equal(clone.data.get(), var.data.get())


def test_setup_again_keeps_one_level_of_subclass(rng):
	bag = ParamBag(SPECS, rng=rng)
	opt = RMSProp(learnRate=1e-2)
	opt.setupOn(bag, useGlobalState=True)
	first = type(bag.getVar("a"))
	opt.setupOn(bag, useGlobalState=True)
	assert type(bag.getVar("a")) is first and first.__mro__[1] is Variable
	bag.getVar("a").learnRate = 0.0
	before = bag.getVar("a").data.get()
	randomGrads(bag, rng)
	opt.update()
	np.testing.assert_array_equal(bag.getVar("a").data.get(), before)


def test_puzzlelibs_variables_are_watched_as_theirs(puzzlelib):
	"""PuzzleLib's own modules and Variable class: a multiplier set on the rebound variable applies, and the
	variable stays one of PuzzleLib's."""
	from PuzzleLib.Variable import Variable as PuzzleLibVariable
	pl = puzzlelib
	net = pl.Linear.Linear(4, 3)
	opt = RMSProp(learnRate=1e-2)
	opt.setupOn(net, useGlobalState=True)
	W = net.getVar("W")
	assert isinstance(W, PuzzleLibVariable) and type(W).__mro__[1] is PuzzleLibVariable
	rng = np.random.default_rng(0)
	for var in net.getVarTable():
		var.grad.set(rng.standard_normal(var.grad.shape).astype(np.float32))
	W.learnRate = 0.0
	before = {name: net.getVar(name).data.get() for name in ("W", "b")}
	opt.update()
	np.testing.assert_array_equal(net.getVar("W").data.get(), before["W"])
	assert not np.array_equal(net.getVar("b").data.get(), before["b"])
