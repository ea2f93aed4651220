/* float16 <-> float32 on the host, round to nearest even like NumPy and CUDA's __float2half_rn.
 * The compiler's _Float16 where it has one; a bit-exact software fallback otherwise
 * (PUZZLELIB_RMSPROP_SOFT_HALF forces it, so the tests can check it against NumPy). */
#ifndef PUZZLELIB_RMSPROP_HALF_HOST_H
#define PUZZLELIB_RMSPROP_HALF_HOST_H

#include <stdint.h>
#include <string.h>

#if defined(__FLT16_MANT_DIG__) && !defined(PUZZLELIB_RMSPROP_SOFT_HALF)

typedef _Float16 half_t;
static inline float halfToFloat(half_t h) { return (float)h; }
static inline half_t floatToHalf(float f) { return (half_t)f; }

#else

typedef uint16_t half_t;

static inline float halfToFloat(half_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
	if (exp == 0x1f)
		bits = sign | 0x7f800000 | (mant << 13);
	else if (exp != 0)
		bits = sign | ((exp + 112) << 23) | (mant << 13);
	else if (mant == 0)
		bits = sign;
	else
	{
		/* subnormal: normalise the mantissa */
		exp = 113;
		while (!(mant & 0x400)) { mant <<= 1; exp--; }
		bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
	}
	float f;
	memcpy(&f, &bits, sizeof(f));
	return f;
}

static inline half_t floatToHalf(float f)
{
	uint32_t bits;
	memcpy(&bits, &f, sizeof(bits));
	uint32_t sign = (bits >> 16) & 0x8000, absBits = bits & 0x7fffffff;
	if (absBits >= 0x7f800000)  /* inf or nan */
		return (half_t)(sign | 0x7c00 | (absBits > 0x7f800000 ? 0x200 : 0));
	if (absBits >= 0x477ff000)  /* rounds to >= 65520: overflow */
		return (half_t)(sign | 0x7c00);
	if (absBits < 0x38800000)   /* below the smallest normal: add 0.5 so the FPU rounds the subnormal */
	{
		float a;
		memcpy(&a, &absBits, sizeof(a));
		a += 0.5f;
		uint32_t r;
		memcpy(&r, &a, sizeof(r));
		return (half_t)(sign | (r - 0x3f000000));
	}
	uint32_t odd = (absBits >> 13) & 1;
	absBits += 0xc8000fff + odd;  /* rebias the exponent and round to nearest even */
	return (half_t)(sign | (absBits >> 13));
}

#endif

/* bfloat16: the top half of a float32, round to nearest even (NaNs stay NaN, quieted). Always software. */
typedef uint16_t bf16_t;

static inline float bf16ToFloat(bf16_t b)
{
	uint32_t bits = (uint32_t)b << 16;
	float f;
	memcpy(&f, &bits, sizeof(f));
	return f;
}

static inline bf16_t floatToBf16(float f)
{
	uint32_t bits;
	memcpy(&bits, &f, sizeof(bits));
	if ((bits & 0x7fffffffu) > 0x7f800000u)
		return (bf16_t)((bits >> 16) | 0x0040u);
	return (bf16_t)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

#endif
