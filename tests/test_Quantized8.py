"""Issue 12: 8-bit blockwise state (stateBits=8), against the independent NumPy reference in quant8_reference.py:
the codes, the update of every flavour bit for bit, checkpoints and the bytes held."""
import h5py
import numpy as np
import pytest

import quant8_reference as ref
from conftest import ParamBag, randomGrads, snapshot
from puzzlelib_rmsprop import OptimizerError, RMSProp, RMSPropGraves
from puzzlelib_rmsprop.Backend.dtypes import bfloat16
from puzzlelib_rmsprop.Quantized8 import QUANT_BLOCK, QuantizedState, decode, encode

TINY = np.float32(1e-41)  # a float32 denormal


def awkwardValues(rng, n, signed):
	"""Zeros, float32 denormals, huge values, negatives, spans of many binades."""
	x = (rng.standard_normal(n) * np.exp(rng.uniform(-40, 40, n))).astype(np.float32)
	x[::7] = 0.0
	x[1::11] = TINY
	x[2::13] = np.float32(3e38)
	x[3::17] = -np.float32(2.5e-7)
	return x if signed else np.abs(x)


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("size", [1, 255, 256, 257, 511, 5000])
def test_codes_match_the_independent_reference(signed, size, rng):
	"""Blocks of 1 and 255 elements at the tail too; every code and scale, and the decoded values, bit for bit."""
	x = awkwardValues(rng, size, signed)
	codes, scales = encode(x, signed)
	wantCodes, wantScales = ref.encode(x, signed)
	np.testing.assert_array_equal(scales, wantScales)
	np.testing.assert_array_equal(codes, wantCodes)
	np.testing.assert_array_equal(decode(codes, scales, signed), ref.decode(codes, scales, signed))


@pytest.mark.parametrize("signed", [False, True])
def test_every_code_round_trips(signed):
	"""Each code's value, encoded in a block whose largest value is the top code, comes back as that code."""
	codes = np.arange(256, dtype=np.uint8) if not signed else np.array([c for c in range(256) if c & 0x7f != 0x7f], np.uint8)
	values = ref.decode(codes, np.ones(1, np.float32), signed)
	block = np.concatenate([values, np.full(QUANT_BLOCK - values.size, ref.MAX[signed], np.float32)])
	got, scales = encode(block, signed)
	assert scales[0] == 1.0
	np.testing.assert_array_equal(np.where(values == 0, 0, got[:codes.size]), np.where(values == 0, 0, codes))


@pytest.mark.parametrize("signed", [False, True])
def test_every_code_decodes_to_the_reference(signed):
	"""Every code the encoder gives (subnormal ones, the first normal one, the top one; E4M3's NaN codes, 0x7f and
	0xff, it never gives) in blocks of three scales, against the reference's table and ml_dtypes."""
	codes = np.array([c for c in range(256) if not signed or c & 0x7f != 0x7f], np.uint8)
	codes = np.concatenate([codes, np.zeros(QUANT_BLOCK - codes.size, np.uint8)])
	codes = np.tile(codes, 3)
	scales = np.array([1.0, 2.0 ** -30, 3.0e-3], np.float32)
	np.testing.assert_array_equal(decode(codes, scales, signed), ref.decode(codes, scales, signed))


@pytest.mark.parametrize("signed", [False, True])
def test_ties_go_to_the_even_code(signed):
	"""Midpoints between neighbouring codes (exact in float32) round to the even code, as the reference does."""
	values = ref.decode(np.arange(127 if signed else 256, dtype=np.uint8), np.ones(1, np.float32), signed).astype(np.float64)
	midpoints = ((values[1:] + values[:-1]) / 2).astype(np.float32)
	block = np.concatenate([midpoints, [ref.MAX[signed]]]).astype(np.float32)
	codes, scales = encode(block, signed)
	assert scales[0] == 1.0
	np.testing.assert_array_equal(codes, ref.encode(block, signed)[0])
	assert np.all(codes[:-1] % 2 == 0)


