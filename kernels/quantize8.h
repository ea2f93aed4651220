/* 8-bit blockwise optimizer state (stateBits=8): the per-element codes, for every backend.
 *
 * A state tensor is cut into blocks of QUANT8_BLOCK elements; each block keeps one float32 scale and one 8-bit
 * code per element: value = decode(code) * scale. After each update the block's scale is recomputed from the
 * new values' absolute maximum, so the largest one lands on the top code (bitsandbytes' blockwise absmax idea).
 *
 * The codes are small floats, decoded and encoded with integer operations (no table, no search), so the host
 * loop vectorizes and a GPU thread does a handful of ALU operations per element:
 *   ms (non-negative, spans many orders of magnitude): unsigned E5M3 (bias 15, subnormals, no inf/NaN),
 *      largest 1.875 * 2^16 = 122880, smallest 2^-17: a block covers 34 binades, 3 mantissa bits;
 *   mg, mom (signed): E4M3 as OCP's float8_e4m3fn (bias 7, subnormals, largest 448), saturating, never NaN.
 * Rounding is to nearest, ties to even; values past the largest code saturate to it.
 */
#ifndef PUZZLELIB_RMSPROP_QUANTIZE8_H
#define PUZZLELIB_RMSPROP_QUANTIZE8_H

#include "rmsprop_update.h"

#ifdef __CUDACC__
#define QUANT8_QUALIFIER __host__ __device__ __forceinline__
#define QUANT8_AS_UINT(x) __float_as_uint(x)
#define QUANT8_AS_FLOAT(x) __uint_as_float(x)
#else
#include <math.h>
#include <stdint.h>
#include <string.h>
#define QUANT8_QUALIFIER static inline
static inline unsigned int quant8AsUint(float f) { unsigned int u; memcpy(&u, &f, sizeof(u)); return u; }
static inline float quant8AsFloat(unsigned int u) { float f; memcpy(&f, &u, sizeof(f)); return f; }
#define QUANT8_AS_UINT(x) quant8AsUint(x)
#define QUANT8_AS_FLOAT(x) quant8AsFloat(x)
#endif

#define QUANT8_BLOCK 256

/* Centered flavours: ms and mg are each stored within 1/16, so ms - mg^2 is known to about +-3/16 of ms; where the
   variance is smaller the codes cannot tell it from 0 or a negative, and without a floor the denominators go to 0
   or NaN (the digits classifier of tests/test_Quantized8_training.py diverged). With 8-bit state the variance is
   floored at ms / 32 (denominator >= sqrt(ms) / 5.7): on the digits, ms / 16 cost 1.1 points, ms / 32 0.4. */
#define QUANT8_VARIANCE_FLOOR 0.03125f

/* The 8-bit policy, the one place every backend takes it from: a row's flavour as its states allow (no mg: not
   centered; no mom: no momentum; either: not PuzzleLib's plain update), the centered variance floored. */
QUANT8_QUALIFIER RMSPropFlavour quant8Flavour(RMSPropFlavour f, int hasMg, int hasMom)
{
	f.centered = hasMg;
	f.momentumMode = hasMom ? f.momentumMode : MOMENTUM_NONE;
	f.plain = f.plain && !hasMg && !hasMom;
	f.varianceFloor = QUANT8_VARIANCE_FLOOR;
	return f;
}

/* The code of state k (0 ms, 1 mg, 2 mom): ms is never negative (unsigned E5M3), mg and mom are signed (E4M3). */
#define QUANT8_SIGNED(k) ((k) != 0)

/* unsigned E5M3 (ms) and signed E4M3 (mg, mom): exponent bias, largest magnitude code, its value */
#define QUANT8_UNSIGNED_BIAS 15
#define QUANT8_UNSIGNED_MAX_CODE 255u
#define QUANT8_UNSIGNED_MAX 122880.0f
#define QUANT8_SIGNED_BIAS 7
#define QUANT8_SIGNED_MAX_CODE 126u
#define QUANT8_SIGNED_MAX 448.0f

QUANT8_QUALIFIER float quant8MaxValue(int isSigned)
{
	return isSigned ? QUANT8_SIGNED_MAX : QUANT8_UNSIGNED_MAX;
}

