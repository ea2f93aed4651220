/* Host kernels for 8-bit state (stateBits=8): every flavour, one pass. Threads split the table by blocks of
 * QUANT8_BLOCK elements; each block is decoded, updated in float32 (rmspropFlavourStep), and re-encoded with the
 * scale of its new absolute maximum (quantize8.h). The absolute maximum is taken over the float bits as unsigned
 * integers: the same order for non-negative floats, a NaN wins (its block turns NaN, as a 32-bit state would), and
 * it vectorizes, unlike fmaxf. PuzzleLib's plain update runs one vectorized loop per block: decode, update and
 * maximum of block b, and the encoding of block b - 1, whose scale that block's maximum gave (Quant8Pending).
 */
#include <stdint.h>
#include <string.h>

#include "half_host.h"
#include "host_parallel.h"
#include "quantize8.h"
#include "rmsprop_host.h"

#define AS_FLOAT(x) (x)

/* The arrays of a block's loop never overlap (restrict), yet gcc checked them against each other at run time before
   every block's loop (about 50 instructions a block, a tenth of the loop's); ivdep drops the checks. */
#if defined(__GNUC__) && !defined(__clang__)
#define QUANT8_NO_ALIAS _Pragma("GCC ivdep")
#else
#define QUANT8_NO_ALIAS
#endif

static inline uint32_t absBits(float x)
{
	return quant8AsUint(x) & 0x7fffffffu;
}

/* Stores the scale of a block whose largest |value| has the bits maxBits; returns its quant8Inverse, what encoding
   the block multiplies by. */
static inline float storeScale(uint32_t maxBits, int isSigned, float *scale)
{
	float absmax = quant8AsFloat(maxBits);
	*scale = quant8Scale(absmax, isSigned);
	return quant8Inverse(absmax, isSigned);
}

/* Encodes n new values of one block into codes, with the block's quant8Inverse. */
static inline __attribute__((always_inline)) void encodeBlock(const float *restrict values, int64_t n,
															  unsigned char *restrict codes, float inverse, int isSigned)
{
	for (int64_t i = 0; i < n; i++)
		codes[i] = (unsigned char)quant8Encode(values[i], inverse, isSigned);
}

/* A block's new state values between its update and its encoding: for PuzzleLib's plain update the next block's loop
   encodes them, so the encoding's integer work runs beside that loop's square roots and divisions instead of after
   them (the maximum, and so the scale, is known only at the end of a block). */
typedef struct
{
	float values[3][QUANT8_BLOCK];  /* ms, mg, mom */
	float inverse[3];               /* quant8Inverse of each state's new block maximum */
	unsigned char *codes[3];        /* where the block's codes go */
}
Quant8Pending;

/* A block's states after its update: each scale from its new maximum, and what encoding them needs. */
static inline __attribute__((always_inline)) void closeBlock(Quant8Pending *done, const Quant8Entry *e, int64_t b,
															 const uint32_t maxBits[3], int hasMg, int hasMom)
{
	for (int k = 0; k < 3; k++)
		if (k == 0 || (k == 1 && hasMg) || (k == 2 && hasMom))
		{
			done->inverse[k] = storeScale(maxBits[k], QUANT8_SIGNED(k), &e->scales[k][b]);
			done->codes[k] = e->codes[k] + b * QUANT8_BLOCK;
		}
}

/* Encodes a closed block of n elements. */
static inline __attribute__((always_inline)) void encodePending(const Quant8Pending *pending, int64_t n, int hasMg,
																int hasMom)
{
	encodeBlock(pending->values[0], n, pending->codes[0], pending->inverse[0], QUANT8_SIGNED(0));
	if (hasMg)
		encodeBlock(pending->values[1], n, pending->codes[1], pending->inverse[1], QUANT8_SIGNED(1));
	if (hasMom)
		encodeBlock(pending->values[2], n, pending->codes[2], pending->inverse[2], QUANT8_SIGNED(2));
}

/* One block b of n elements of a row, parameters of type P: decoded, updated in float32, its new values and scales
   into `out` (closeBlock); with fused (the plain update, n a whole block) the same loop encodes the previous block,
   `pending` (a whole block too). n (a whole block, or a row's last), hasMg, hasMom, plain and fused are constants at
   every call, so each combination compiles to its own loop with the others' work gone.
   plain (decided in Python, RMSPropFlavour.plain): PuzzleLib's flavour, whose update is rmspropStep; the others go
   through the flavour functor, and each of their blocks is encoded by a loop of its own right after its update. */
