/* arithmetic="puzzlelib" on CUDA: PuzzleLib 1.0.3's own elementwise kernels (its Cuda/Kernels/ElementWise.py,
 * rmspropKer and rmspropGravesKer for float32), as its code generates them, to be compiled as PuzzleLib compiles its
 * own (-use_fast_math) and launched with its grid, one element per thread (Backend/PuzzleLibCuda.py). Every element
 * runs the same code whatever the launch shape, so one launch per tensor reproduces PuzzleLib's global state too.
 * Included by nothing else. */


		__forceinline__ __device__ void rmsprop(float *param, float g, float *ms,
												float learnRate, float factor, float epsilon)
		{
			*ms = factor * *ms + (1.0f - factor) * g * g;
			*param += learnRate * g / (sqrtf(*ms) + epsilon);
		}
		

extern "C" __global__ void rmspropKer(float *__restrict param, float const *__restrict grad, float *__restrict ms, float learnRate, float factor, float epsilon, int size)
{
	int i = threadIdx.x + blockIdx.x * blockDim.x;
	if (i < size)
	{
		
		float paramval = (float)param[i], msval = (float)ms[i];
		rmsprop(&paramval, (float)grad[i], &msval, learnRate, factor, epsilon);

		param[i] = paramval, ms[i] = msval;
		;
	}
}


		__forceinline__ __device__ void rmspropGraves(float *param, float g, float *mg, float *ms, float *delta,
													  float learnRate, float alpha, float momRate, float epsilon)
		{
			*mg = alpha * *mg + (1.0f - alpha) * g;
			*ms = alpha * *ms + (1.0f - alpha) * g * g;
			*delta = momRate * *delta + learnRate * g / sqrtf(*ms - *mg * *mg + epsilon);

			*param += *delta;
		}
		

extern "C" __global__ void rmspropGravesKer(float *__restrict param, float const *__restrict grad, float *__restrict mg, float *__restrict ms, float *__restrict delta, float learnRate, float alpha, float momRate, float epsilon, int size)
{
	int i = threadIdx.x + blockIdx.x * blockDim.x;
	if (i < size)
	{
		
		float paramval = (float)param[i], mgval = (float)mg[i], msval = (float)ms[i], deltaval = (float)delta[i];
		rmspropGraves(&paramval, (float)grad[i], &mgval, &msval, &deltaval, learnRate, alpha, momRate, epsilon);

		param[i] = paramval, mg[i] = mgval, ms[i] = msval, delta[i] = deltaval;
		;
	}
}
