/* Host kernels built from the same per-element update as the CUDA kernels (rmsprop_update.h).
 * Threads split the table by elements (so by bytes: one dtype per call), not by tensors, so one big
 * tensor and a thousand small ones parallelise alike. Build with -fno-math-errno, or gcc will not
 * vectorize sqrtf, and -ffp-contract=off for results identical to a float32 NumPy reference.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "rmsprop_host.h"
#include "rmsprop_update.h"
#include "half_host.h"
#include "host_parallel.h"
#include "host_pool.h"

/* Each thread gets at least this many elements, so a table of fewer than twice it runs on the calling thread alone,
   and a bigger machine adds threads only as the work grows. Measured on 2 cores (docs/benchmarks.md), back to back: a
   second thread loses at 8K float32 elements (1.3x the time) and pays from 16K (0.8x; 4096 elements take 2 us). */
#define PARALLEL_MIN_PER_THREAD 8192
/* From this many elements (about 100 us of work on one core) sleeping workers are woken before the work, not after
   it: one arriving 10-50 us late still takes a share. */
#define WAKE_FIRST_ELEMENTS 262144
/* Chunks per thread: a worker that comes late, or not at all, leaves its chunks to the others. */
#define CHUNKS_PER_THREAD 4
/* Chunk boundaries fall on 64-byte lines of float32, so no two threads share a cache line. */
#define SPLIT_ALIGN 16


ISA_CLONES static void spanFloat32(float *restrict param, const float *restrict grad, float *restrict ms,
								   int64_t n, float learnRate, float factor, float epsilon)
{
	for (int64_t i = 0; i < n; i++)
		rmspropStep(&param[i], grad[i], &ms[i], learnRate, factor, epsilon);
}


/* 16-bit storage, float32 math. */
#define SPAN16(NAME, T, TO_FLOAT, FROM_FLOAT) \
static void NAME(T *restrict param, const T *restrict grad, T *restrict ms, int64_t n, float learnRate, float factor, \
				 float epsilon) \
{ \
	for (int64_t i = 0; i < n; i++) \
	{ \
		float p = TO_FLOAT(param[i]), m = TO_FLOAT(ms[i]); \
		rmspropStep(&p, TO_FLOAT(grad[i]), &m, learnRate, factor, epsilon); \
		param[i] = FROM_FLOAT(p); \
		ms[i] = FROM_FLOAT(m); \
	} \
}

SPAN16(spanFloat16, half_t, halfToFloat, floatToHalf)
SPAN16(spanBfloat16, bf16_t, bf16ToFloat, floatToBf16)




static int64_t rowSize(const Table *t, int k)
{
	int64_t n;
	memcpy(&n, t->rows + k * t->rowBytes + t->sizeOffset, sizeof(n));
	return n;
}


static void rmspropSpan(const void *row, int64_t start, int64_t n, const SpanArgs *args)
{
	const TensorEntry *e = (const TensorEntry *)row;
	float factor = args->flavour->factor, epsilon = args->flavour->epsilon;
	if (args->dtype == RMSPROP_FLOAT32)
		spanFloat32((float *)e->param + start, (const float *)e->grad + start, (float *)e->ms + start,
					n, e->learnRate, factor, epsilon);
	else if (args->dtype == RMSPROP_FLOAT16)
		spanFloat16((half_t *)e->param + start, (const half_t *)e->grad + start, (half_t *)e->ms + start,
					n, e->learnRate, factor, epsilon);
	else
		spanBfloat16((bf16_t *)e->param + start, (const bf16_t *)e->grad + start, (bf16_t *)e->ms + start,
					 n, e->learnRate, factor, epsilon);
}


/* Sets *args->nonFinite if a grad holds inf or NaN: all exponent bits set, tested on the bits so it vectorizes. */
ISA_CLONES static void nonFiniteSpan(const void *row, int64_t start, int64_t n, const SpanArgs *args)
{
	const TensorEntry *e = (const TensorEntry *)row;
	int found = 0;

	if (args->dtype == RMSPROP_FLOAT32)
	{
		const uint32_t *restrict g = (const uint32_t *)e->grad + start;
		for (int64_t i = 0; i < n; i++)
			found |= (g[i] & 0x7f800000u) == 0x7f800000u;
	}
	else
	{
		/* the exponent bits of float16 or bfloat16 */
		uint16_t mask = args->dtype == RMSPROP_FLOAT16 ? 0x7c00u : 0x7f80u;
		const uint16_t *restrict g = (const uint16_t *)e->grad + start;
		for (int64_t i = 0; i < n; i++)
			found |= (g[i] & mask) == mask;
	}

	if (found)
		__atomic_store_n(args->nonFinite, 1, __ATOMIC_RELAXED);
}


/* Runs span over the elements [begin, end) of the table seen as one concatenated array. */
static void applyRange(const Table *t, int64_t begin, int64_t end, SpanFn span, const SpanArgs *args)
{
	int64_t offset = 0;

	for (int k = 0; k < t->count && offset < end; k++)
	{
		int64_t size = rowSize(t, k);
		int64_t lo = begin > offset ? begin : offset, hi = offset + size < end ? offset + size : end;
		if (lo < hi)
			span(t->rows + k * t->rowBytes, lo - offset, hi - lo, args);

		offset += size;
	}
}


