/* The per-element RMSProp update: the one place the math lives.
 * Included by the CUDA kernels (kernels/rmsprop.cu) and by the host kernels (kernels/rmsprop_host.c).
 *
 *   ms    = factor * ms + (1 - factor) * g * g
 *   param = param + learnRate * g / (sqrt(ms) + epsilon)
 *
 * g is the descent direction (PuzzleLib's costs return target - pred), so the step is added.
 * The operation order is PuzzleLib 1.0.3's, so a float32 NumPy reference that evaluates the same
 * expression agrees bit for bit wherever the compiler does not contract to FMA (we build with
 * -ffp-contract=off on the host and --fmad=false on the device; the update is memory-bound anyway).
 */
#ifndef PUZZLELIB_RMSPROP_UPDATE_H
#define PUZZLELIB_RMSPROP_UPDATE_H

#ifdef __CUDACC__
#define RMSPROP_QUALIFIER __host__ __device__ __forceinline__
#else
#include <math.h>
#define RMSPROP_QUALIFIER static inline
#endif

RMSPROP_QUALIFIER void rmspropStep(float *param, float grad, float *ms, float learnRate, float factor, float epsilon)
{
	float m = factor * *ms + (1.0f - factor) * grad * grad;
	*ms = m;
	*param += learnRate * grad / (sqrtf(m) + epsilon);
}

#endif
