"""Soak: many RMSProp steps in float32 (our kernels) against the same steps in float64 (NumPy), on the same
float32 gradients. ``python tests/soak.py --steps 100000`` is the long run; tests/test_soak.py runs a short one.

The error bound (docs/tolerances.md). Both sides take the same float32 gradient at every step, so nothing feeds the
difference back: after n steps it is the sum of the n steps' own errors. Each is the rounding of the new param to
float32 (at most half an ulp of the largest |param|) plus the float32 step's error (ms in float32 is an exponential
average, so its relative error stays within a few float32 ulp; with the division and the square root, at most
STEP_ULPS ulp of a step, and a step is at most lr / sqrt(1 - factor)): c = ulp(max |p|) / 2 + STEP_ULPS * 2^-24 *
lr / sqrt(1 - factor). Round to nearest makes them zero-mean, so by Hoeffding's maximal inequality the largest
difference over the n steps exceeds c * sqrt(2 n ln(4 / ALPHA)) with probability at most ALPHA = 1e-9. That bound
grows as sqrt(n): 5.7e-5 at 5,000 steps; measured on 2026-11-25: 4.9e-6 over 5,000 steps and 5.2e-6 over 100,000.
A biased rounding or a lost term adds up linearly in n and breaks it on the long run.

soak8() is the 8-bit state's soak, with its own gradients, restoring force and bound (derived there);
``python tests/soak.py --state-bits 8 --steps N`` runs it in both state modes."""
import argparse
import json
import os
import sys

import numpy as np

os.environ.setdefault("PUZZLELIB_RMSPROP_BACKEND", "cpu")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from conftest import ParamBag  # noqa: E402
from puzzlelib_rmsprop import RMSProp  # noqa: E402

LEARN_RATE, FACTOR, EPSILON = 1e-3, 0.9, 1e-5


#: ulps of a step the float32 step may be off by (ms's accumulated rounding, the division, the square root)
STEP_ULPS = 8
#: the probability that a correct kernel exceeds the bound
ALPHA = 1e-9


def bound(steps: int, maxAbsParam: float) -> float:
	"""Hoeffding's bound on the largest |param32 - param64| over ``steps`` steps: see the module's docstring."""
	perStep = float(np.spacing(np.float32(maxAbsParam))) / 2 + STEP_ULPS * 2.0 ** -24 * LEARN_RATE / np.sqrt(1 - FACTOR)
	return perStep * float(np.sqrt(2 * steps * np.log(4 / ALPHA)))


def soak(steps: int, size: int = 1000, useGlobalState: bool = True, seed: int = 0) -> dict:
	rng = np.random.default_rng(seed)
	bag = ParamBag({"w": ((size, ), np.float32)}, rng=rng)
	opt = RMSProp(learnRate=LEARN_RATE, factor=FACTOR, epsilon=EPSILON)
	opt.setupOn(bag, useGlobalState=useGlobalState)
	var = bag.getVar("w")

	worst, largest = 0.0, float(np.abs(var.data.get()).max())
	for p64, _, _ in float64Twin(opt, var, steps, rng):
		worst = max(worst, float(np.abs(var.data.get() - p64).max()))
		largest = max(largest, float(np.abs(p64).max()))

	return {"steps": steps, "maxAbsError": worst, "bound": bound(steps, largest), "maxAbsParam": largest}


def float64Twin(opt, var, steps: int, rng):
	"""Trains ``var`` with ``opt`` and the same steps in float64 on the same float32 gradients; yields, after each
	step, float64's (param, ms, step taken)."""
	size = var.data.size
	p64, ms64 = var.data.get().astype(np.float64), np.zeros(size)
	for step in range(steps):
		# a drifting target keeps the parameters bounded: grad points back towards it, plus noise
		g = (0.5 * np.sin(step / 500.0) - var.data.get() + rng.standard_normal(size)).astype(np.float32)
		var.grad.set(g)
		opt.update()

		g64 = g.astype(np.float64)
		ms64 = FACTOR * ms64 + (1 - FACTOR) * g64 * g64
		exact = LEARN_RATE * g64 / (np.sqrt(ms64) + EPSILON)
		p64 = p64 + exact
		yield p64, ms64, exact


#: 8-bit state: a value in its block's normal range is stored within 1/16 of itself (3 mantissa bits, to nearest)
QUANT_ERROR = 1.0 / 16


