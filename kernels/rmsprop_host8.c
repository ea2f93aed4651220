/* Host kernels for 8-bit state (stateBits=8): every flavour, one pass. Threads split the table by blocks of
 * QUANT8_BLOCK elements; each block is decoded, updated in float32 (rmspropFlavourStep), and re-encoded with the
 * scale of its new absolute maximum (quantize8.h). The absolute maximum is taken over the float bits as unsigned
 * integers: the same order for non-negative floats, a NaN wins (its block turns NaN, as a 32-bit state would), and
 * it vectorizes, unlike fmaxf.
 */
#include <stdint.h>
#include <string.h>

#include "half_host.h"
#include "host_parallel.h"
#include "quantize8.h"
#include "rmsprop_host.h"

#define AS_FLOAT(x) (x)

static inline uint32_t absBits(float x)
{
	return quant8AsUint(x) & 0x7fffffffu;
}

/* Encodes n new values of one block into codes and its scale. */
static inline __attribute__((always_inline)) void encodeBlock(const float *restrict values, int64_t n,
															  unsigned char *restrict codes, float *scale, uint32_t maxBits,
															  int isSigned)
{
	float absmax = quant8AsFloat(maxBits), inverse = quant8Inverse(absmax, isSigned);
	*scale = quant8Scale(absmax, isSigned);
	for (int64_t i = 0; i < n; i++)
		codes[i] = (unsigned char)quant8Encode(values[i], inverse, isSigned);
}

/* One block of n elements of a row, parameters of type P; n (a whole block, or a row's last), hasMg, hasMom and
   plain are constants at every call, so each combination compiles to its own loops with the others' work gone.
   plain (decided in Python, RMSPropFlavour.plain): PuzzleLib's flavour, whose update (rmspropStep, branch-free) vectorizes; the flavour functor's branches
   keep gcc from vectorizing the others. */
#define QUANT8_BLOCK_UPDATE(NAME, P, LOAD_P, STORE_P) \
static inline __attribute__((always_inline)) void NAME(const Quant8Entry *e, int64_t b, int64_t n, \
													   const RMSPropFlavour *flavour, int hasMg, int hasMom, int plain) \
{ \
	int64_t lo = b * QUANT8_BLOCK; \
	P *restrict param = (P *)e->param + lo; \
	const P *restrict grad = (const P *)e->grad + lo; \
	const unsigned char *restrict cm = e->codes[0] + lo; \
	const unsigned char *restrict ca = hasMg ? e->codes[1] + lo : cm, *restrict cd = hasMom ? e->codes[2] + lo : cm; \
	float sm = e->scales[0][b], sa = hasMg ? e->scales[1][b] : 0.0f, sd = hasMom ? e->scales[2][b] : 0.0f; \
	RMSPropFlavour f = quant8Flavour(*flavour, hasMg, hasMom); \
	float m[QUANT8_BLOCK], a[QUANT8_BLOCK], d[QUANT8_BLOCK]; \
	uint32_t mx = 0, ax = 0, dx = 0; \
	for (int64_t i = 0; i < n; i++) \
	{ \
		float p = LOAD_P(param[i]), mm = quant8Decode(cm[i], sm, QUANT8_SIGNED(0)); \
		float aa = hasMg ? quant8Decode(ca[i], sa, QUANT8_SIGNED(1)) : 0.0f; \
		float dd = hasMom ? quant8Decode(cd[i], sd, QUANT8_SIGNED(2)) : 0.0f; \
		if (plain) \
			rmspropStep(&p, LOAD_P(grad[i]), &mm, e->learnRate, f.factor, f.epsilon); \
		else \
			rmspropFlavourStep(&p, LOAD_P(grad[i]), &mm, &aa, &dd, e->learnRate, e->momentum, &f); \
		param[i] = STORE_P(p); \
		m[i] = mm, a[i] = aa, d[i] = dd; \
		mx = absBits(mm) > mx ? absBits(mm) : mx; \
		ax = absBits(aa) > ax ? absBits(aa) : ax; \
		dx = absBits(dd) > dx ? absBits(dd) : dx; \
	} \
	encodeBlock(m, n, e->codes[0] + lo, &e->scales[0][b], mx, QUANT8_SIGNED(0)); \
	if (hasMg) \
		encodeBlock(a, n, e->codes[1] + lo, &e->scales[1][b], ax, QUANT8_SIGNED(1)); \
	if (hasMom) \
		encodeBlock(d, n, e->codes[2] + lo, &e->scales[2][b], dx, QUANT8_SIGNED(2)); \
}

