/* Multi-tensor bookkeeping for the CUDA kernels, apart from the math (apex's multi_tensor_apply idea).
 * A functor F states only the per-element update: F(float &param, float grad, float &ms, float learnRate).
 * This file deals the table's units to the threads (visitRows: each thread reads only its own rows), with 64-bit
 * indices and 16-byte packets (4 floats, or 8 halves / bfloat16s); a scalar head brings the pointers to 16-byte
 * alignment and a scalar tail finishes the row. Rows whose three pointers are misaligned differently take the
 * scalar path whole.
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

/* A 128-bit global store, written out for the same reason: in the 8-bit kernel, whose rows the threads find
   themselves, NVVM split one of a lane's two plain uint4 stores into four 32-bit ones (seen in sm_75's SASS). */
static __device__ __forceinline__ void storePacket(uint4 *ptr, const uint4 &v)
{
#ifdef __CUDA_ARCH__
	asm volatile("st.global.v4.u32 [%0], {%1, %2, %3, %4};"
		:: "l"(ptr), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w) : "memory");
#else
	HOST_SHIM_CHECK_ALIGNED(ptr, 16, "packet store");
	*ptr = v;
#endif
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


/* ---- Which rows a thread reads ----
 * A launch's work is a flat list of units, row after row; a row's firstUnit counts the units of the rows before it
 * (the Python side fills it). Thread (or warp) r takes units r, r + stride, ...: it finds the row of its first unit
 * by a search over firstUnit (rowOfUnit), works through that row, and searches again, from the next row, only when
 * it steps past the row's end. So a thread reads the rows it works on and a few probes for each, never every row of
 * the table, and consecutive threads take consecutive units whatever the rows' sizes. */

template <typename Row>
__device__ __forceinline__ long long firstUnitOf(const Row *table, int k)
{
	HOST_SHIM_TRACE(rows);
	return table[k].firstUnit;
}

/* The last row in [lo, count) whose first unit is at most u (row lo's is), given the launch's total. The first probe
   interpolates between row lo's first unit and the total (exact when the rows have equal sizes, as a model's many
   small tensors often do), then galloping from it brackets the row and bisection finds it: a probe or two for even
   rows, about 2 log2(distance) for others. */
