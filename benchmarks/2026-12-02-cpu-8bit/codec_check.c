/* One-off check, no part of the build: kernels/quantize8.h's codec against its formulas of 2026-12-01 (commit 66bc8d2,
 * copied below), which computed the exponent and mantissa fields apart and the subnormal codes with rintf. Decoding:
 * every code of both formats; encoding: every y = fabsf(x) * inverse the kernels can give (every non-negative float,
 * and the NaNs of either sign), both formats, in the four rounding modes, without and with FTZ and DAZ. Prints the
 * mismatches (none expected) and exits 1 on any.
 *   gcc -O2 -frounding-math -std=c11 -I kernels benchmarks/2026-12-02-cpu-8bit/codec_check.c -lm -o /tmp/codec_check
 */
#include <fenv.h>
#include <math.h>
#include <stdio.h>
#include <xmmintrin.h>

#include "quantize8.h"

static float oldDecodeMagnitude(unsigned int code, int bias)
{
	unsigned int e = code >> 3, m = code & 7u;
	float normal = quant8AsFloat(((e + 127u - (unsigned int)bias) << 23) | (m << 20));
	float subnormal = (float)m * quant8AsFloat((unsigned int)(127 - 2 - bias) << 23);
	return e != 0u ? normal : subnormal;
}

static unsigned int oldEncodeMagnitude(float y, int bias, unsigned int maxCode)
{
	unsigned int bits = quant8AsUint(y);
	unsigned int rounded = bits + 0x7ffffu + ((bits >> 20) & 1u);
	unsigned int normal = (rounded >> 20) - ((127u - (unsigned int)bias) << 3);
	normal = normal < maxCode ? normal : maxCode;
	unsigned int subnormal = (unsigned int)rintf(y * quant8AsFloat((unsigned int)(127 + 2 + bias) << 23));
	return y < quant8AsFloat((unsigned int)(128 - bias) << 23) ? subnormal : normal;
}

int main(void)
{
	static const int modes[] = {FE_TONEAREST, FE_UPWARD, FE_DOWNWARD, FE_TOWARDZERO};
	static const char *modeNames[] = {"to nearest", "upward", "downward", "toward zero"};
	const unsigned int csr = _mm_getcsr();
	long long bad = 0;

	for (int isSigned = 0; isSigned < 2; isSigned++)
	{
		int bias = isSigned ? QUANT8_SIGNED_BIAS : QUANT8_UNSIGNED_BIAS;
		unsigned int maxCode = isSigned ? QUANT8_SIGNED_MAX_CODE : QUANT8_UNSIGNED_MAX_CODE;
		for (unsigned int code = 0; code < (isSigned ? 128u : 256u); code++)
		{
			float got = quant8DecodeMagnitude(code, bias), want = oldDecodeMagnitude(code, bias);
			if (quant8AsUint(got) != quant8AsUint(want) && bad++ < 20)
				printf("decode %s code %u: %a, was %a\n", isSigned ? "E4M3" : "E5M3", code, got, want);
		}

		for (int daz = 0; daz < 2; daz++)
			for (int k = 0; k < 4; k++)
			{
				long long before = bad, checked = 0;
				_mm_setcsr(daz ? csr | 0x8040u : csr);  /* FTZ | DAZ */
				fesetround(modes[k]);
				unsigned int u = 0;
				do
				{
					if (u < 0x80000000u || u > 0xff800000u)  /* y >= +0, or a NaN with its sign bit */
					{
						float y = quant8AsFloat(u);
						unsigned int got = quant8EncodeMagnitude(y, bias, maxCode), want = oldEncodeMagnitude(y, bias, maxCode);
						checked++;
						if (got != want && bad++ < 20)
							printf("encode %s y %08x (%s%s): %u, was %u\n", isSigned ? "E4M3" : "E5M3", u, modeNames[k],
								   daz ? ", FTZ+DAZ" : "", got, want);
					}
					u++;
				} while (u != 0);
				fesetround(FE_TONEAREST);
				_mm_setcsr(csr);
				printf("%s, %s%s: %lld values encoded, %lld mismatches\n", isSigned ? "E4M3" : "E5M3", modeNames[k],
					   daz ? ", FTZ+DAZ" : "", checked, bad - before);
				fflush(stdout);
			}
	}
	printf("%s: %lld mismatches in all\n", bad ? "FAILED" : "ok", bad);
	return bad != 0;
}