int rmspropHostMaxThreads(void)
{
	return poolDefaultThreads();
}


typedef struct { const Table *t; SpanFn span; const SpanArgs *args; int64_t total, chunk; } Split;

static void runChunk(int64_t c, void *context)
{
	const Split *s = (const Split *)context;
	int64_t begin = c * s->chunk, end = begin + s->chunk < s->total ? begin + s->chunk : s->total;
	applyRange(s->t, begin, end, s->span, s->args);
}


/* Splits the table's units (elements, or 8-bit state's blocks) into equal chunks for the calling thread and the
   pool's workers (one dtype per call, so equal by bytes too). */
void parallelApply(const Table *t, SpanFn span, const SpanArgs *args, int threads)
{
	int64_t total = 0, align = t->unit > 1 ? 1 : SPLIT_ALIGN;
	for (int k = 0; k < t->count; k++)
		total += rowSize(t, k);

	if (threads <= 0)
		threads = rmspropHostMaxThreads();
	int64_t useful = total * t->unit / PARALLEL_MIN_PER_THREAD;
	if (useful < threads)
		threads = (int)useful;
	if (threads < 2)
	{
		applyRange(t, 0, total, span, args);
		return;
	}

	int64_t chunks = (int64_t)threads * CHUNKS_PER_THREAD;
	int64_t chunk = ((total + chunks - 1) / chunks + align - 1) / align * align;
	Split split = {t, span, args, total, chunk};
	poolRun((total + chunk - 1) / chunk, threads - 1, runChunk, &split, total * t->unit >= WAKE_FIRST_ELEMENTS);
}


void rmspropHostApply(const TensorEntry *table, int count, int dtype, const RMSPropFlavour *flavour, int threads)
{
	SpanArgs args = {dtype, NULL, flavour};
	parallelApply(&TENSOR_TABLE(table, count), rmspropSpan, &args, threads);
}


int rmspropHostNonFinite(const TensorEntry *table, int count, int dtype, int threads)
{
	int nonFinite = 0;
	SpanArgs args = {dtype, &nonFinite, NULL};
	parallelApply(&TENSOR_TABLE(table, count), nonFiniteSpan, &args, threads);
	return nonFinite;
}


/* The flavours: parameters of type P, states of type S, math in float32. */
#define FLAVOUR_SPAN(NAME, P, S, LOAD_P, STORE_P, LOAD_S, STORE_S) \
static void NAME(const void *row, int64_t start, int64_t n, const SpanArgs *args) \
{ \
	const FlavourEntry *e = (const FlavourEntry *)row; \
	P *param = (P *)e->param + start; \
	const P *grad = (const P *)e->grad + start; \
	S *ms = (S *)e->ms + start, *mg = e->mg ? (S *)e->mg + start : NULL, *mom = e->mom ? (S *)e->mom + start : NULL; \
	for (int64_t i = 0; i < n; i++) \
	{ \
		float p = LOAD_P(param[i]), m = LOAD_S(ms[i]), a = mg ? LOAD_S(mg[i]) : 0.0f, d = mom ? LOAD_S(mom[i]) : 0.0f; \
		rmspropFlavourStep(&p, LOAD_P(grad[i]), &m, &a, &d, e->learnRate, e->momentum, args->flavour); \
		param[i] = STORE_P(p); \
		ms[i] = STORE_S(m); \
		if (mg) mg[i] = STORE_S(a); \
		if (mom) mom[i] = STORE_S(d); \
	} \
}

#define AS_FLOAT(x) (x)
FLAVOUR_SPAN(flavourFloat32, float, float, AS_FLOAT, AS_FLOAT, AS_FLOAT, AS_FLOAT)
FLAVOUR_SPAN(flavourFloat16, half_t, half_t, halfToFloat, floatToHalf, halfToFloat, floatToHalf)
FLAVOUR_SPAN(flavourFloat16State32, half_t, float, halfToFloat, floatToHalf, AS_FLOAT, AS_FLOAT)
FLAVOUR_SPAN(flavourBfloat16, bf16_t, bf16_t, bf16ToFloat, floatToBf16, bf16ToFloat, floatToBf16)
FLAVOUR_SPAN(flavourBfloat16State32, bf16_t, float, bf16ToFloat, floatToBf16, AS_FLOAT, AS_FLOAT)


void rmspropHostFlavour(const FlavourEntry *table, int count, int combo, const RMSPropFlavour *flavour, int threads)
{
	SpanArgs args = {RMSPROP_FLOAT32, NULL, flavour};
	SpanFn spans[] = {flavourFloat32, flavourFloat16, flavourFloat16State32, flavourBfloat16, flavourBfloat16State32};
	Table t = {(const char *)table, count, sizeof(FlavourEntry), offsetof(FlavourEntry, size), 1};
	parallelApply(&t, spans[combo], &args, threads);
}
