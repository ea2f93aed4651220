/* CUDA RMSProp kernels: one launch updates every row of a multi-tensor table of one dtype.
 * Compiled at run time by pycuda (Backend/CudaBackend.py), with --fmad=false so the results equal the
 * host kernels' and the float32 NumPy reference bit for bit.
 */
#include "multi_tensor_apply.cuh"
#include "rmsprop_update.h"

#ifndef RMSPROP_BLOCK
#define RMSPROP_BLOCK 256
#endif

#include "rmsprop8.cuh"

struct RMSPropFunctor
{
	float factor, epsilon;

	__device__ __forceinline__ void operator()(float &param, float grad, float &ms, float learnRate) const
	{
		rmspropStep(&param, grad, &ms, learnRate, factor, epsilon);
	}
};


/* Two kernels a dtype: NAME for tables of a few rows (multiTensorApplyFew), NAME##Rows for the others. */
#define RMSPROP_KERNEL(NAME, T) \
extern "C" __global__ void __launch_bounds__(RMSPROP_BLOCK) \
NAME(const TensorEntry *table, int count, RMSPropFlavour f) \
{ \
	multiTensorApplyFew<T>(table, count, RMSPropFunctor{f.factor, f.epsilon}); \
} \
extern "C" __global__ void __launch_bounds__(RMSPROP_BLOCK) \
NAME##Rows(const TensorEntry *table, int count, RMSPropFlavour f) \
{ \
	multiTensorApply<T>(table, count, RMSPropFunctor{f.factor, f.epsilon}); \
}

RMSPROP_KERNEL(rmspropFloat32, float)
RMSPROP_KERNEL(rmspropFloat16, __half)
RMSPROP_KERNEL(rmspropBfloat16, __nv_bfloat16)


/* The flavours (RMSProp options, RMSPropGraves): parameters of type P and states of type S (float32 states for
   16-bit parameters with stateDtype), math in float32, scalar accesses. A row of n units (visitRows) gives unit j
   its elements j, j + n, ...: FLAVOUR_SPAN of them (Backend/TensorTable.py counts the same), consecutive threads
   on consecutive elements, and a thread with one search per FLAVOUR_SPAN elements. */
#define FLAVOUR_SPAN 4

template <typename P, typename S>
__device__ __forceinline__ void flavourRows(const FlavourEntry *table, int count, const RMSPropFlavour &f)
{
	long long rank = (long long)blockIdx.x * blockDim.x + threadIdx.x, nthreads = (long long)gridDim.x * blockDim.x;
	auto units = [](const FlavourEntry &e) { return (e.size + FLAVOUR_SPAN - 1) / FLAVOUR_SPAN; };

	visitRows(table, count, rank, units, [&](const FlavourEntry &e, long long j, long long n) {
		P *param = (P *)e.param;
		const P *grad = (const P *)e.grad;
		S *ms = (S *)e.ms, *mg = (S *)e.mg, *mom = (S *)e.mom;

		for (; j < n; j += nthreads)
			for (long long i = j; i < e.size; i += n)
			{
				float p = Packet<P>::load(param[i]), m = Packet<S>::load(ms[i]);
				float a = mg ? Packet<S>::load(mg[i]) : 0.0f, d = mom ? Packet<S>::load(mom[i]) : 0.0f;
				rmspropFlavourStep(&p, Packet<P>::load(grad[i]), &m, &a, &d, e.learnRate, e.momentum, &f);
				param[i] = Packet<P>::store(p);
				ms[i] = Packet<S>::store(m);
				if (mg)
					mg[i] = Packet<S>::store(a);
				if (mom)
					mom[i] = Packet<S>::store(d);
			}
		return j;
	});
}

#define FLAVOUR_KERNEL(NAME, P, S) \
extern "C" __global__ void __launch_bounds__(RMSPROP_BLOCK) \
NAME(const FlavourEntry *table, int count, RMSPropFlavour f) \
{ \
	flavourRows<P, S>(table, count, f); \
}

FLAVOUR_KERNEL(flavourFloat32, float, float)
FLAVOUR_KERNEL(flavourFloat16, __half, __half)
FLAVOUR_KERNEL(flavourFloat16State32, __half, float)
FLAVOUR_KERNEL(flavourBfloat16, __nv_bfloat16, __nv_bfloat16)
FLAVOUR_KERNEL(flavourBfloat16State32, __nv_bfloat16, float)


/* Sets *flag if any grad of the table is inf or NaN (skipNonFinite); reads the grads only, unit by unit as the
   update does. */
template <typename T>
__device__ __forceinline__ void flagNonFinite(const TensorEntry *table, int count, int *flag)
{
	long long rank = (long long)blockIdx.x * blockDim.x + threadIdx.x, nthreads = (long long)gridDim.x * blockDim.x;
	auto units = [](const TensorEntry &e) { return rowUnits<T>(e); };
	bool found = false;

	visitRows(table, count, rank, units, [&](const TensorEntry &e, long long j, long long) {
		auto check = [&](long long i) { found |= !isfinite(Packet<T>::load(((const T *)e.grad)[i])); };
		return rowUnitsOf<T>(e, j, nthreads, check, [&](long long i) {
			for (int w = 0; w < Packet<T>::width; w++)
				check(i + w);
		});
	});

	if (found)
		*flag = 1;
}


extern "C" __global__ void nonFiniteFloat32(const TensorEntry *table, int count, int *flag) { flagNonFinite<float>(table, count, flag); }
extern "C" __global__ void nonFiniteFloat16(const TensorEntry *table, int count, int *flag) { flagNonFinite<__half>(table, count, flag); }
extern "C" __global__ void nonFiniteBfloat16(const TensorEntry *table, int count, int *flag) { flagNonFinite<__nv_bfloat16>(table, count, flag); }


/* PuzzleLib's WeightDecay hook, grad -= rate * param, for one contiguous variable. */
extern "C" __global__ void __launch_bounds__(RMSPROP_BLOCK)
decayGradFloat32(float *grad, const float *param, float rate, long long size)
{
	for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < size; i += (long long)gridDim.x * blockDim.x)
		grad[i] -= rate * param[i];
}


/* data /= divisor for one contiguous array, in float32 rounded to the storage type (np.divide's result): Grid's
   mean under CUDA-aware MPI. pycuda's own division has no float16 or bfloat16 kernel. */
template <typename T>
__device__ __forceinline__ void divideBy(T *data, float divisor, long long size)
{
	for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < size; i += (long long)gridDim.x * blockDim.x)
		data[i] = Packet<T>::store(Packet<T>::load(data[i]) / divisor);
}

extern "C" __global__ void __launch_bounds__(RMSPROP_BLOCK)
divideFloat32(float *data, float divisor, long long size) { divideBy(data, divisor, size); }

extern "C" __global__ void __launch_bounds__(RMSPROP_BLOCK)
divideFloat16(__half *data, float divisor, long long size) { divideBy(data, divisor, size); }

extern "C" __global__ void __launch_bounds__(RMSPROP_BLOCK)
divideBfloat16(__nv_bfloat16 *data, float divisor, long long size) { divideBy(data, divisor, size); }
