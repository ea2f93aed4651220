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

/* The other flavours (issue 7), one functor for all; rmspropStep above stays the default path.
 *   g      = grad - weightDecay * param                      (L2 folded into the descent direction, torch)
 *   ms     = factor * ms + (1 - factor) * g * g              (ms starts at initialMs: 0, or 1 in TF1)
 *   mg     = factor * mg + (1 - factor) * g                  (centered only; the variance is ms - mg^2)
 *   denom  = sqrt(var) + epsilon, or sqrt(var + epsilon)     (epsilonInSqrt: TF, Keras, Graves)
 *   MOMENTUM_TORCH:  mom = momentum * mom + g / denom;          param += learnRate * mom
 *   MOMENTUM_IN_LR:  mom = momentum * mom + learnRate * g / denom;  param += mom   (TF, Keras, PuzzleLib Graves)
 */
enum { MOMENTUM_NONE = 0, MOMENTUM_TORCH = 1, MOMENTUM_IN_LR = 2 };
enum { ARITHMETIC_IEEE = 0, ARITHMETIC_PUZZLELIB = 1 };

/* The options of every kernel family (default, flavour, 8-bit), passed whole by both backends. Mirrored once in
 * NumPy (FLAVOUR_STRUCT in puzzlelib_rmsprop/Kernels.py, same fields in the same order; tests/test_flavour_struct.py
 * checks the layout): a new scalar option is a field here and there, and the code that reads it. */
typedef struct
{
	float factor, epsilon, weightDecay;
	int centered, epsilonInSqrt, momentumMode;
	float varianceFloor;  /* 8-bit state only (quant8Flavour, quantize8.h): centered var >= varianceFloor * ms */
	int plain;            /* every option at its default, PuzzleLib's RMSProp: decided in Python, never here */
	int arithmetic;       /* ARITHMETIC_IEEE: these kernels; ARITHMETIC_PUZZLELIB: PuzzleLib's own kernels instead
	                       * (kernels/rmsprop_puzzlelib.c on the CPU, Backend/PuzzleLibCuda.py on CUDA) */
}
RMSPropFlavour;

RMSPROP_QUALIFIER void rmspropFlavourStep(float *param, float grad, float *ms, float *mg, float *mom, float learnRate,
										  float momentum, const RMSPropFlavour *f)
{
	float g = f->weightDecay != 0.0f ? grad - f->weightDecay * *param : grad;
	float m = f->factor * *ms + (1.0f - f->factor) * g * g, var = m;
	*ms = m;

	if (f->centered)
	{
		float a = f->factor * *mg + (1.0f - f->factor) * g;
		*mg = a;
		var = m - a * a;
		if (f->varianceFloor != 0.0f)
			var = var > f->varianceFloor * m ? var : f->varianceFloor * m;
	}

	float denom = f->epsilonInSqrt ? sqrtf(var + f->epsilon) : sqrtf(var) + f->epsilon;

	if (f->momentumMode == MOMENTUM_TORCH)
	{
		float b = momentum * *mom + g / denom;
		*mom = b;
		*param += learnRate * b;
	}
	else if (f->momentumMode == MOMENTUM_IN_LR)
	{
		float d = momentum * *mom + learnRate * g / denom;
		*mom = d;
		*param += d;
	}
	else
		*param += learnRate * g / denom;
}

#endif