QUANT8_BLOCK_UPDATE(blockFloat32, float, AS_FLOAT, AS_FLOAT)
QUANT8_BLOCK_UPDATE(blockFloat16, half_t, halfToFloat, floatToHalf)
QUANT8_BLOCK_UPDATE(blockBfloat16, bf16_t, bf16ToFloat, floatToBf16)


/* The combination of a block, chosen at run time, as a call with constants. */
#define QUANT8_DISPATCH(BLOCK, e, b, n, flavour, plain, hasMg, hasMom) \
	do { \
		if (plain) BLOCK(e, b, n, flavour, 0, 0, 1); \
		else if (!hasMg && !hasMom) BLOCK(e, b, n, flavour, 0, 0, 0); \
		else if (hasMg && !hasMom) BLOCK(e, b, n, flavour, 1, 0, 0); \
		else if (!hasMg) BLOCK(e, b, n, flavour, 0, 1, 0); \
		else BLOCK(e, b, n, flavour, 1, 1, 0); \
	} while (0)

/* Blocks [start, start + n) of one row, with the row's states deciding the combination once; whole blocks get
   loops of a constant 256 iterations (no remainder, unrolled), the row's last block its own size. */
#define QUANT8_SPAN(NAME, BLOCK) \
ISA_CLONES static void NAME(const void *row, int64_t start, int64_t n, const SpanArgs *args) \
{ \
	const Quant8Entry *e = (const Quant8Entry *)row; \
	int hasMg = e->codes[1] != NULL, hasMom = e->codes[2] != NULL; \
	int plain = quant8Flavour(*args->flavour, hasMg, hasMom).plain; \
	for (int64_t b = start; b < start + n; b++) \
	{ \
		int64_t size = e->size - b * QUANT8_BLOCK; \
		if (size >= QUANT8_BLOCK) \
			QUANT8_DISPATCH(BLOCK, e, b, QUANT8_BLOCK, args->flavour, plain, hasMg, hasMom); \
		else \
			QUANT8_DISPATCH(BLOCK, e, b, size, args->flavour, plain, hasMg, hasMom); \
	} \
}

QUANT8_SPAN(spanFloat32, blockFloat32)
QUANT8_SPAN(spanFloat16, blockFloat16)
QUANT8_SPAN(spanBfloat16, blockBfloat16)


void rmspropHostQuant8(const Quant8Entry *table, int count, int dtype, const RMSPropFlavour *flavour, int threads)
{
	SpanArgs args = {dtype, NULL, flavour};
	SpanFn spans[] = {spanFloat32, spanFloat16, spanBfloat16};
	parallelApply(&QUANT8_TABLE(table, count), spans[dtype], &args, threads);
}


void rmspropHostQuantize(const float *values, long long n, unsigned char *codes, float *scales, int isSigned)
{
	for (int64_t lo = 0; lo < n; lo += QUANT8_BLOCK)
	{
		int64_t count = n - lo < QUANT8_BLOCK ? n - lo : QUANT8_BLOCK;
		uint32_t maxBits = 0;
		for (int64_t i = 0; i < count; i++)
			maxBits = absBits(values[lo + i]) > maxBits ? absBits(values[lo + i]) : maxBits;
		encodeBlock(values + lo, count, codes + lo, &scales[lo / QUANT8_BLOCK], maxBits, isSigned);
	}
}


void rmspropHostDequantize(const unsigned char *codes, const float *scales, long long n, float *values, int isSigned)
{
	for (int64_t i = 0; i < n; i++)
		values[i] = quant8Decode(codes[i], scales[i / QUANT8_BLOCK], isSigned);
}
