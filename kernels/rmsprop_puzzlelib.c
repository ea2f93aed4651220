/* arithmetic="puzzlelib" on the CPU: PuzzleLib 1.0.3's own kernels (its CPU/Kernels/ElementWise.py, rmspropKer and
 * rmspropGravesKer), each loop as its ElementwiseKernel template writes it, so that gcc with PuzzleLib's flags
 * (-O3 -march=native -mtune=native -ffast-math) vectorizes them the same way: rcp/rsqrt with a Newton step in the
 * vector loop, exact division and sqrt in the scalar tail. Which element takes which path depends on the loop's
 * start and length only, so every call below is one loop over the element range PuzzleLib's call covers.
 *
 * Built at run time on the machine that runs it (Backend/PuzzleLibArithmetic.py), never into the installed
 * extension: -march=native code must not leave the machine it was compiled for. Included by nothing else.
 */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include "rmsprop_update.h"
#include "tensor_table.h"


static void rmspropKer(float *__restrict param, float const *__restrict grad, float *__restrict ms, float learnRate, float factor, float epsilon, ptrdiff_t size)
{
	for (ptrdiff_t i = 0; i < size; i++)
	{
		
		ms[i] = factor * ms[i] + (1.0f - factor) * grad[i] * grad[i];
		param[i] += learnRate * grad[i] / (sqrtf(ms[i]) + epsilon);
		;
	}
}


static void rmspropGravesKer(float *__restrict param, float const *__restrict grad, float *__restrict mg, float *__restrict ms, float *__restrict delta, float learnRate, float alpha, float momRate, float epsilon, ptrdiff_t size)
{
	for (ptrdiff_t i = 0; i < size; i++)
	{
		
		ms[i] = alpha * ms[i] + (1.0f - alpha) * grad[i] * grad[i];
		mg[i] = alpha * mg[i] + (1.0f - alpha) * grad[i];
		delta[i] = momRate * delta[i] + learnRate * grad[i] / sqrtf(ms[i] - mg[i] * mg[i] + epsilon);
		param[i] += delta[i];
		;
	}
}


/* The tensors of one call: PuzzleLib's argument order, Graves when mg is set. */
static void callKernel(float *param, const float *grad, float *ms, float *mg, float *mom, float learnRate,
					   float momentum, const RMSPropFlavour *f, ptrdiff_t size)
{
	if (mg != NULL)
		rmspropGravesKer(param, grad, mg, ms, mom, learnRate, f->factor, momentum, f->epsilon, size);
	else
		rmspropKer(param, grad, ms, learnRate, f->factor, f->epsilon, size);
}


/* rows [first, last) as one packed buffer (PuzzleLib's global state packs its variables end to end, ours pads
 * them): gathered into scratch, one loop over all of them, scattered back. */
static void callJoined(const FlavourEntry *rows, long long first, long long last, const RMSPropFlavour *f,
					   float *scratch, long long total)
{
	int tensors = rows[first].mg != NULL ? 5 : 3;
	float *buf[5];
	for (int k = 0; k < tensors; k++)
		buf[k] = scratch + (size_t)k * (size_t)total;

	long long at = 0;
	for (long long r = first; r < last; r++)
	{
		const void *src[5] = {rows[r].param, rows[r].grad, rows[r].ms, rows[r].mg, rows[r].mom};
		for (int k = 0; k < tensors; k++)
			memcpy(buf[k] + at, src[k], sizeof(float) * (size_t)rows[r].size);
		at += rows[r].size;
	}

	callKernel(buf[0], buf[1], buf[2], tensors == 5 ? buf[3] : NULL, tensors == 5 ? buf[4] : NULL,
			   rows[first].learnRate, rows[first].momentum, f, (ptrdiff_t)total);

	at = 0;
	for (long long r = first; r < last; r++)
	{
		void *dst[5] = {rows[r].param, NULL, rows[r].ms, rows[r].mg, rows[r].mom};
		for (int k = 0; k < tensors; k++)
			if (k != 1)
				memcpy(dst[k], buf[k] + at, sizeof(float) * (size_t)rows[r].size);
		at += rows[r].size;
	}
}


/* The end of the run of rows starting at r that one PuzzleLib call covers; its elements in *total. */
static long long runEnd(const FlavourEntry *rows, long long count, long long r, int joined, long long *total)
{
	long long last = r + 1;
	*total = rows[r].size;
	while (joined && last < count && rows[last].learnRate == rows[r].learnRate && rows[last].momentum == rows[r].momentum)
		*total += rows[last++].size;
	return last;
}


/* PuzzleLib's kernels always run with flush-to-zero and denormals-are-zero on: the first kernel module it loads was
 * linked with crtfastmath.o, which sets them for the process. Ours is linked without it (loading it changes nothing)
 * and sets them around the loops only. */
#if defined(__SSE__)
#define PUZZLELIB_MXCSR_FTZ_DAZ 0x8040u
#define SAVE_AND_FLUSH unsigned int savedCsr = _mm_getcsr(); _mm_setcsr(savedCsr | PUZZLELIB_MXCSR_FTZ_DAZ)
#define RESTORE _mm_setcsr(savedCsr)
#else
#define SAVE_AND_FLUSH
#define RESTORE
#endif


/* One call per row (PuzzleLib's local state), or, with joined, one call over each run of consecutive rows that share
 * learnRate and momentum (PuzzleLib's global state: one call over the dtype's buffer). float32 rows only.
 * Returns -1, having changed nothing, when the scratch of a joined run cannot be allocated. */
int puzzlelibRows(const FlavourEntry *rows, long long count, const RMSPropFlavour *f, int joined)
{
	long long most = 0, total;
	for (long long r = 0, last; r < count; r = last)
	{
		last = runEnd(rows, count, r, joined, &total);
		long long need = total * (rows[r].mg != NULL ? 5 : 3);
		if (last - r > 1 && need > most)
			most = need;
	}

	float *scratch = most > 0 ? malloc(sizeof(float) * (size_t)most) : NULL;
	if (most > 0 && scratch == NULL)
		return -1;

	SAVE_AND_FLUSH;
	for (long long r = 0; r < count;)
	{
		long long last = runEnd(rows, count, r, joined, &total);
		if (last - r == 1)
			callKernel(rows[r].param, rows[r].grad, rows[r].ms, rows[r].mg, rows[r].mom, rows[r].learnRate,
					   rows[r].momentum, f, (ptrdiff_t)rows[r].size);
		else
			callJoined(rows, r, last, f, scratch, total);
		r = last;
	}
	RESTORE;

	free(scratch);
	return 0;
}
