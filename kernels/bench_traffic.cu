/* The benchmark's CUDA references, no part of the optimizer: puzzlelib_rmsprop/bench compiles this file on first
 * use (pycuda caches the cubin). The update's traffic through the same table, packets and lanes as the update,
 * without its math; they overwrite the tensors.
 */
#include "multi_tensor_apply.cuh"

#ifndef RMSPROP_BLOCK
#define RMSPROP_BLOCK 256
#endif

#include "rmsprop8.cuh"

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


/* As the update's kernels: NAME for tables of a few rows, NAME##Rows for the others (CudaBackend.plainKernel). */
#define TRAFFIC_KERNEL(NAME, T) \
extern "C" __global__ void __launch_bounds__(RMSPROP_BLOCK) \
NAME(const TensorEntry *table, int count) \
{ \
	multiTensorApplyFew<T>(table, count, TrafficFunctor()); \
} \
extern "C" __global__ void __launch_bounds__(RMSPROP_BLOCK) \
NAME##Rows(const TensorEntry *table, int count) \
{ \
	multiTensorApply<T>(table, count, TrafficFunctor()); \
}

TRAFFIC_KERNEL(trafficLimitFloat32, float)
TRAFFIC_KERNEL(trafficLimitFloat16, __half)


/* One block of the 8-bit traffic: a lane's params, grads and codes in, params, codes and (lane 0) the scale out. */
__device__ __forceinline__ void quant8TrafficBlock(const Quant8Entry &e, long long b, int lane, bool aligned)
{
	long long lo = b * QUANT8_BLOCK + lane * QUANT8_LANE;
	int n = (int)max(0LL, min((long long)QUANT8_LANE, e.size - lo));
	bool packets = aligned && n == QUANT8_LANE;
	float *param = (float *)e.param + lo, *scale = e.scales[0] + b, p[QUANT8_LANE], g[QUANT8_LANE], m[QUANT8_LANE];
	const float *grad = (const float *)e.grad + lo;
	unsigned char *codes = e.codes[0] + lo;
	ASSUME_GLOBAL(param); ASSUME_GLOBAL(grad); ASSUME_GLOBAL(codes); ASSUME_GLOBAL(scale);

	loadLane<float>(param, n, packets, false, p);
	loadLane<float>(grad, n, packets, true, g);
	decodeLane(codes, *scale, n, packets, 0, m);
	unsigned long long word = 0;
	#pragma unroll
	for (int j = 0; j < QUANT8_LANE; j++)
	{
		word |= (unsigned long long)(__float_as_uint(p[j]) >> 24) << (8 * j);
		p[j] = g[j] + m[j];
	}
	storeLane<float>(param, n, packets, p);
	if (packets)
		*(unsigned long long *)codes = word;
	if (lane == 0)
		*scale = m[0];
}

/* The benchmark's limit for the 8-bit update (float32 parameters, ms only): its traffic through the same lanes,
   packets and code words, without its math. */
extern "C" __global__ void __launch_bounds__(RMSPROP_BLOCK)
quant8TrafficFloat32(const Quant8Entry *table, int count)
{
	long long warps = (long long)gridDim.x * blockDim.x / 32;
	long long warp = ((long long)blockIdx.x * blockDim.x + threadIdx.x) / 32;
	int lane = threadIdx.x % 32;
	auto units = [](const Quant8Entry &e) { return e.blocks; };

	visitRows(table, count, warp, units, [&](const Quant8Entry &e, long long b, long long n) {
		bool aligned = quant8Aligned(e);
		for (; b < n; b += warps)
			quant8TrafficBlock(e, b, lane, aligned);
		return b;
	});
}
