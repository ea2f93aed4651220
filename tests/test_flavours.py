"""Issue 7: RMSProp's options and RMSPropGraves, each against the framework it reproduces."""

import numpy as np
import pytest

from conftest import ParamBag, randomGrads, requireTool, snapshot
from reference import kerasStep, flavourStep, tf1Step
from puzzlelib_rmsprop import OptimizerError, RMSProp, RMSPropGraves
from puzzlelib_rmsprop.Errors import OptimizerTypeError

SPECS = {"a": ((7, 5), np.float32), "b": ((130, ), np.float32)}


def needTorch():
	try:
		import torch
		return torch
	except ImportError as e:
		requireTool("torch is not installed: %s" % e)


@pytest.mark.parametrize("useGlobalState", [False, True])
@pytest.mark.parametrize("weightDecay", [0.0, 0.01])
@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_matches_torch_optim_rmsprop(momentum, centered, weightDecay, useGlobalState):
	"""50 steps against torch.optim.RMSprop(lr, alpha, eps, weight_decay, momentum, centered); torch's grad is
	minus ours. float32 on both sides, different operation orders (torch's lerp and addcdiv): rtol 1e-5."""
	torch = needTorch()
	lr, alpha, eps = 1e-2, 0.9, 1e-6
	bag = ParamBag(SPECS, rng=np.random.default_rng(0))
	opt = RMSProp(learnRate=lr, factor=alpha, epsilon=eps, momentum=momentum, centered=centered, weightDecay=weightDecay)
	opt.setupOn(bag, useGlobalState=useGlobalState)

	params = {n: torch.nn.Parameter(torch.from_numpy(w.copy())) for n, w in snapshot(bag).items()}
	theirs = torch.optim.RMSprop(list(params.values()), lr=lr, alpha=alpha, eps=eps, weight_decay=weightDecay,
								 momentum=momentum, centered=centered)
	rng = np.random.default_rng(1)
	for _ in range(50):
		grads = randomGrads(bag, rng)
		for n, p in params.items():
			p.grad = torch.from_numpy(-grads[n])
		opt.update()
		theirs.step()

	for n, p in params.items():
		np.testing.assert_allclose(bag.getVar(n).data.get(), p.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=n)


@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_matches_tensorflow1_formula(momentum, centered):
	"""TF1's RMSPropOptimizer: epsilonInSqrt=True, initialMs=1. TF keeps lr inside its momentum buffer; with a
	constant lr that equals torch-style momentum up to rounding, hence the tolerance."""
	lr, decay, eps = 1e-2, 0.9, 1e-6
	bag = ParamBag(SPECS, rng=np.random.default_rng(2))
	opt = RMSProp(learnRate=lr, factor=decay, epsilon=eps, momentum=momentum, centered=centered,
				  epsilonInSqrt=True, initialMs=1.0)
	opt.setupOn(bag)

	tf = {n: [w, np.ones_like(w), np.zeros_like(w), np.zeros_like(w)] for n, w in snapshot(bag).items()}
	rng = np.random.default_rng(3)
	for _ in range(50):
		grads = randomGrads(bag, rng)
		opt.update()
		for n, (p, ms, mg, mom) in tf.items():
			tf[n] = list(tf1Step(p, -grads[n], ms, mg, mom, lr, decay, momentum, eps, centered))

	for n, (p, *_) in tf.items():
		np.testing.assert_allclose(bag.getVar(n).data.get(), p, rtol=1e-5, atol=1e-6, err_msg=n)