template <typename Row>
__device__ __forceinline__ int rowOfUnit(const Row *table, int lo, int count, long long u, long long total)
{
	int hi = count - 1;
	long long loFirst = lo > 0 ? firstUnitOf(table, lo) : 0;
	int guess = lo + (int)((float)(u - loFirst) / (float)(total - loFirst) * (float)(count - lo));
	guess = max(lo, min(hi, guess));

	if (firstUnitOf(table, guess) <= u)
		for (int step = 1, probe; (lo = guess) < hi; step *= 2, guess = probe)
		{
			probe = min(hi, guess + step);
			if (firstUnitOf(table, probe) > u)
			{
				hi = probe - 1;
				break;
			}
		}
	else
		for (int step = 1, probe; lo < (hi = guess - 1); step *= 2, guess = probe)
		{
			probe = max(lo, hi - step + 1);
			if (firstUnitOf(table, probe) <= u)
			{
				lo = probe;
				break;
			}
		}

	while (lo < hi)
	{
		int mid = lo + (hi - lo + 1) / 2;
		if (firstUnitOf(table, mid) <= u)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

/* visit(row, j, n) for every row holding units of this thread, which are the row's units j, j + stride, ... below
   n = units(row) (each row has at least one); the thread's units are rank, rank + stride, ... of the launch. visit
   returns the first of them it did not take (at least n). The launch's total is read again after each visit rather
   than kept live across it. The row is the thread's own, in ordinary registers (the walk over every row,
   multiTensorApplyFew, has it in uniform ones): the price of the search in registers. */
template <typename Row, typename Units, typename Visit>
__device__ __forceinline__ void visitRows(const Row *table, int count, long long rank, const Units &units,
										  const Visit &visit)
{
	if (count <= 0)
		return;
	auto total = [&] {
		HOST_SHIM_TRACE(rows);
		return table[count - 1].firstUnit + units(table[count - 1]);
	};

	long long all;
	for (int k = 0; rank < (all = total()); k++)
	{
		k = rowOfUnit(table, k, count, rank, all);
		HOST_SHIM_TRACE(rows);
		const Row e = table[k];
		rank = e.firstUnit + visit(e, rank - e.firstUnit, units(e));
	}
}


/* The units of a TensorEntry row (rowUnitsOf): one per 16-byte packet and one for the scalar head and tail; a row
   whose pointers are misaligned differently takes every n-th element a unit. Both fit in size / W rounded up, plus
   one (the Python side's count, Backend/TensorTable.py). */
template <typename T>
__device__ __forceinline__ long long rowUnits(const TensorEntry &e)
{
	return (e.size + Packet<T>::width - 1) / Packet<T>::width + 1;
}

/* Whether a row's three pointers share their offset from 16 bytes (else it takes the scalar path whole), and its
   scalar head: the elements before the first 16-byte boundary. */
template <typename T>
__device__ __forceinline__ bool packetRow(const TensorEntry &e, long long &head)
{
	unsigned long long mis = (unsigned long long)e.param % 16;
	head = min(e.size, (long long)(((16 - mis) % 16) / sizeof(T)));
	return mis == (unsigned long long)e.grad % 16 && mis == (unsigned long long)e.ms % 16;
}

/* Units j, j + stride, ... of a row (rowUnits), each either a packet or scalars. In a row on the packet grid unit 0
   is the scalar head and tail (the elements before the first 16-byte boundary and after the last whole packet) and
   units 1 to P the packets; in a row off it, unit j takes elements j, j + n, ... (n units: at most W elements each,
   consecutive threads on consecutive elements). scalar(i) and packet(i) do element i's work; one call site each
   keeps the kernel in few registers. Returns the first of those units past the row (visitRows' next unit). */
template <typename T, typename Scalar, typename Packet_>
__device__ __forceinline__ long long rowUnitsOf(const TensorEntry &e, long long j, long long stride, const Scalar &scalar,
												const Packet_ &packet)
{
	const int W = Packet<T>::width;
	long long n = rowUnits<T>(e), head;
	bool aligned = packetRow<T>(e, head);
	long long packets = aligned ? (e.size - head) / W : 0;

	for (; j < n; j += stride)
	{
		if (aligned && j > 0)
		{
			if (j <= packets)
				packet(head + (j - 1) * W);
			continue;
		}
		long long step = aligned ? 1 : n, gapAt = aligned ? head : e.size;
		#pragma unroll 1
		for (long long i = j; i < e.size; i += step)
		{
			if (i == gapAt)
				i += packets * W;  /* past the packets, to the tail */
			if (i < e.size)
				scalar(i);
		}
	}
	return j;
}


/* The update over a table of many rows: each thread finds the rows of its units (visitRows). */
template <typename T, typename F>
__device__ __forceinline__ void multiTensorApply(const TensorEntry *table, int count, const F &f)
{
	long long rank = (long long)blockIdx.x * blockDim.x + threadIdx.x, nthreads = (long long)gridDim.x * blockDim.x;

	auto units = [](const TensorEntry &e) { return rowUnits<T>(e); };
	visitRows(table, count, rank, units, [&](const TensorEntry &e, long long j, long long) {
		return rowUnitsOf<T>(e, j, nthreads, [&](long long i) { applyScalar<T>(e, i, f); },
							 [&](long long i) { applyPacket<T>(e, i, f); });
	});
}

/* One row's elements over all threads, from thread ``rank`` on: the scalar head, the packets, the scalar tail. */
template <typename T, typename F>
__device__ __forceinline__ void applyRow(const TensorEntry &e, long long rank, long long nthreads, const F &f)
{
	const int W = Packet<T>::width;
	long long head;
	if (!packetRow<T>(e, head))
		head = e.size;
	long long packets = (e.size - head) / W, tail = head + packets * W;

	for (long long i = rank; i < head; i += nthreads)
		applyScalar<T>(e, i, f);

	for (long long v = rank; v < packets; v += nthreads)
		applyPacket<T>(e, head + v * W, f);

	for (long long i = tail + rank; i < e.size; i += nthreads)
		applyScalar<T>(e, i, f);
}

/* The update over a table of a few rows (CudaBackend.FEW_ROWS): every thread walks every row. The row is then the
   same for the whole grid, so it lives in uniform registers and the kernel in fewer registers than the search
   (sm_90: 32 against 57, a full wave of 8 blocks per SM instead of 4). Each row starts at a block of its own
   (firstUnit / blockDim), so a few small rows still spread over the grid. */
template <typename T, typename F>
__device__ __forceinline__ void multiTensorApplyFew(const TensorEntry *table, int count, const F &f)
{
	long long nthreads = (long long)gridDim.x * blockDim.x;

	for (int k = 0; k < count; k++)
	{
		HOST_SHIM_TRACE(rows);
		const TensorEntry e = table[k];
		long long block = ((long long)blockIdx.x + e.firstUnit / blockDim.x) % gridDim.x;
		applyRow<T>(e, block * blockDim.x + threadIdx.x, nthreads, f);
	}
}

#endif
