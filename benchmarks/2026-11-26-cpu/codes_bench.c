/* Issue 12's "measure before you choose": encoding and decoding 8-bit state codes on the CPU, one thread.
 *   small float (ours, kernels/quantize8.h): integer operations, no table;
 *   dynamic map (bitsandbytes' idea): a sorted table of 256 values, decoded by lookup, encoded by a binary search.
 * Build: gcc -O3 -fno-math-errno -fno-trapping-math -ffp-contract=off -march=native -I../../kernels codes_bench.c -lm
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "quantize8.h"

#define N (1 << 24)

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* the nearest table entry by binary search (table sorted ascending) */
static inline unsigned char searchCode(const float *table, float y)
{
	int lo = 0;
	for (int step = 128; step > 0; step >>= 1)
		lo = table[lo + step - 1] < y ? lo + step : lo;
	if (lo > 0 && y - table[lo - 1] < table[lo] - y)
		lo--;
	return (unsigned char)lo;
}

int main(void)
{
	float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float)), table[256];
	unsigned char *codes = malloc(N);
	for (int c = 0; c < 256; c++)
		table[c] = quant8DecodeMagnitude(c, QUANT8_UNSIGNED_BIAS);  /* the same values, sorted: a fair table */
	srand(1);
	for (int i = 0; i < N; i++)
		x[i] = (float)rand() / RAND_MAX * QUANT8_UNSIGNED_MAX;

	double best[4] = {1e9, 1e9, 1e9, 1e9};
	for (int round = 0; round < 5; round++)
	{
		double t = now();
		for (int i = 0; i < N; i++)
			codes[i] = (unsigned char)quant8EncodeMagnitude(x[i], QUANT8_UNSIGNED_BIAS, QUANT8_UNSIGNED_MAX_CODE);
		best[0] = fmin(best[0], now() - t);
		t = now();
		for (int i = 0; i < N; i++)
			y[i] = quant8DecodeMagnitude(codes[i], QUANT8_UNSIGNED_BIAS);
		best[1] = fmin(best[1], now() - t);
		t = now();
		for (int i = 0; i < N; i++)
			codes[i] = searchCode(table, x[i]);
		best[2] = fmin(best[2], now() - t);
		t = now();
		for (int i = 0; i < N; i++)
			y[i] = table[codes[i]];
		best[3] = fmin(best[3], now() - t);
	}
	printf("ns per element, one thread, best of 5 over %d elements (checksum %g)\n", N, (double)y[N / 2]);
	printf("small float: encode %.2f, decode %.2f\n", 1e9 * best[0] / N, 1e9 * best[1] / N);
	printf("table:       encode %.2f (binary search), decode %.2f (lookup)\n", 1e9 * best[2] / N, 1e9 * best[3] / N);
	return 0;
}