def msRatioBounds(factor: float = FACTOR, delta: float = QUANT_ERROR):
	"""Bounds of ms8 / ms64 for 8-bit state. With r the ratio of the ms a step uses (m8 = factor * Q(m8') +
	(1 - factor) g^2, Q within 1 +- delta) to the exact ms, r' = w (1 +- delta) r + (1 - w), w = factor ms' / ms
	the exact old ms's weight in the new one: r stays within [R_lo, R_hi], the fixed points
	(1 - factor) / (1 - factor (1 -+ delta)), as long as w <= factor, that is g^2 >= the old ms; the stored (decoded)
	ms adds one more (1 +- delta). Not whatever the gradients: where g^2 stays far below ms, w nears 1 and nothing
	here stops the roundings compounding (150 steps of g = 0 under a block maximum that stays take the ratio to
	2.6). The soak checks these bounds at every step and element; its gradients stay far inside them."""
	low = (1 - factor) / (1 - factor * (1 - delta))
	high = (1 - factor) / (1 - factor * (1 + delta))
	return low * (1 - delta), high * (1 + delta), low, high


#: the 8-bit soak's decay: after each update both sides keep KEEP of their params (decoupled weight decay, by the soak)
KEEP = np.float32(1 - 0.01)


def stepKappa(ratioLow: float, ratioHigh: float) -> float:
	"""The largest |step8 / step64 - 1| while the stored ms is within [ratioLow, ratioHigh] of the exact one: see
	soak8()."""
	root = max(1 / np.sqrt(ratioLow) - 1, 1 - 1 / np.sqrt(ratioHigh))
	return float(root + (1 + root) * STEP_ULPS * 2.0 ** -24)


def rounding8(largest: float) -> float:
	"""Two float32 roundings (the update, the decay) and two float64 ones of params within ``largest``."""
	return float(np.spacing(np.float32(largest))) + float(np.spacing(np.float64(largest)))


def bound8(kappa: float) -> float:
	"""soak8()'s bound for any number of steps: the running bound's fixed point with the largest exact step."""
	keep, step = float(KEEP), LEARN_RATE / np.sqrt(1 - FACTOR)
	largest = (1 + kappa) * step / (1 - keep)
	return (keep * kappa * step + rounding8(largest)) / (1 - keep)