@pytest.mark.parametrize("useGlobalState", [False, True])
@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_matches_keras_formula(momentum, centered, useGlobalState):
	"""Keras's RMSprop (reference.kerasStep, from Keras's source): epsilonInSqrt=True with ms from 0, 50 steps.
	Tolerance rtol 1e-5, atol 1e-6, the torch test's: float32 on both sides, but Keras keeps lr inside its momentum
	buffer (ours multiplies it after) and orders the ms update differently, so the two round apart by a few ulp."""
	lr, rho, eps = 1e-2, 0.9, 1e-6
	bag = ParamBag(SPECS, rng=np.random.default_rng(12))
	opt = RMSProp(learnRate=lr, factor=rho, epsilon=eps, momentum=momentum, centered=centered, epsilonInSqrt=True)
	opt.setupOn(bag, useGlobalState=useGlobalState)

	zeros = np.zeros_like
	keras = {n: [w, zeros(w), zeros(w), zeros(w)] for n, w in snapshot(bag).items()}
	rng = np.random.default_rng(13)
	for _ in range(50):
		grads = randomGrads(bag, rng)
		opt.update()
		for n, (p, velocity, averageGrad, mom) in keras.items():
			keras[n] = list(kerasStep(p, -grads[n], velocity, averageGrad, mom, lr, rho, momentum, eps, centered))

	for n, (p, velocity, *_) in keras.items():
		np.testing.assert_allclose(bag.getVar(n).data.get(), p, rtol=1e-5, atol=1e-6, err_msg=n)
		np.testing.assert_allclose(opt.states["bag." + n]["ms"].get(), velocity, rtol=1e-5, atol=0, err_msg=n)


def trainAgainstTranscription(bag, opt, momKey, learnRate, momentum, factor, epsilon, steps=10, stateDtype=None,
							  **options):
	"""Trains and checks every parameter and momentum buffer, bit for bit, against reference.flavourStep with the
	variables' learnRate and momRate multipliers (a multiplier of 0 freezes the variable)."""
	zeros = lambda w: np.zeros(w.shape, stateDtype or w.dtype)
	want = {n: (w, zeros(w), zeros(w), zeros(w)) for n, w in snapshot(bag).items()}
	rng = np.random.default_rng(5)
	for _ in range(steps):
		grads = randomGrads(bag, rng)
		opt.update()
		for n, (p, ms, mg, mom) in want.items():
			var = bag.getVar(n)
			if var.learnRate > 0:
				want[n] = flavourStep(p, grads[n], ms, mg, mom, learnRate * var.learnRate, momentum * var.momRate,
									  factor, epsilon, **options)

	for n, (p, ms, mg, mom) in want.items():
		np.testing.assert_array_equal(bag.getVar(n).data.get(), p, err_msg=n)
		np.testing.assert_array_equal(opt.states["bag." + n][momKey].get(), mom, err_msg=n)


@pytest.mark.parametrize("useGlobalState", [False, True])
def test_flavour_kernel_bit_exact_with_multipliers(useGlobalState):
	"""Every option at once, per-variable learnRate and momRate multipliers: equal to the NumPy transcription."""
	bag = ParamBag({"a": ((33, ), np.float32), "b": ((4, 4), np.float32), "c": ((9, ), np.float32)}, rng=np.random.default_rng(4))
	bag.getVar("b").learnRate, bag.getVar("c").momRate, bag.getVar("c").learnRate = 0.5, 0.25, 0.0
	opt = RMSProp(learnRate=1e-2, factor=0.8, epsilon=1e-4, momentum=0.7, centered=True, weightDecay=0.05)
	opt.setupOn(bag, useGlobalState=useGlobalState)

	trainAgainstTranscription(bag, opt, "mom", 1e-2, 0.7, 0.8, 1e-4, weightDecay=0.05, centered=True, momentumMode=1)