#define QUANT8_BLOCK_UPDATE(NAME, P, LOAD_P, STORE_P) \
static inline __attribute__((always_inline)) void NAME(const Quant8Entry *e, int64_t b, int64_t n, \
													   const RMSPropFlavour *flavour, int hasMg, int hasMom, int plain, \
													   Quant8Pending *restrict out, const Quant8Pending *restrict pending, \
													   int fused) \
{ \
	int64_t lo = b * QUANT8_BLOCK; \
	P *restrict param = (P *)e->param + lo; \
	const P *restrict grad = (const P *)e->grad + lo; \
	const unsigned char *restrict cm = e->codes[0] + lo; \
	const unsigned char *restrict ca = hasMg ? e->codes[1] + lo : cm, *restrict cd = hasMom ? e->codes[2] + lo : cm; \
	float sm = e->scales[0][b], sa = hasMg ? e->scales[1][b] : 0.0f, sd = hasMom ? e->scales[2][b] : 0.0f; \
	RMSPropFlavour f = quant8Flavour(*flavour, hasMg, hasMom); \
	float *restrict m = out->values[0], *restrict a = out->values[1], *restrict d = out->values[2]; \
	/* the previous block's values and codes (fused: the plain update, ms alone) */ \
	const float *restrict pm = fused ? pending->values[0] : NULL; \
	unsigned char *restrict pc = fused ? pending->codes[0] : NULL; \
	float pInverse = fused ? pending->inverse[0] : 0.0f; \
	uint32_t mx = 0, ax = 0, dx = 0; \
	QUANT8_NO_ALIAS \
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
		m[i] = mm; \
		mx = absBits(mm) > mx ? absBits(mm) : mx; \
		if (hasMg) \
		{ \
			a[i] = aa; \
			ax = absBits(aa) > ax ? absBits(aa) : ax; \
		} \
		if (hasMom) \
		{ \
			d[i] = dd; \
			dx = absBits(dd) > dx ? absBits(dd) : dx; \
		} \
		if (fused) \
			pc[i] = (unsigned char)quant8Encode(pm[i], pInverse, QUANT8_SIGNED(0)); \
	} \
	uint32_t maxBits[3] = {mx, ax, dx}; \
	closeBlock(out, e, b, maxBits, hasMg, hasMom); \
}

QUANT8_BLOCK_UPDATE(blockFloat32, float, AS_FLOAT, AS_FLOAT)
QUANT8_BLOCK_UPDATE(blockFloat16, half_t, halfToFloat, floatToHalf)
QUANT8_BLOCK_UPDATE(blockBfloat16, bf16_t, bf16ToFloat, floatToBf16)


/* The combination of a block, chosen at run time, as a call with constants (not fused). */
#define QUANT8_DISPATCH(BLOCK, e, b, n, flavour, plain, hasMg, hasMom, out) \
	do { \
		if (plain) BLOCK(e, b, n, flavour, 0, 0, 1, out, NULL, 0); \
		else if (!hasMg && !hasMom) BLOCK(e, b, n, flavour, 0, 0, 0, out, NULL, 0); \
		else if (hasMg && !hasMom) BLOCK(e, b, n, flavour, 1, 0, 0, out, NULL, 0); \
		else if (!hasMg) BLOCK(e, b, n, flavour, 0, 1, 0, out, NULL, 0); \
		else BLOCK(e, b, n, flavour, 1, 1, 0, out, NULL, 0); \
	} while (0)

/* Blocks [start, start + n) of one row, with the row's states deciding the combination once. The whole blocks get
   loops of a constant 256 iterations (no remainder, unrolled); with the plain update and FUSE each of them but the
   first also encodes the block before it (two buffers, in turn), and the last whole one is encoded after the loop.
   Any other block (the row's last, shorter one; every block of the other flavours) is encoded right after its
   update. FUSE: where the plain update's loop vectorizes (float32 and bfloat16 parameters); gcc 12 leaves the
   float16 conversions scalar, and a scalar loop would take the encoding with it (1.3x the time). */
#define QUANT8_SPAN(NAME, BLOCK, FUSE) \
ISA_CLONES_BYTES static void NAME(const void *row, int64_t start, int64_t n, const SpanArgs *args) \
{ \
	const Quant8Entry *e = (const Quant8Entry *)row; \
	int hasMg = e->codes[1] != NULL, hasMom = e->codes[2] != NULL; \
	int plain = quant8Flavour(*args->flavour, hasMg, hasMom).plain; \
	int64_t end = start + n, whole = e->size / QUANT8_BLOCK < end ? e->size / QUANT8_BLOCK : end, b = start; \
	Quant8Pending buffers[2]; \
	if (FUSE && plain && b < whole) \
	{ \
		BLOCK(e, b, QUANT8_BLOCK, args->flavour, 0, 0, 1, &buffers[0], NULL, 0); \
		for (b++; b < whole; b++) \
			BLOCK(e, b, QUANT8_BLOCK, args->flavour, 0, 0, 1, &buffers[(b - start) & 1], &buffers[(b - start - 1) & 1], 1); \
		encodePending(&buffers[(b - start - 1) & 1], QUANT8_BLOCK, 0, 0); \
	} \
	for (; b < whole; b++) \
	{ \
		QUANT8_DISPATCH(BLOCK, e, b, QUANT8_BLOCK, args->flavour, plain, hasMg, hasMom, &buffers[0]); \
		encodePending(&buffers[0], QUANT8_BLOCK, hasMg, hasMom); \
	} \
	if (b < end) \
	{ \
		int64_t size = e->size - b * QUANT8_BLOCK; \
		QUANT8_DISPATCH(BLOCK, e, b, size, args->flavour, plain, hasMg, hasMom, &buffers[0]); \
		encodePending(&buffers[0], size, hasMg, hasMom); \
	} \
}

QUANT8_SPAN(spanFloat32, blockFloat32, 1)
QUANT8_SPAN(spanFloat16, blockFloat16, 0)
QUANT8_SPAN(spanBfloat16, blockBfloat16, 1)


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
		encodeBlock(values + lo, count, codes + lo, storeScale(maxBits, isSigned, &scales[lo / QUANT8_BLOCK]), isSigned);
	}
}


void rmspropHostDequantize(const unsigned char *codes, const float *scales, long long n, float *values, int isSigned)
{
	for (int64_t i = 0; i < n; i++)
		values[i] = quant8Decode(codes[i], scales[i / QUANT8_BLOCK], isSigned);
}
