/* The benchmark's host references (float32), no part of the optimizer: puzzlelib_rmsprop/bench builds this file with
 * rmsprop_host.c (for parallelApply: same threads and splitting as the update) on first use, into a cache.
 *   benchTraffic(kind 0): the update's traffic (read param, grad, ms; write param, ms) with no math to speak of;
 *   benchTraffic(kind 1): STREAM's triad, param = grad + s * ms: counts 12 bytes, moves 16 (write-allocate);
 *   benchQuant8Traffic: the 8-bit update's traffic (ms only: param, grad, codes and scale) with no math.
 * They overwrite the tensors.
 */
#include <stdint.h>

#include "host_parallel.h"
#include "rmsprop_host.h"

#define TRIAD_SCALE 1.0001f

ISA_CLONES static void trafficSpan(const void *row, int64_t start, int64_t n, const SpanArgs *args)
{
	(void)args;
	const TensorEntry *e = (const TensorEntry *)row;
	float *restrict p = (float *)e->param + start, *restrict m = (float *)e->ms + start;
	const float *restrict g = (const float *)e->grad + start;

	for (int64_t i = 0; i < n; i++)
	{
		float old = p[i];
		p[i] = m[i];
		m[i] = old + g[i];
	}
}


ISA_CLONES static void triadSpan(const void *row, int64_t start, int64_t n, const SpanArgs *args)
{
	(void)args;
	const TensorEntry *e = (const TensorEntry *)row;
	float *restrict a = (float *)e->param + start;
	const float *restrict b = (const float *)e->grad + start, *restrict c = (const float *)e->ms + start;

	for (int64_t i = 0; i < n; i++)
		a[i] = b[i] + TRIAD_SCALE * c[i];
}


ISA_CLONES_BYTES static void quant8TrafficSpan(const void *row, int64_t start, int64_t n, const SpanArgs *args)
{
	(void)args;
	const Quant8Entry *e = (const Quant8Entry *)row;
	for (int64_t b = start; b < start + n; b++)
	{
		int64_t lo = b * QUANT8_BLOCK, count = e->size - lo < QUANT8_BLOCK ? e->size - lo : QUANT8_BLOCK;
		float *restrict p = (float *)e->param + lo, scale = e->scales[0][b];
		const float *restrict g = (const float *)e->grad + lo;
		unsigned char *restrict c = e->codes[0] + lo;
		for (int64_t i = 0; i < count; i++)
		{
			float old = p[i];
			p[i] = g[i] + (float)c[i];
			c[i] = (unsigned char)(quant8AsUint(old) >> 24);
		}
		e->scales[0][b] = scale + 1.0f;
	}
}


void benchTraffic(const TensorEntry *table, int count, int kind, int threads)
{
	SpanArgs args = {RMSPROP_FLOAT32, NULL, NULL};
	parallelApply(&TENSOR_TABLE(table, count), kind == 1 ? triadSpan : trafficSpan, &args, threads);
}


void benchQuant8Traffic(const Quant8Entry *table, int count, int threads)
{
	SpanArgs args = {RMSPROP_FLOAT32, NULL, NULL};
	parallelApply(&QUANT8_TABLE(table, count), quant8TrafficSpan, &args, threads);
}
