/* Multi-tensor bookkeeping for the CUDA kernels, apart from the math (apex's multi_tensor_apply idea).
 * A functor F states only the per-element update: F(float &param, float grad, float &ms, float learnRate).
 * This file walks the table rows with a grid-stride loop, 64-bit indices and 16-byte packets
 * (4 floats, or 8 halves / bfloat16s); a scalar head brings the pointers to 16-byte alignment and a scalar tail
 * finishes the row. Rows whose three pointers are misaligned differently take the scalar path whole.
 */
#ifndef PUZZLELIB_RMSPROP_MULTI_TENSOR_APPLY_CUH
#define PUZZLELIB_RMSPROP_MULTI_TENSOR_APPLY_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "host_shim_hooks.h"
#include "tensor_table.h"

/* The table's pointers reach the kernel through memory, so without this the accesses compile to generic
   LD/ST instead of LDG/STG (checked in the SASS by tests/test_kernels.py). */
#ifdef __CUDA_ARCH__
#define ASSUME_GLOBAL(ptr) __builtin_assume(__isGlobal(ptr))
#else
#define ASSUME_GLOBAL(ptr) ((void)0)
#endif


/* A 128-bit global load. Written out because for the 16-bit types NVVM splits a plain uint4 load whose words
   are used one by one into four 32-bit loads (seen in the SASS). volatile and the "memory" clobber keep it in
   program order with the stores around it: without them NVVM may move it past a store to the same address. */
static __device__ __forceinline__ uint4 loadPacket(const uint4 *ptr)
{
#ifdef __CUDA_ARCH__
	uint4 v;
	asm volatile("ld.global.v4.u32 {%0, %1, %2, %3}, [%4];"
		: "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(ptr) : "memory");
	return v;
#else
	HOST_SHIM_CHECK_ALIGNED(ptr, 16, "packet load");
	return *ptr;
#endif
}

static __device__ __forceinline__ void storePacket(uint4 *ptr, const uint4 &v)
{
	HOST_SHIM_CHECK_ALIGNED(ptr, 16, "packet store");
	*ptr = v;
}

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

/* The 16-bit types go word by word: each 32-bit word of a packet holds one pair, converted through the pair
   type. Bits move by value (no pointer casts), so the host build of the tests is free of aliasing traps. */
template <typename Pair, typename Half, typename Traits> struct PairPacket
{
	static const int width = 8;

	static __device__ __forceinline__ void unpackWord(unsigned int word, float *out)
	{
		Pair pair = Traits::pair(Traits::fromBits((unsigned short)(word & 0xffff)), Traits::fromBits((unsigned short)(word >> 16)));
		float2 f = Traits::toFloat2(pair);
		out[0] = f.x; out[1] = f.y;
	}

	static __device__ __forceinline__ unsigned int packWord(const float *in)
	{
		Pair pair = Traits::fromFloats(in[0], in[1]);
		return (unsigned int)Traits::toBits(Traits::low(pair)) | ((unsigned int)Traits::toBits(Traits::high(pair)) << 16);
	}

	static __device__ __forceinline__ void unpack(const uint4 &raw, float *out)
	{
		unpackWord(raw.x, out); unpackWord(raw.y, out + 2); unpackWord(raw.z, out + 4); unpackWord(raw.w, out + 6);
	}

	static __device__ __forceinline__ uint4 pack(const float *in)
	{
		return make_uint4(packWord(in), packWord(in + 2), packWord(in + 4), packWord(in + 6));
	}
};

struct HalfTraits
{
	static __device__ __forceinline__ __half fromBits(unsigned short b) { return __ushort_as_half(b); }
	static __device__ __forceinline__ unsigned short toBits(__half h) { return __half_as_ushort(h); }
	static __device__ __forceinline__ __half2 pair(__half lo, __half hi) { return __halves2half2(lo, hi); }
	static __device__ __forceinline__ __half low(__half2 p) { return __low2half(p); }
	static __device__ __forceinline__ __half high(__half2 p) { return __high2half(p); }
	static __device__ __forceinline__ float2 toFloat2(__half2 p) { return __half22float2(p); }
	static __device__ __forceinline__ __half2 fromFloats(float a, float b) { return __floats2half2_rn(a, b); }
};

struct Bfloat16Traits
{
	static __device__ __forceinline__ __nv_bfloat16 fromBits(unsigned short b) { return __ushort_as_bfloat16(b); }
	static __device__ __forceinline__ unsigned short toBits(__nv_bfloat16 h) { return __bfloat16_as_ushort(h); }
	static __device__ __forceinline__ __nv_bfloat162 pair(__nv_bfloat16 lo, __nv_bfloat16 hi) { return __halves2bfloat162(lo, hi); }
	static __device__ __forceinline__ __nv_bfloat16 low(__nv_bfloat162 p) { return __low2bfloat16(p); }
	static __device__ __forceinline__ __nv_bfloat16 high(__nv_bfloat162 p) { return __high2bfloat16(p); }
	static __device__ __forceinline__ float2 toFloat2(__nv_bfloat162 p) { return __bfloat1622float2(p); }
	static __device__ __forceinline__ __nv_bfloat162 fromFloats(float a, float b) { return __floats2bfloat162_rn(a, b); }
};

/* float16 storage, float32 math, converted pairwise through __half2. */
template <> struct Packet<__half> : PairPacket<__half2, __half, HalfTraits>
{
	static __device__ __forceinline__ float load(__half x) { return __half2float(x); }
	static __device__ __forceinline__ __half store(float x) { return __float2half_rn(x); }
};

/* bfloat16 storage, float32 math, converted pairwise through __nv_bfloat162. */
template <> struct Packet<__nv_bfloat16> : PairPacket<__nv_bfloat162, __nv_bfloat16, Bfloat16Traits>
{
	static __device__ __forceinline__ float load(__nv_bfloat16 x) { return __bfloat162float(x); }
	static __device__ __forceinline__ __nv_bfloat16 store(float x) { return __float2bfloat16_rn(x); }
};


template <typename T, typename F>
__device__ __forceinline__ void applyScalar(const TensorEntry &e, long long i, const F &f)
{
	T *param = (T *)e.param + i, *ms = (T *)e.ms + i;
	const T *grad = (const T *)e.grad + i;
	ASSUME_GLOBAL(param); ASSUME_GLOBAL(grad); ASSUME_GLOBAL(ms);

	HOST_SHIM_TRACE(scalars);
	float p = Packet<T>::load(*param), m = Packet<T>::load(*ms);
	f(p, Packet<T>::load(*grad), m, e.learnRate);
	*param = Packet<T>::store(p);
	*ms = Packet<T>::store(m);
}


template <typename T, typename F>
__device__ __forceinline__ void applyPacket(const TensorEntry &e, long long i, const F &f)
{
	const int W = Packet<T>::width;
	uint4 *param = (uint4 *)((T *)e.param + i), *ms = (uint4 *)((T *)e.ms + i);
	const uint4 *grad = (const uint4 *)((const T *)e.grad + i);

	ASSUME_GLOBAL(param); ASSUME_GLOBAL(grad); ASSUME_GLOBAL(ms);

	HOST_SHIM_TRACE(packets);
	float p[W], g[W], m[W];
	Packet<T>::unpack(loadPacket(param), p);
	Packet<T>::unpack(__ldg(grad), g);
	Packet<T>::unpack(loadPacket(ms), m);

	#pragma unroll
	for (int j = 0; j < W; j++)
		f(p[j], g[j], m[j], e.learnRate);

	storePacket(param, Packet<T>::pack(p));
	storePacket(ms, Packet<T>::pack(m));
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
