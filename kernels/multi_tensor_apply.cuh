/* Multi-tensor bookkeeping for the CUDA kernels, apart from the math (apex's multi_tensor_apply idea).
 * A functor F states only the per-element update: F(float &param, float grad, float &ms, float learnRate).
 * This file walks the table rows with a grid-stride loop, 64-bit indices and 16-byte packets
 * (4 floats or 8 halves); a scalar head brings the pointers to 16-byte alignment and a scalar tail
 * finishes the row. Rows whose three pointers are misaligned differently take the scalar path whole.
 */
#ifndef PUZZLELIB_RMSPROP_MULTI_TENSOR_APPLY_CUH
#define PUZZLELIB_RMSPROP_MULTI_TENSOR_APPLY_CUH

#include <cuda_fp16.h>

#include "tensor_table.h"

template <typename T> struct Packet;

template <> struct Packet<float>
{
	static const int width = 4;

	static __device__ __forceinline__ float load(float x) { return x; }
	static __device__ __forceinline__ float store(float x) { return x; }

	static __device__ __forceinline__ void unpack(const uint4 &raw, float *out)
	{
		out[0] = __uint_as_float(raw.x); out[1] = __uint_as_float(raw.y);
		out[2] = __uint_as_float(raw.z); out[3] = __uint_as_float(raw.w);
	}

	static __device__ __forceinline__ uint4 pack(const float *in)
	{
		return make_uint4(__float_as_uint(in[0]), __float_as_uint(in[1]), __float_as_uint(in[2]), __float_as_uint(in[3]));
	}
};

/* float16 storage, float32 math, converted pairwise through __half2. */
template <> struct Packet<__half>
{
	static const int width = 8;

	static __device__ __forceinline__ float load(__half x) { return __half2float(x); }
	static __device__ __forceinline__ __half store(float x) { return __float2half_rn(x); }

	static __device__ __forceinline__ void unpack(const uint4 &raw, float *out)
	{
		const __half2 *pairs = reinterpret_cast<const __half2 *>(&raw);
		for (int j = 0; j < 4; j++)
		{
			float2 f = __half22float2(pairs[j]);
			out[2 * j] = f.x; out[2 * j + 1] = f.y;
		}
	}

	static __device__ __forceinline__ uint4 pack(const float *in)
	{
		uint4 raw;
		__half2 *pairs = reinterpret_cast<__half2 *>(&raw);
		for (int j = 0; j < 4; j++)
			pairs[j] = __floats2half2_rn(in[2 * j], in[2 * j + 1]);
		return raw;
	}
};


template <typename T, typename F>
__device__ __forceinline__ void applyScalar(const TensorEntry &e, long long i, const F &f)
{
	T *param = (T *)e.param, *ms = (T *)e.ms;
	const T *grad = (const T *)e.grad;

	float p = Packet<T>::load(param[i]), m = Packet<T>::load(ms[i]);
	f(p, Packet<T>::load(grad[i]), m, e.learnRate);
	param[i] = Packet<T>::store(p);
	ms[i] = Packet<T>::store(m);
}


template <typename T, typename F>
__device__ __forceinline__ void applyPacket(const TensorEntry &e, long long i, const F &f)
{
	const int W = Packet<T>::width;
	uint4 *param = (uint4 *)((T *)e.param + i), *ms = (uint4 *)((T *)e.ms + i);
	const uint4 *grad = (const uint4 *)((const T *)e.grad + i);

	float p[W], g[W], m[W];
	Packet<T>::unpack(*param, p);
	Packet<T>::unpack(__ldg(grad), g);
	Packet<T>::unpack(*ms, m);

	#pragma unroll
	for (int j = 0; j < W; j++)
		f(p[j], g[j], m[j], e.learnRate);

	*param = Packet<T>::pack(p);
	*ms = Packet<T>::pack(m);
}


template <typename T, typename F>
__device__ __forceinline__ void applyRow(const TensorEntry &e, long long rank, long long nthreads, const F &f)
{
	const int W = Packet<T>::width;
	unsigned long long mis = (unsigned long long)e.param % 16;

	long long head = e.size;
	if (mis == (unsigned long long)e.grad % 16 && mis == (unsigned long long)e.ms % 16)
		head = min(e.size, (long long)(((16 - mis) % 16) / sizeof(T)));

	long long packets = (e.size - head) / W, tail = head + packets * W;

	for (long long i = rank; i < head; i += nthreads)
		applyScalar<T>(e, i, f);

	for (long long v = rank; v < packets; v += nthreads)
		applyPacket<T>(e, head + v * W, f);

	for (long long i = tail + rank; i < e.size; i += nthreads)
		applyScalar<T>(e, i, f);
}


template <typename T, typename F>
__device__ __forceinline__ void multiTensorApply(const TensorEntry *table, int count, const F &f)
{
	long long nthreads = (long long)gridDim.x * blockDim.x;

	for (int k = 0; k < count; k++)
	{
		TensorEntry e = table[k];
		/* rotate the blocks per row so that many small rows spread over the grid, not all onto block 0 */
		long long block = ((long long)blockIdx.x + e.blockOffset) % gridDim.x;
		applyRow<T>(e, block * blockDim.x + threadIdx.x, nthreads, f);
	}
}

#endif