@pytest.mark.parametrize("useGlobalState", [False, True])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("kind", ["torch", "graves"])
def test_16_bit_state_flavours_bit_exact(kind, dtype, useGlobalState):
	"""16-bit parameters with 16-bit ms, mg and momentum (the flavourFloat16 / flavourBfloat16 kernels) on the CPU:
	bit for bit the NumPy transcription, which rounds every state to the 16-bit type after each step."""
	from puzzlelib_rmsprop.Backend.dtypes import bfloat16
	if dtype == "bfloat16" and bfloat16 is None:
		requireTool("ml_dtypes is not installed")
	npDtype = np.float16 if dtype == "float16" else bfloat16
	bag = ParamBag({"a": ((37, ), npDtype), "b": ((5, 9), npDtype)}, rng=np.random.default_rng(14))
	bag.getVar("b").learnRate = 0.5
	if kind == "torch":
		opt = RMSProp(learnRate=1e-2, factor=0.8, epsilon=1e-4, momentum=0.7, centered=True, weightDecay=0.05)
		opt.setupOn(bag, useGlobalState=useGlobalState)
		assert opt.states["bag.a"]["ms"].dtype == npDtype and opt.states["bag.a"]["mom"].dtype == npDtype
		trainAgainstTranscription(bag, opt, "mom", 1e-2, 0.7, 0.8, 1e-4, weightDecay=0.05, centered=True, momentumMode=1)
	else:
		opt = RMSPropGraves(learnRate=1e-3, alpha=0.95, momRate=0.9, epsilon=1e-4)
		opt.setupOn(bag, useGlobalState=useGlobalState)
		assert opt.states["bag.a"]["ms"].dtype == npDtype and opt.states["bag.a"]["delta"].dtype == npDtype
		trainAgainstTranscription(bag, opt, "delta", 1e-3, 0.9, 0.95, 1e-4, centered=True, epsilonInSqrt=True, momentumMode=2)


@pytest.mark.parametrize("useGlobalState", [False, True])
def test_float32_state_for_bfloat16_parameters(useGlobalState):
	"""bfloat16 parameters with float32 states: bit for bit the float32-master NumPy reference."""
	from puzzlelib_rmsprop.Backend.dtypes import bfloat16
	if bfloat16 is None:
		requireTool("ml_dtypes is not installed")

	bag = ParamBag({"w": ((999, ), bfloat16)}, rng=np.random.default_rng(10))
	opt = RMSProp(learnRate=1e-2, momentum=0.5, stateDtype=np.float32)
	opt.setupOn(bag, useGlobalState=useGlobalState)
	assert opt.states["bag.w"]["ms"].dtype == np.float32

	trainAgainstTranscription(bag, opt, "mom", 1e-2, 0.5, 0.9, 1e-5, stateDtype=np.float32, momentumMode=1)


@pytest.mark.parametrize("useGlobalState", [False, True])
def test_float32_state_for_float16_parameters(useGlobalState):
	"""stateDtype=np.float32: ms in float32 (checked bit for bit against a float32-master NumPy reference), and
	the drift it avoids: with small gradients a float16 ms underflows to 0 and the steps blow up."""
	results = {}
	for stateDtype in (None, np.float32):
		bag = ParamBag({"w": ((4000, ), np.float16)}, rng=np.random.default_rng(6))
		# small weights, so that float16 storage of the parameters (ulp ~1e-5 here) is not what limits accuracy
		bag.getVar("w").data.set((0.01 * np.random.default_rng(6).standard_normal(4000)).astype(np.float16))
		opt = RMSProp(learnRate=1e-3, stateDtype=stateDtype)
		opt.setupOn(bag, useGlobalState=useGlobalState)
		assert opt.states["bag.w"]["ms"].dtype == (np.float32 if stateDtype else np.float16)

		p, ms = bag.getVar("w").data.get(), np.zeros(4000, np.float32)
		truth = p.astype(np.float64)
		ms64 = np.zeros(4000)
		rng = np.random.default_rng(7)
		for _ in range(20):
			g = (rng.standard_normal(4000) * 1e-4).astype(np.float16)  # g^2 ~ 1e-8: below float16's smallest subnormal
			bag.getVar("w").grad.set(g)
			opt.update()
			if stateDtype:
				p, ms, _, _ = flavourStep(p, g, ms, None, None, 1e-3, 0.0, 0.9, 1e-5)
			g64 = g.astype(np.float64)
			ms64 = 0.9 * ms64 + 0.1 * g64 ** 2
			truth = truth + 1e-3 * g64 / (np.sqrt(ms64) + 1e-5)

		got = bag.getVar("w").data.get()
		if stateDtype:
			np.testing.assert_array_equal(got, p)
		results[stateDtype] = np.abs(got.astype(np.float64) - truth).max()

	# Derived bound: the step depends on g and ms only, so float16 storage of p adds at most half an ulp of float16 at
	# the largest |p| per step (20 steps), and the float32 state's step is off by a few float32 ulp of its size
	# (at most lr / sqrt(1 - factor)): 20 * (ulp16 / 2 + 2^-20 * lr / sqrt(0.1)). Measured 7.0e-5 against 3.05e-4.
	largest = np.float16(np.abs(truth).max())
	bound = 20 * (float(np.spacing(largest)) / 2 + 2.0 ** -20 * 1e-3 / np.sqrt(0.1))
	assert results[np.float32] <= bound and results[None] > 10 * results[np.float32], (results, bound)


