"""Options and hyperparameters set after construction go through the constructor's rules; factor=1 and epsilon=0
are accepted (as PuzzleLib and torch.optim accept them) and compute what the formula says."""
import numpy as np
import pytest

from conftest import ParamBag, randomGrads
from puzzlelib_rmsprop import OptimizerError, RMSProp
from puzzlelib_rmsprop.Errors import OptimizerTypeError


def setUp(**kwargs):
	bag = ParamBag({"a": ((5, 4), np.float32)})
	opt = RMSProp(**kwargs)
	opt.setupOn(bag)
	return opt, bag


@pytest.mark.parametrize("name, value, error, match", [
	("learnRate", float("inf"), OptimizerError, r"RMSProp.learnRate must be finite"),
	("learnRate", 1e39, OptimizerError, r"does not fit float32"),
	("weightDecay", float("nan"), OptimizerError, r"RMSProp.weightDecay must be in \[0, inf\), got nan"),
	("epsilonInSqrt", "yes", OptimizerTypeError, r"RMSProp.epsilonInSqrt must be True or False, got 'yes'"),
	("skipNonFinite", "no", OptimizerTypeError, r"RMSProp.skipNonFinite must be True or False, got 'no'"),
	("momentum", 0.9, OptimizerError, r"RMSProp.momentum=0.9 needs the state 'mom'.*pass momentum=0.9 to the constructor"),
	("centered", True, OptimizerError, r"RMSProp.centered=True needs the state 'mg'.*pass centered=True to the constructor"),
	("stateBits", 8, OptimizerError, r"RMSProp.stateBits cannot change after construction"),
	("initialMs", 1.0, OptimizerError, r"RMSProp.initialMs is a start value"),
	("t", 2.5, OptimizerTypeError, r"RMSProp.t must be an integer"),
])
def test_bad_assignments_are_refused_and_change_nothing(name, value, error, match):
	opt, _ = setUp()
	before = getattr(opt, name)
	with pytest.raises(error, match=match):
		setattr(opt, name, value)
	assert getattr(opt, name) == before


def test_momentum_after_setupOn_works_where_its_state_exists():
	"""Constructed with momentum, changed later: the new value is used (torch's form, NumPy reference)."""
	opt, bag = setUp(learnRate=0.01, momentum=0.5)
	rng = np.random.default_rng(0)
	p = bag.vars["a"].data.get().astype(np.float32)
	opt.momentum = 0.9
	ms, mom = np.zeros_like(p), np.zeros_like(p)
	for _ in range(3):
		g = randomGrads(bag, rng)["a"]
		opt.update()
		ms = np.float32(0.9) * ms + np.float32(0.1) * g * g
		mom = np.float32(0.9) * mom + g / (np.sqrt(ms) + np.float32(1e-5))
		p = p + np.float32(0.01) * mom
	np.testing.assert_allclose(bag.vars["a"].data.get(), p, rtol=1e-6, atol=1e-7)


def test_flags_are_stored_as_bools():
	opt, _ = setUp()
	opt.skipNonFinite = 1
	opt.epsilonInSqrt = np.bool_(True)
	assert opt.skipNonFinite is True and opt.epsilonInSqrt is True


@pytest.mark.parametrize("factor, epsilon", [(1.0, 1e-5), (0.9, 0.0)])
def test_factor_one_and_epsilon_zero_are_accepted(factor, epsilon):
	opt, bag = setUp(learnRate=0.01, factor=factor, epsilon=epsilon)
	rng = np.random.default_rng(1)
	p = bag.vars["a"].data.get()
	g = randomGrads(bag, rng)["a"]
	opt.update()
	ms = np.float32(factor) * np.zeros_like(p) + np.float32(1 - factor) * g * g
	with np.errstate(divide="ignore", invalid="ignore"):
		expected = p + np.float32(0.01) * g / (np.sqrt(ms) + np.float32(epsilon))
	np.testing.assert_allclose(bag.vars["a"].data.get(), expected, rtol=1e-6)
