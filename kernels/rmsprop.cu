/* CUDA RMSProp kernels: one launch updates every row of a multi-tensor table of one dtype.
 * Compiled at run time by pycuda (Backend/CudaBackend.py), with --fmad=false so the results equal the
 * host kernels' and the float32 NumPy reference bit for bit.
 */
#include "multi_tensor_apply.cuh"
#include "rmsprop_update.h"

#define RMSPROP_BLOCK 256

struct RMSPropFunctor
{
	float factor, epsilon;

	__device__ __forceinline__ void operator()(float &param, float grad, float &ms, float learnRate) const
	{
		rmspropStep(&param, grad, &ms, learnRate, factor, epsilon);
	}
};


extern "C" __global__ void __launch_bounds__(RMSPROP_BLOCK)
rmspropFloat32(const TensorEntry *table, int count, float factor, float epsilon)
{
	multiTensorApply<float>(table, count, RMSPropFunctor{factor, epsilon});
}


extern "C" __global__ void __launch_bounds__(RMSPROP_BLOCK)
rmspropFloat16(const TensorEntry *table, int count, float factor, float epsilon)
{
	multiTensorApply<__half>(table, count, RMSPropFunctor{factor, epsilon});
}


extern "C" __global__ void __launch_bounds__(RMSPROP_BLOCK)
rmspropBfloat16(const TensorEntry *table, int count, float factor, float epsilon)
{
	multiTensorApply<__nv_bfloat16>(table, count, RMSPropFunctor{factor, epsilon});
}


/* Sets *flag if any grad of the table is inf or NaN (skipNonFinite); reads the grads only. */
template <typename T>
__device__ __forceinline__ void flagNonFinite(const TensorEntry *table, int count, int *flag)
{
	long long nthreads = (long long)gridDim.x * blockDim.x;
	bool found = false;

	for (int k = 0; k < count; k++)
	{
		const T *grad = (const T *)table[k].grad;
		for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < table[k].size; i += nthreads)
			found |= !isfinite(Packet<T>::load(grad[i]));
	}

	if (found)
		*flag = 1;
}


extern "C" __global__ void nonFiniteFloat32(const TensorEntry *table, int count, int *flag) { flagNonFinite<float>(table, count, flag); }
extern "C" __global__ void nonFiniteFloat16(const TensorEntry *table, int count, int *flag) { flagNonFinite<__half>(table, count, flag); }
extern "C" __global__ void nonFiniteBfloat16(const TensorEntry *table, int count, int *flag) { flagNonFinite<__nv_bfloat16>(table, count, flag); }


/* The benchmark's bandwidth limit: the update's traffic through the same table and packets, without its math. */
struct TrafficFunctor
{
	__device__ __forceinline__ void operator()(float &param, float grad, float &ms, float) const
	{
		float old = param;
		param = ms;
		ms = old + grad;
	}
};


extern "C" __global__ void __launch_bounds__(RMSPROP_BLOCK)
trafficLimitFloat32(const TensorEntry *table, int count)
{
	multiTensorApply<float>(table, count, TrafficFunctor());
}


/* PuzzleLib's weight decay hook, grad -= rate * param, for one contiguous variable. */
extern "C" __global__ void __launch_bounds__(RMSPROP_BLOCK)
weightDecayFloat32(float *grad, const float *param, float rate, long long size)
{
	for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < size; i += (long long)gridDim.x * blockDim.x)
		grad[i] -= rate * param[i];
}
