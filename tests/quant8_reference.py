"""An independent NumPy reference for 8-bit state (stateBits=8), written from the format's definition, not from
kernels/quantize8.h: the unsigned E5M3 codes as a table of their values searched for the nearest (ties to the even
code), the signed E4M3 codes through ml_dtypes' float8_e4m3fn; block scales from the block's largest |value|."""
import ml_dtypes
import numpy as np

from reference import flavourStep

BLOCK = 256
#: centered variance floor of 8-bit state, relative to ms (QUANT8_VARIANCE_FLOOR)
VARIANCE_FLOOR = 1.0 / 32
FLOAT_MAX = np.float32(np.finfo(np.float32).max)
_e, _m = np.arange(256) >> 3, np.arange(256) & 7
#: the value of every unsigned code: 2^-17 * m for exponent 0, (1 + m / 8) * 2^(e - 15) otherwise
UNSIGNED_VALUES = np.where(_e == 0, _m * 2.0 ** -17, (1 + _m / 8) * 2.0 ** (_e - 15))
MAX = {False: np.float32(UNSIGNED_VALUES[-1]), True: np.float32(448.0)}


def _blocks(x):
	x = np.asarray(x, np.float32).reshape(-1)
	padded = np.zeros(-(-x.size // BLOCK) * BLOCK, np.float32)
	padded[:x.size] = x
	return x, padded.reshape(-1, BLOCK)


def _nearestUnsigned(y):
	"""The nearest code to each y >= 0 (float64 search of the table), ties to the even code, saturating."""
	y = y.astype(np.float64)
	hi = np.clip(np.searchsorted(UNSIGNED_VALUES, y), 0, 255)
	lo = np.clip(hi - 1, 0, 255)
	dLo, dHi = y - UNSIGNED_VALUES[lo], UNSIGNED_VALUES[hi] - y
	codes = np.where(dLo < dHi, lo, np.where(dHi < dLo, hi, np.where(lo % 2 == 0, lo, hi)))
	return np.where(np.isnan(y) | (y >= UNSIGNED_VALUES[-1]), 255, codes).astype(np.uint8)


def _nearestSigned(y):
	"""float8_e4m3fn's rounding of y (saturated to +-448 first; NaN to the largest code with its sign)."""
	sign = (y.view(np.uint32) >> 24 & 0x80).astype(np.uint8)
	codes = np.clip(np.nan_to_num(y, nan=0.0), -448, 448).astype(ml_dtypes.float8_e4m3fn).view(np.uint8)
	return np.where(np.isnan(y), sign | 0x7e, codes).astype(np.uint8)


def encode(x, signed):
	"""(codes, scales) of x: per block scale = absmax / MAX (absmax over the float bits, so a NaN wins), codes of
	|x| * min(MAX / absmax, FLT_MAX) (0 for an all-zero block)."""
	x, blocks = _blocks(x)
	with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
		absmax = (blocks.view(np.uint32) & 0x7fffffff).max(axis=1).view(np.float32)
		scales = (absmax / MAX[signed]).astype(np.float32)
		inverse = np.where(absmax > 0, np.minimum(MAX[signed] / absmax, FLOAT_MAX), np.float32(0)).astype(np.float32)
		y = (np.abs(blocks) * inverse[:, None]).astype(np.float32)
	if signed:
		y = np.where(blocks.view(np.uint32) >> 31 == 1, -y, y).astype(np.float32)
		codes = _nearestSigned(y)
	else:
		codes = _nearestUnsigned(y)
	return codes.reshape(-1)[:x.size], scales


def decode(codes, scales, signed):
	codes = np.asarray(codes, np.uint8).reshape(-1)
	blocksOfCodes = np.repeat(np.asarray(scales, np.float32), BLOCK)[:codes.size]
	if signed:
		values = codes.view(ml_dtypes.float8_e4m3fn).astype(np.float32)
	else:
		values = UNSIGNED_VALUES[codes].astype(np.float32)
	return (values * blocksOfCodes).astype(np.float32)


class Quantized:
	"""The reference's copy of one 8-bit state tensor."""

	def __init__(self, values, signed):
		self.signed = signed
		self.codes, self.scales = encode(values, signed)

	def values(self):
		return decode(self.codes, self.scales, self.signed)


def step(param, grad, ms, mg, mom, learnRate, momentum, factor, epsilon, **options):
	"""One update with 8-bit states (Quantized; mg and mom may be None): decode, reference.flavourStep in float32,
	encode with the new block scales. Returns the new param; the states are updated in place."""
	shape = param.shape
	flat = lambda a: None if a is None else a.values()
	p, m, a, d = flavourStep(param.reshape(-1), grad.reshape(-1), flat(ms), flat(mg), flat(mom), learnRate, momentum,
							 factor, epsilon, varianceFloor=VARIANCE_FLOOR, **options)
	for state, new in ((ms, m), (mg, a), (mom, d)):
		if state is not None:
			state.codes, state.scales = encode(new, state.signed)
	return p.reshape(shape)