def soak8(steps: int, size: int = 1000, useGlobalState: bool = True, seed: int = 0) -> dict:
	"""The soak with stateBits=8 against float64 RMSProp on the same float32 gradients, with a restoring force so
	that the parameters' difference has a bound independent of the number of steps. Checked every step, elementwise:

	- the decoded ms within msRatioBounds() of float64's, [R0, R1] = [0.600, 2.429];
	- |param8 - param64| <= B, a running bound derived from that check, below bound8() = 0.1122 at any step count.

	The model. Each element i has an amplitude a_i (log-uniform over two decades, so a block's ms spans up to 18.5
	binades of its codes) and a phase; g = a_i (1.5 + sin(t / 500 + phase_i) + 0.4 u) with u uniform in [-1, 1], in
	float32, given to both sides. It is positive, so every step's error has the sign of a codec's bias and nothing
	cancels it; its magnitude varies 29-fold over time (never near 0: ms stays in the codes' normal range). Both
	sides start at 0 and, after each update, multiply their params by KEEP = float32(0.99) (decoupled weight decay,
	AdamW's, applied by the soak): a fixed contraction that does not go through the 8-bit denominators, so old errors
	are forgotten at a known rate. (A pull through the gradient, g = target - p, would contract by lr / (sqrt(ms8) +
	eps) per step: a rate set by the codec under test and by the noise, and no longer a geometric sum.)

	The bound. Let d = param8 - param64 after a step. The 8-bit step uses ms = factor Q(ms') + (1 - factor) g^2, a
	weighted mean of the stored old ms (within [R0, R1] of the exact old one, checked at the step before) and of
	the exact terms, so its ratio to float64's ms is in [R0, R1] too; with s = sqrt(ms) + eps, s64 / s8 is then
	within [1 / sqrt(R1), 1 / sqrt(R0)], and with STEP_ULPS float32 ulps for the step's own arithmetic,
	|step8 - step64| <= kappa |step64|, kappa = stepKappa(R0, R1) = 0.3583. The update and the decay each round to
	float32 (half an ulp of the largest param P, each) and to float64 on the twin (half a float64 ulp, each). So
	|d'| <= KEEP (|d| + kappa |step64|) + ulp32(P) + ulp64(P) =: B', from B = 0 (no probability: a worst case,
	every rounding one way). Since |step64| <= lr |g| / sqrt((1 - factor) g^2) = lr / sqrt(1 - factor) and P <=
	(1 + kappa) lr / sqrt(1 - factor) / (1 - KEEP) = 0.43, B never exceeds its fixed point
	(KEEP kappa lr / sqrt(1 - factor) + ulp32(0.43) + ulp64(0.43)) / (1 - KEEP) = 0.1122 (bound8()), whatever the
	number of steps. In this run the steps are about lr, so B stays near 0.036 while the params reach 0.1.

	A codec whose steps are off by more than kappa in one direction over the last 1 / (1 - KEEP) = 100 steps or so
	(weighted by KEEP^age; an ms above 2.43 or below 0.54 times the exact one) breaks the parameter bound, and one
	whose stored ms leaves [R0, R1] at any step breaks the ms check: rounding always up, or decoding 1.1 times too
	large, break both; rounding always down breaks the ms check (docs/tolerances.md)."""
	rng = np.random.default_rng(seed)
	bag = ParamBag({"w": ((size, ), np.float32)}, rng=rng)
	opt = RMSProp(learnRate=LEARN_RATE, factor=FACTOR, epsilon=EPSILON, stateBits=8)
	opt.setupOn(bag, useGlobalState=useGlobalState)
	var, ms8 = bag.getVar("w"), opt.states["bag.w"]["ms"]
	var.data.set(np.zeros(size, np.float32))
	amplitude, phase = 10.0 ** rng.uniform(-2, 0, size), rng.uniform(0, 2 * np.pi, size)
	ratioLow, ratioHigh, _, _ = msRatioBounds()
	kappa, keep = stepKappa(ratioLow, ratioHigh), float(KEEP)

	p64, ms64, bound = np.zeros(size), np.zeros(size), np.zeros(size)
	worstError, worstMargin, largestBound, ratios = 0.0, 0.0, 0.0, [np.inf, 0.0]
	for step in range(steps):
		g = (amplitude * (1.5 + np.sin(step / 500.0 + phase) + 0.4 * rng.uniform(-1, 1, size))).astype(np.float32)
		var.grad.set(g)
		opt.update()

		g64 = g.astype(np.float64)
		ms64 = FACTOR * ms64 + (1 - FACTOR) * g64 * g64
		exact = LEARN_RATE * g64 / (np.sqrt(ms64) + EPSILON)
		p8, p64 = var.data.get(), p64 + exact
		largest = max(float(np.abs(p8).max()), float(np.abs(p64).max()))
		var.data.set(KEEP * p8)
		p64 = keep * p64
		bound = keep * (bound + kappa * np.abs(exact)) + rounding8(largest)

		error = np.abs(var.data.get() - p64)
		worstError = max(worstError, float(error.max()))
		worstMargin = max(worstMargin, float((error / bound).max()))
		largestBound = max(largestBound, float(bound.max()))
		ratio = ms8.get() / ms64
		ratios = [min(ratios[0], float(ratio.min())), max(ratios[1], float(ratio.max()))]

	return {"steps": steps, "useGlobalState": useGlobalState, "maxAbsError": worstError, "errorOverBound": worstMargin,
			"largestBound": largestBound, "bound": bound8(kappa), "kappa": kappa, "msRatio": ratios,
			"msRatioBounds": [ratioLow, ratioHigh], "maxAbsParam": float(np.abs(p64).max())}


def soak8Passes(result: dict) -> bool:
	"""Every check of soak8(): the ms ratio within its bounds, each param within its running bound, below bound8()."""
	return (result["msRatioBounds"][0] <= result["msRatio"][0] <= result["msRatio"][1] <= result["msRatioBounds"][1]
			and 0 < result["errorOverBound"] <= 1 and result["largestBound"] <= result["bound"])


def main():
	parser = argparse.ArgumentParser(description=__doc__)
	parser.add_argument("--steps", type=int, default=100_000)
	parser.add_argument("--state-bits", type=int, choices=[8], default=None, help="the 8-bit state soak, both state modes")
	args = parser.parse_args()
	if args.state_bits == 8:
		results = [soak8(args.steps, useGlobalState=mode) for mode in (True, False)]
		for result in results:
			print(json.dumps(result))
		sys.exit(0 if all(soak8Passes(result) for result in results) else 1)
	result = soak(args.steps)
	print(json.dumps(result))
	sys.exit(0 if result["maxAbsError"] <= result["bound"] else 1)


if __name__ == "__main__":
	main()
