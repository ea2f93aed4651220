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
A biased rounding or a lost term adds up linearly in n and breaks it on the long run."""
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
	"""Bounds of ms8 / ms64 for 8-bit state, whatever the gradients. With r the ratio of the ms a step uses
	(m8 = factor * Q(m8') + (1 - factor) g^2, Q within 1 +- delta) to the exact ms, r' is a weighted mean of
	(1 +- delta) r and 1, with weight at most ``factor`` on the first: r stays within [R_lo, R_hi], the fixed
	points (1 - factor) / (1 - factor (1 -+ delta)); the stored (decoded) ms adds one more (1 +- delta)."""
	low = (1 - factor) / (1 - factor * (1 - delta))
	high = (1 - factor) / (1 - factor * (1 + delta))
	return low * (1 - delta), high * (1 + delta), low, high


def soak8(steps: int, size: int = 1000, useGlobalState: bool = True, seed: int = 0) -> dict:
	"""The soak with stateBits=8, on the same gradients as float64 RMSProp. Derived bounds, checked every step:
	the decoded ms within msRatioBounds() of float64's, elementwise; and since a step with ms r times the exact
	one is lr g / (sqrt(r ms) + eps), within a factor 1/sqrt(R_hi)..1/sqrt(R_lo) of the exact step, each
	parameter within kappa * sum |exact steps| of float64's, kappa = max(1/sqrt(R_lo) - 1, 1 - 1/sqrt(R_hi)).
	Worst cases (every rounding one way, every step); the measured values are far inside (README)."""
	rng = np.random.default_rng(seed)
	bag = ParamBag({"w": ((size, ), np.float32)}, rng=rng)
	opt = RMSProp(learnRate=LEARN_RATE, factor=FACTOR, epsilon=EPSILON, stateBits=8)
	opt.setupOn(bag, useGlobalState=useGlobalState)
	var, ms8 = bag.getVar("w"), opt.states["bag.w"]["ms"]
	ratioLow, ratioHigh, low, high = msRatioBounds()
	kappa = max(1 / np.sqrt(low) - 1, 1 - 1 / np.sqrt(high))

	stepSum, worstError, worstMargin, ratios = np.zeros(size), 0.0, 0.0, [np.inf, 0.0]
	for p64, ms64, exact in float64Twin(opt, var, steps, rng):
		stepSum += np.abs(exact)
		error = np.abs(var.data.get() - p64)
		worstError = max(worstError, float(error.max()))
		worstMargin = max(worstMargin, float((error / (kappa * stepSum + 1e-6)).max()))
		ratio = ms8.get() / ms64
		ratios = [min(ratios[0], float(ratio.min())), max(ratios[1], float(ratio.max()))]

	return {"steps": steps, "maxAbsError": worstError, "errorOverBound": worstMargin, "kappa": float(kappa),
			"msRatio": ratios, "msRatioBounds": [ratioLow, ratioHigh], "maxAbsParam": float(np.abs(p64).max())}


def main():
	parser = argparse.ArgumentParser(description=__doc__)
	parser.add_argument("--steps", type=int, default=100_000)
	parser.add_argument("--state-bits", type=int, choices=[8], default=None, help="the 8-bit state soak")
	args = parser.parse_args()
	if args.state_bits == 8:
		result = soak8(args.steps)
		print(json.dumps(result))
		sys.exit(0 if result["errorOverBound"] <= 1 and result["msRatioBounds"][0] <= result["msRatio"][0]
				 and result["msRatio"][1] <= result["msRatioBounds"][1] else 1)
	result = soak(args.steps)
	print(json.dumps(result))
	sys.exit(0 if result["maxAbsError"] <= result["bound"] else 1)


if __name__ == "__main__":
	main()