/* The magnitude of a code (3 mantissa bits): subnormal m * 2^(-2 - bias) when the exponent field e is 0. The
   fields e and m sit at float32's exponent and top mantissa bits when the code is shifted by 20 (e << 23 | m << 20 is
   code << 20), so a normal code is that plus the exponents' bias difference; a subnormal code is m itself. */
QUANT8_QUALIFIER float quant8DecodeMagnitude(unsigned int code, int bias)
{
	float normal = QUANT8_AS_FLOAT((code << 20) + ((127u - (unsigned int)bias) << 23));
	/* (int): gcc then widens the code to 32 bits once, for both */
	float subnormal = (float)(int)code * QUANT8_AS_FLOAT((unsigned int)(127 - 2 - bias) << 23);
	return code >= 8u ? normal : subnormal;
}

/* The nearest code to y >= 0 (ties to even), saturating at maxCode; NaN saturates too. Normal codes: the mantissa
   rounded to 3 bits on the float bits (ties to even), the exponents' bias difference taken off before the shift.
   Below the smallest normal code, 2^(1 - bias), the code is y in units of the subnormal step 2^(-2 - bias): adding
   2^(21 - bias), whose float32 ulp is that step, rounds y to a multiple of it as rintf(y * 2^(2 + bias)) would, and
   the sum's low bits are the code: an add and a subtract where that took a multiply, a rounding and a conversion.
   The same codes as the rintf formula for every non-negative float and NaN, in each rounding mode and with
   denormals-are-zero (checked exhaustively: benchmarks/2026-12-02-cpu-8bit/codec_check.c). */
QUANT8_QUALIFIER unsigned int quant8EncodeMagnitude(float y, int bias, unsigned int maxCode)
{
	unsigned int bits = QUANT8_AS_UINT(y);
	unsigned int normal = (bits + (0x7ffffu - ((127u - (unsigned int)bias) << 23)) + ((bits >> 20) & 1u)) >> 20;
	normal = normal < maxCode ? normal : maxCode;
	unsigned int magic = (unsigned int)(127 + 21 - bias) << 23;
	unsigned int subnormal = QUANT8_AS_UINT(y + QUANT8_AS_FLOAT(magic)) - magic;
	return y < QUANT8_AS_FLOAT((unsigned int)(128 - bias) << 23) ? subnormal : normal;
}

/* The value of a code in a block of scale ``scale``. */
QUANT8_QUALIFIER float quant8Decode(unsigned int code, float scale, int isSigned)
{
	if (!isSigned)
		return quant8DecodeMagnitude(code, QUANT8_UNSIGNED_BIAS) * scale;
	float magnitude = quant8DecodeMagnitude(code & 0x7fu, QUANT8_SIGNED_BIAS) * scale;
	return (code & 0x80u) ? -magnitude : magnitude;
}

/* The scale stored for a block whose largest absolute value is absmax: the top code then decodes to absmax. */
QUANT8_QUALIFIER float quant8Scale(float absmax, int isSigned)
{
	return absmax / quant8MaxValue(isSigned);
}

/* What encode multiplies by: max / absmax, 0 for an all-zero block, capped where absmax is denormal-tiny. */
QUANT8_QUALIFIER float quant8Inverse(float absmax, int isSigned)
{
	float inverse = quant8MaxValue(isSigned) / absmax;
	inverse = inverse < 3.4028234663852886e38f ? inverse : 3.4028234663852886e38f;
	return absmax > 0.0f ? inverse : 0.0f;
}

/* The code of x in a block whose quant8Inverse is ``inverse`` (ms is never negative, so unsigned ignores signs). */
QUANT8_QUALIFIER unsigned int quant8Encode(float x, float inverse, int isSigned)
{
	if (!isSigned)
		return quant8EncodeMagnitude(fabsf(x) * inverse, QUANT8_UNSIGNED_BIAS, QUANT8_UNSIGNED_MAX_CODE);
	unsigned int magnitude = quant8EncodeMagnitude(fabsf(x) * inverse, QUANT8_SIGNED_BIAS, QUANT8_SIGNED_MAX_CODE);
	return (QUANT8_AS_UINT(x) >> 24 & 0x80u) | magnitude;
}

#endif