@pytest.mark.parametrize("signed", [False, True])
def test_round_trip_error_is_half_a_step(signed, rng):
	"""3 mantissa bits: a value within the normal range of its block comes back within 1/16 of itself; the block's
	largest value within float32 rounding; a block of one repeated value exactly up to that rounding."""
	x = (rng.standard_normal(50 * QUANT_BLOCK) * np.exp(rng.uniform(-6, 6, 50 * QUANT_BLOCK))).astype(np.float32)
	x = x if signed else np.abs(x)
	codes, scales = encode(x, signed)
	back = decode(codes, scales, signed)
	blockMax = np.repeat(scales * ref.MAX[signed], QUANT_BLOCK)[:x.size]
	smallestNormal = 2.0 ** (-6 if signed else -14)  # relative to the top code's value
	normal = np.abs(x) >= blockMax * np.float32(smallestNormal / ref.MAX[signed])
	assert normal.sum() > x.size * 0.7
	assert np.all(np.abs(back - x)[normal] <= np.abs(x)[normal] / 16 * 1.0001)
	assert np.all(np.sign(back[back != 0]) == np.sign(x[back != 0]))

	same = np.full(QUANT_BLOCK, -0.37 if signed else 0.37, np.float32)
	np.testing.assert_allclose(decode(*encode(same, signed), signed), same, rtol=2e-7)
	assert np.all(decode(*encode(np.zeros(300, np.float32), signed), signed) == 0)


def test_non_finite_values_poison_only_their_block():
	x = np.ones(3 * QUANT_BLOCK, np.float32)
	x[QUANT_BLOCK + 3] = np.nan
	back = decode(*encode(x, False), False)
	assert np.all(np.isnan(back[QUANT_BLOCK:2 * QUANT_BLOCK]))
	assert np.all(back[:QUANT_BLOCK] == 1) and np.all(back[2 * QUANT_BLOCK:] == 1)


DTYPES = [np.float32, np.float16] + ([bfloat16] if bfloat16 is not None else [])
SPECS = lambda dtype: {"a": ((33, 9), dtype), "b": ((257, ), dtype), "c": ((1, ), dtype), "d": ((600, ), dtype)}
FLAVOURS = {
	"puzzlelib": (dict(), dict()),
	"momentum": (dict(momentum=0.7), dict(momentumMode=1)),
	"centered": (dict(centered=True), dict(centered=True)),
	"tf1": (dict(epsilonInSqrt=True, initialMs=1.0, momentum=0.5), dict(epsilonInSqrt=True, momentumMode=1)),
	"everything": (dict(momentum=0.7, centered=True, weightDecay=0.05), dict(weightDecay=0.05, centered=True, momentumMode=1)),
}


def trainAgainstReference(bag, opt, makeStates, learnRate, momentum, factor, epsilon, steps=6, **options):
	"""Trains ``bag`` and the reference side by side; params, codes and scales must agree bit for bit."""
	want = {n: (w, makeStates(w)) for n, w in snapshot(bag).items()}
	rng = np.random.default_rng(5)
	for _ in range(steps):
		grads = randomGrads(bag, rng)
		opt.update()
		for n, (p, states) in want.items():
			var = bag.getVar(n)
			if var.learnRate > 0:
				want[n] = (ref.step(p, grads[n], states["ms"], states.get("mg"), states.get("mom"), learnRate * var.learnRate,
									momentum * var.momRate, factor, epsilon, **options), states)

	for n, (p, states) in want.items():
		np.testing.assert_array_equal(bag.getVar(n).data.get(), p, err_msg=n)
		for key, state in states.items():
			got = opt.states["bag." + n][{"mom": "delta"}.get(key, key) if isinstance(opt, RMSPropGraves) else key]
			assert isinstance(got, QuantizedState)
			np.testing.assert_array_equal(got.scales.get(), state.scales, err_msg="%s %s scales" % (n, key))
			np.testing.assert_array_equal(got.codes.get(), state.codes, err_msg="%s %s codes" % (n, key))


@pytest.mark.parametrize("useGlobalState", [False, True])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
def test_update_bit_exact_against_reference(flavour, dtype, useGlobalState):
	"""Every flavour, every parameter dtype, both state modes, with learnRate and momRate multipliers (one frozen)."""
	options, refOptions = FLAVOURS[flavour]
	bag = ParamBag(SPECS(dtype), rng=np.random.default_rng(4))
	bag.getVar("b").learnRate, bag.getVar("d").momRate, bag.getVar("c").learnRate = 0.5, 0.25, 0.0
	opt = RMSProp(learnRate=1e-2, factor=0.8, epsilon=1e-4, stateBits=8, **options)
	opt.setupOn(bag, useGlobalState=useGlobalState)

	def states(w):
		made = {"ms": ref.Quantized(np.full(w.size, options.get("initialMs", 0.0), np.float32), False)}
		if options.get("centered"):
			made["mg"] = ref.Quantized(np.zeros(w.size, np.float32), True)
		if options.get("momentum"):
			made["mom"] = ref.Quantized(np.zeros(w.size, np.float32), True)
		return made

	trainAgainstReference(bag, opt, states, 1e-2, options.get("momentum", 0.0), 0.8, 1e-4, **refOptions)