def test_options_are_validated():
	with pytest.raises(OptimizerError, match=r"RMSProp.momentum must be in \[0, inf\), got -0.5"):
		RMSProp(momentum=-0.5)
	with pytest.raises(OptimizerError, match=r"RMSProp.weightDecay must be in \[0, inf\), got nan"):
		RMSProp(weightDecay=float("nan"))
	with pytest.raises(OptimizerTypeError, match="stateDtype must be None .* or np.float32, got float64"):
		RMSProp(stateDtype=np.float64)
	with pytest.raises(TypeError):
		RMSProp(1e-3, 0.9, 1e-5, None, 0.9)  # the options are keyword-only
	assert RMSProp().puzzlelibFlavour and not RMSProp(centered=True).puzzlelibFlavour


def test_default_states_only(rng):
	"""The default adds no state: the same memory traffic as before the options existed."""
	bag = ParamBag({"w": ((5, ), np.float32)}, rng=rng)
	opt = RMSProp()
	opt.setupOn(bag)
	assert list(opt.states["bag.w"]) == ["ms"]


def test_checkpoint_without_the_new_states_still_loads(tmp_path, rng):
	bag = ParamBag({"w": ((5, ), np.float32)}, rng=rng)
	plain = RMSProp()
	plain.setupOn(bag)
	randomGrads(bag, rng)
	plain.update()
	plain.save(str(tmp_path / "plain.hdf"))

	fancy = RMSProp(momentum=0.9, centered=True)
	fancy.setupOn(ParamBag({"w": ((5, ), np.float32)}, rng=rng))
	fancy.load(str(tmp_path / "plain.hdf"))
	np.testing.assert_array_equal(fancy.states["bag.w"]["ms"].get(), plain.states["bag.w"]["ms"].get())
	assert not fancy.states["bag.w"]["mom"].get().any()


@pytest.mark.parametrize("useGlobalState", [False, True])
def test_graves_bit_exact_with_multipliers(useGlobalState):
	bag = ParamBag({"a": ((50, ), np.float32), "b": ((3, 3), np.float32)}, rng=np.random.default_rng(8))
	bag.getVar("b").momRate, bag.getVar("a").learnRate = 0.5, 2.0
	opt = RMSPropGraves(learnRate=1e-3)
	opt.setupOn(bag, useGlobalState=useGlobalState)
	assert sorted(opt.states["bag.a"]) == ["delta", "mg", "ms"]

	trainAgainstTranscription(bag, opt, "delta", 1e-3, 0.9, 0.95, 1e-4, centered=True, epsilonInSqrt=True, momentumMode=2)


def test_flavour_entry_checks_loose_arrays():
	from puzzlelib_rmsprop.Backend import gpuarray
	from puzzlelib_rmsprop.Kernels import Flavour, flavourUpdate

	p, g = gpuarray.to_gpu(np.ones(6, np.float16)), gpuarray.zeros((6, ), np.float16)
	with pytest.raises(OptimizerTypeError, match=r"float16\[6\], float16\[6\], float32\[5\]"):
		flavourUpdate(p, g, gpuarray.zeros((5, ), np.float32), None, None, 0.1, 0.0, Flavour(0.9, 1e-5))
	with pytest.raises(OptimizerTypeError, match="states of float16/float32"):
		flavourUpdate(p, g, gpuarray.zeros((6, ), np.float64), None, None, 0.1, 0.0, Flavour(0.9, 1e-5))
	np.testing.assert_array_equal(p.get(), np.ones(6, np.float16))