def edgeCaseStep(rng, n, scale):
	"""An ms state and grads for one plain step with factor 0.5 whose new ms codes hit the encoder's edges: (ms, grad,
	ties). The old ms are code values times ``scale`` (a power of two), each block's first the top code with grad 0,
	so the new block scale is exactly scale / 2 and an element's new code is that of v(c) + g^2 / scale, exactly: a
	power-of-two g lands it half a step above v(c) (a tie, for codes whose step is an odd power of two: the subnormal
	ones and odd exponents), on the next code, or between codes; small grads on code 0 give subnormal codes. One block
	gets a NaN grad, one is all zeros (its scale 0)."""
	values = ref.UNSIGNED_VALUES
	codes = rng.integers(0, 255, n)
	codes[rng.random(n) < 0.15] = 0
	codes[::QUANT_BLOCK] = 255
	step = np.append(np.diff(values), values[255] - values[254])[codes]  # to the next code: a power of two
	exponent = np.log2(step).astype(np.int64)
	tieable = (exponent % 2 == 1) & (codes < 255)           # then g^2 = step / 2 * scale is an even power of two
	kind = rng.integers(0, 4, n)                               # 0: stays, 1: tie, 2: next code, 3: anywhere up to it
	grad = np.zeros(n)
	grad = np.where((kind == 1) & tieable, np.sqrt(step / 2 * scale), grad)
	grad = np.where((kind == 2) & (codes < 255), np.sqrt(step * scale), grad)
	grad = np.where(kind == 3, np.sqrt(rng.random(n) * step * scale), grad)
	grad[::QUANT_BLOCK] = 0
	ties = np.flatnonzero((kind == 1) & tieable & (np.arange(n) % QUANT_BLOCK != 0))
	ms = values[codes] * scale
	zeroBlock, nanBlock = 5 * QUANT_BLOCK, 3 * QUANT_BLOCK
	ms[zeroBlock:zeroBlock + QUANT_BLOCK], grad[zeroBlock:zeroBlock + QUANT_BLOCK] = 0, 0
	grad[nanBlock + 17] = np.nan
	ties = ties[(ties // QUANT_BLOCK != 3) & (ties // QUANT_BLOCK != 5)]
	return ms.astype(np.float32), grad, ties


@pytest.mark.parametrize("useGlobalState", [False, True])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_plain_update_codes_at_the_edges(dtype, useGlobalState):
	"""PuzzleLib's plain update over seven whole blocks and a short one (the host kernel encodes each whole block in
	the next block's loop, the last after it): new ms on ties (to the even code), on subnormal codes, on the top code,
	0, a NaN block among whole blocks (its neighbours untouched) and an all-zero block; params, codes and scales bit
	for bit against the reference."""
	n, scale = 7 * QUANT_BLOCK + 77, np.float32(2.0 ** -10)
	ms, grad, ties = edgeCaseStep(np.random.default_rng(21), n, scale)
	bag = ParamBag({"w": ((n, ), dtype)}, rng=np.random.default_rng(22))
	opt = RMSProp(learnRate=1e-2, factor=0.5, epsilon=1e-4, stateBits=8)
	opt.setupOn(bag, useGlobalState=useGlobalState)
	state, want = opt.states["bag.w"]["ms"], ref.Quantized(ms, False)
	state.set(ms)
	np.testing.assert_array_equal(state.codes.get(), want.codes)
	assert np.all(want.scales == np.float32(np.where(np.arange(want.scales.size) == 5, 0, scale)))

	var = bag.getVar("w")
	param, grad = var.data.get(), grad.astype(dtype)
	var.grad.set(grad)
	oldCodes = want.codes.copy()
	opt.update()
	wantParam = ref.step(param, grad, want, None, None, 1e-2, 0.0, 0.5, 1e-4)

	np.testing.assert_array_equal(var.data.get(), wantParam)
	np.testing.assert_array_equal(state.scales.get(), want.scales)
	np.testing.assert_array_equal(state.codes.get(), want.codes)
	# the edges were there: ties (half of them from an odd code up), subnormal codes, the NaN block saturated
	codes = want.codes
	assert ties.size > 50 and np.all(codes[ties] % 2 == 0) and np.sum(oldCodes[ties] % 2 == 1) > 10
	assert np.sum((codes > 0) & (codes < 8)) > 20
	assert np.isnan(want.scales[3]) and codes[3 * QUANT_BLOCK + 17] == 255
	assert want.scales[5] == 0 and np.all(codes[5 * QUANT_BLOCK:6 * QUANT_BLOCK] == 0)
	assert np.all(codes[::QUANT_BLOCK][[0, 1, 2, 4, 6, 7]] == 255)


@pytest.mark.parametrize("useGlobalState", [False, True])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_graves_bit_exact_against_reference(dtype, useGlobalState):
	"""8-bit Graves for every parameter dtype (float32, float16, bfloat16), both state modes."""
	bag = ParamBag(SPECS(dtype), rng=np.random.default_rng(7))
	bag.getVar("a").momRate = 0.5
	opt = RMSPropGraves(learnRate=1e-3, stateBits=8)
	opt.setupOn(bag, useGlobalState=useGlobalState)
	states = lambda w: {key: ref.Quantized(np.zeros(w.size, np.float32), key != "ms") for key in ("ms", "mg", "mom")}
	trainAgainstReference(bag, opt, states, 1e-3, 0.9, 0.95, 1e-4, centered=True, epsilonInSqrt=True, momentumMode=2)


@pytest.mark.parametrize("useGlobalState", [False, True])
def test_hooks_run_before_the_8_bit_update(useGlobalState):
	"""PuzzleLib's WeightDecay hook (grad -= rate * wc * param) with 8-bit state: the reference with decayed grads."""
	from puzzlelib_rmsprop.Hooks import WeightDecay
	bag = ParamBag({"a": ((300, ), np.float32), "b": ((40, ), np.float32)}, rng=np.random.default_rng(8))
	bag.getVar("a").wc = 0.5
	opt = RMSProp(learnRate=1e-2, stateBits=8)
	opt.addHook(WeightDecay(0.1))
	opt.setupOn(bag, useGlobalState=useGlobalState)

	want = {n: (w, ref.Quantized(np.zeros(w.size, np.float32), False)) for n, w in snapshot(bag).items()}
	rng = np.random.default_rng(9)
	for _ in range(4):
		grads = randomGrads(bag, rng)
		opt.update()
		for n, (p, ms) in want.items():
			wc = bag.getVar(n).wc
			g = (grads[n] - np.float32(0.1 * wc) * p).astype(np.float32) if wc > 0 else grads[n]
			want[n] = (ref.step(p, g, ms, None, None, 1e-2, 0.0, 0.9, 1e-5), ms)
	for n, (p, ms) in want.items():
		np.testing.assert_array_equal(bag.getVar(n).data.get(), p, err_msg=n)
		np.testing.assert_array_equal(opt.states["bag." + n]["ms"].codes.get(), ms.codes, err_msg=n)


def test_streams_path_equals_one_launch():
	"""Local state, update(useStreams=True) (one launch per variable, PuzzleLib's path): the same codes and params."""
	bags = [ParamBag(SPECS(np.float32), rng=np.random.default_rng(11)) for _ in range(2)]
	opts = [RMSProp(learnRate=1e-2, stateBits=8, momentum=0.5) for _ in range(2)]
	for bag, opt in zip(bags, opts):
		opt.setupOn(bag)
	for step in range(3):
		for bag, opt, streams in zip(bags, opts, (False, True)):
			randomGrads(bag, np.random.default_rng(step))
			opt.update(useStreams=streams)
	for name in bags[0].vars:
		np.testing.assert_array_equal(bags[1].getVar(name).data.get(), bags[0].getVar(name).data.get())
		for key in ("ms", "mom"):
			np.testing.assert_array_equal(opts[1].states["bag." + name][key].codes.get(), opts[0].states["bag." + name][key].codes.get())


def test_loose_arrays_are_checked_before_the_launch():
	"""quant8Update on arrays given directly: states that are not 8-bit, or of another size, are refused."""
	from puzzlelib_rmsprop.Backend import gpuarray
	from puzzlelib_rmsprop.Errors import OptimizerTypeError
	from puzzlelib_rmsprop.Kernels import Flavour, quant8Update
	from puzzlelib_rmsprop.Quantized8 import zeros
	param, grad = gpuarray.to_gpu(np.ones(300, np.float32)), gpuarray.to_gpu(np.ones(300, np.float32))
	with pytest.raises(OptimizerTypeError, match="must be QuantizedStates"):
		quant8Update(param, grad, gpuarray.zeros((300, ), np.uint8), None, None, 1e-3, 0.0, Flavour(0.9, 1e-5))
	with pytest.raises(OptimizerTypeError, match=r"float32\[300\], float32\[300\], uint8\[299\]"):
		quant8Update(param, grad, zeros((299, ), False), None, None, 1e-3, 0.0, Flavour(0.9, 1e-5))
	np.testing.assert_array_equal(param.get(), np.ones(300, np.float32))
	ms = zeros((300, ), False)
	quant8Update(param, grad, ms, None, None, 1e-3, 0.0, Flavour(0.9, 1e-5))
	assert ms.get().max() > 0 and not np.array_equal(param.get(), np.ones(300, np.float32))


def test_state_bytes(rng):
	"""Codes (1 byte an element) and one float32 scale per 256: about 0.26x of float32 state for big tensors."""
	sizes = {"a": 10000, "b": 3, "c": 700}
	for useGlobalState in (False, True):
		bag = ParamBag({n: ((s, ), np.float32) for n, s in sizes.items()}, rng=rng)
		full, bits8 = RMSProp(momentum=0.9), RMSProp(momentum=0.9, stateBits=8)
		full.setupOn(bag, useGlobalState=useGlobalState)
		bag8 = ParamBag({n: ((s, ), np.float32) for n, s in sizes.items()}, rng=rng)
		bits8.setupOn(bag8, useGlobalState=useGlobalState)
		if useGlobalState:  # every variable starts on a block: padded sizes
			padded = sum(-(-s // QUANT_BLOCK) * QUANT_BLOCK for s in sizes.values())
			assert bits8.stateNbytes == 2 * (padded + 4 * padded // QUANT_BLOCK)
		else:
			assert bits8.stateNbytes == 2 * sum(s + 4 * -(-s // QUANT_BLOCK) for s in sizes.values())
			assert full.stateNbytes == 2 * 4 * sum(sizes.values())

	big = ParamBag({"w": ((10 ** 6, ), np.float32)}, rng=rng)
	opt = RMSProp(stateBits=8)
	opt.setupOn(big, useGlobalState=True)
	assert opt.stateNbytes / (4 * 10 ** 6) <= 0.27


def test_options_are_checked():
	with pytest.raises(OptimizerError, match="stateBits must be None"):
		RMSProp(stateBits=4)
	with pytest.raises(OptimizerError, match="stateBits must be None"):
		RMSPropGraves(stateBits=True)
	with pytest.raises(OptimizerError, match="stateDtype or stateBits"):
		RMSProp(stateBits=8, stateDtype=np.float32)


def test_skip_non_finite_leaves_codes_alone(rng):
	bag = ParamBag({"w": ((300, ), np.float32)}, rng=rng)
	opt = RMSProp(stateBits=8, momentum=0.9, skipNonFinite=True)
	opt.setupOn(bag, useGlobalState=True)
	randomGrads(bag, rng)
	opt.update()
	before = {k: (s.codes.get(), s.scales.get()) for k, s in opt.states["bag.w"].items()}
	grad = bag.getVar("w").grad.get()
	grad[17] = np.inf
	bag.getVar("w").grad.set(grad)
	opt.update()
	assert opt.skippedSteps == 1
	for k, s in opt.states["bag.w"].items():
		np.testing.assert_array_equal(s.codes.get(), before[k][0])
		np.testing.assert_array_equal(s.scales.get(), before[k][1])


def trained(make, useGlobalState, steps, seed=0, bag=None):
	bag = bag or ParamBag({"a": ((300, 3), np.float32), "b": ((5, ), np.float32)}, rng=np.random.default_rng(seed))
	opt = make()
	opt.setupOn(bag, useGlobalState=useGlobalState)
	rng = np.random.default_rng(seed + 1)
	for _ in range(steps):
		randomGrads(bag, rng)
		opt.update()
	return bag, opt, rng


@pytest.mark.parametrize("saveGlobal, loadGlobal", [(True, False), (False, True), (True, True)])
def test_checkpoint_continues_exactly_across_modes(tmp_path, saveGlobal, loadGlobal):
	"""Saved as codes plus scales (tagged with their code), it continues bit for bit in either mode."""
	make = lambda: RMSProp(learnRate=1e-2, stateBits=8, momentum=0.9, centered=True)
	bag, opt, rng = trained(make, saveGlobal, 5)
	opt.save(str(tmp_path / "ck.hdf"))
	with h5py.File(tmp_path / "ck.hdf", "r") as f:
		ds = f[".states/bag.a.ms"]
		assert ds.dtype == np.uint8 and ds.shape == (300, 3) and ds.attrs["quant8"] == "ue5m3"
		assert f[".states/bag.a.mg"].attrs["quant8"] == "e4m3" and f[".states/bag.a.ms.scales"].shape == (4, )

	restored = ParamBag({"a": ((300, 3), np.float32), "b": ((5, ), np.float32)}, rng=np.random.default_rng(99))
	for name, var in bag.vars.items():
		restored.getVar(name).data.set(var.data.get())
	other = make()
	other.setupOn(restored, useGlobalState=loadGlobal)
	other.load(str(tmp_path / "ck.hdf"))

	for _ in range(3):
		grads = randomGrads(bag, rng)
		for name, g in grads.items():
			restored.getVar(name).grad.set(g)
		opt.update()
		other.update()
	for name in bag.vars:
		np.testing.assert_array_equal(restored.getVar(name).data.get(), bag.getVar(name).data.get())
		for key in opt.states["bag." + name]:
			np.testing.assert_array_equal(other.states["bag." + name][key].codes.get(), opt.states["bag." + name][key].codes.get())


@pytest.mark.parametrize("useGlobalState", [False, True])
def test_checkpoint_converts_between_8_and_32_bit_state(tmp_path, useGlobalState):
	"""An 8-bit checkpoint loads into a float32-state optimizer (decoded), and a float32 one into an 8-bit
	optimizer (encoded: equal to the reference's codes of those values)."""
	make8 = lambda: RMSProp(stateBits=8, momentum=0.9)
	make32 = lambda: RMSProp(momentum=0.9)
	_, opt8, _ = trained(make8, not useGlobalState, 4)
	opt8.save(str(tmp_path / "8.hdf"))
	_, opt32, _ = trained(make32, not useGlobalState, 4)
	opt32.save(str(tmp_path / "32.hdf"))

	_, into32, _ = trained(make32, useGlobalState, 1, seed=3)
	into32.load(str(tmp_path / "8.hdf"))
	_, into8, _ = trained(make8, useGlobalState, 1, seed=3)
	into8.load(str(tmp_path / "32.hdf"))

	for name in opt8.states:
		for key in ("ms", "mom"):
			decoded = opt8.states[name][key]
			np.testing.assert_array_equal(into32.states[name][key].get(), ref.decode(decoded.codes.get(), decoded.scales.get(), key != "ms").reshape(decoded.shape))
			codes, scales = ref.encode(opt32.states[name][key].get(), key != "ms")
			np.testing.assert_array_equal(into8.states[name][key].codes.get(), codes)
			np.testing.assert_array_equal(into8.states[name][key].scales.get(), scales)
	assert into8.t == into32.t == 4


def test_damaged_8_bit_checkpoint_changes_nothing(tmp_path):
	make = lambda: RMSProp(stateBits=8)
	_, opt, _ = trained(make, True, 3)
	opt.save(str(tmp_path / "ck.hdf"))
	with h5py.File(tmp_path / "ck.hdf", "a") as f:
		del f[".states/bag.a.ms.scales"]
		f[".states/bag.a.ms.scales"] = np.zeros(3, np.float32)
		f[".states/bag.b.ms"].attrs["quant8"] = "e9m9"

	_, other, _ = trained(make, True, 2, seed=5)
	before = {n: (s["ms"].codes.get(), s["ms"].scales.get()) for n, s in other.states.items()}
	with pytest.raises(OptimizerError) as info:
		other.load(str(tmp_path / "ck.hdf"))
	assert "'bag.a.ms': its 900 codes need bag.a.ms.scales, float32 of (4,)" in str(info.value)
	assert "'bag.b.ms': 8-bit codes of an unknown kind (e9m9" in str(info.value)
	assert other.t == 2
	for n, s in other.states.items():
		np.testing.assert_array_equal(s["ms"].codes.get(), before[n][0])
		np.testing.assert_array_equal(s["ms"].scales.get(), before[n][1])
