/* Just enough of CUDA to compile kernels/*.cu (and pycuda's generated kernels) as plain C++ and run a grid on
 * the host, block by block and thread by thread. Exact for kernels without shared memory, __syncthreads, warp
 * intrinsics or atomics: those are compile errors here until a kernel needs them.
 * CUDA's own headers supply __half, __nv_bfloat16, uint4 and their host conversions.
 * Used by tests/test_cuda_on_host.py and by the host builds of the emulated driver (tests/cuda_emu). */
#ifndef CUDA_HOST_SHIM_H
#define CUDA_HOST_SHIM_H

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

#include <vector_types.h>
#include <vector_functions.h>

#ifndef __global__
#define __global__
#endif
#define __launch_bounds__(...)
#define __shared__ __shared___is_not_supported_by_the_host_shim
#define __syncthreads() __syncthreads_is_not_supported_by_the_host_shim
#define __syncwarp(...) __syncwarp_is_not_supported_by_the_host_shim
#define atomicAdd(...) atomicAdd_is_not_supported_by_the_host_shim

struct HostDim3 { unsigned int x, y, z; };
/* thread_local: two host threads may run grids at once (the emulated driver serializes launches, the host tests
   do not launch concurrently, but nothing here should depend on that) */
static thread_local HostDim3 threadIdx, blockIdx, blockDim, gridDim;

using std::min;
using std::max;

/* What a kernel did that a GPU would fault on; the launcher reports it instead of crashing the process. */
struct HostShimFault : std::runtime_error
{
	int code;  /* the CUresult a GPU would give: 716 misaligned address */
	HostShimFault(int c, const std::string &what) : std::runtime_error(what), code(c) { }
};

/* Iterations of the 128-bit packet path and of the scalar path (multi_tensor_apply.cuh traces them), per host
   thread, reset by each launch. */
struct HostShimCounters { unsigned long long packets, scalars; };
static thread_local HostShimCounters hostShimCounters;

static inline void hostShimCheckAligned(const void *ptr, size_t bytes, const char *what)
{
	if ((uintptr_t)ptr % bytes != 0)
	{
		char message[160];
		std::snprintf(message, sizeof(message), "misaligned %zu-byte %s at %p (block %u, thread %u)", bytes, what, ptr,
					  blockIdx.x, threadIdx.x);
		throw HostShimFault(716, message);
	}
}

#define HOST_SHIM_TRACE(path) (hostShimCounters.path++)
#define HOST_SHIM_CHECK_ALIGNED(ptr, bytes, what) hostShimCheckAligned(ptr, bytes, what)

static inline float __uint_as_float(unsigned int u) { float f; std::memcpy(&f, &u, sizeof(f)); return f; }
static inline unsigned int __float_as_uint(float f) { unsigned int u; std::memcpy(&u, &f, sizeof(u)); return u; }

template <typename T> static inline T __ldg(const T *ptr)
{
	HOST_SHIM_CHECK_ALIGNED(ptr, alignof(T), "load");
	return *ptr;
}

/* Sets the built-in index variables for linear block ``b`` and thread ``t`` of a (possibly 3-D) launch. */
static inline void hostShimSetIndex(unsigned long long b, unsigned int t)
{
	blockIdx = {(unsigned int)(b % gridDim.x), (unsigned int)(b / gridDim.x % gridDim.y),
				(unsigned int)(b / gridDim.x / gridDim.y)};
	threadIdx = {t % blockDim.x, t / blockDim.x % blockDim.y, t / blockDim.x / blockDim.y};
}

/* Runs kernel(args...) for every (block, thread) of a 1-D grid, in order. A fault becomes a HostShimFault. */
template <typename Kernel, typename... Args>
static void launchOnHost(unsigned int grid, unsigned int block, Kernel kernel, Args... args)
{
	gridDim = {grid, 1, 1};
	blockDim = {block, 1, 1};
	for (unsigned int b = 0; b < grid; b++)
		for (unsigned int t = 0; t < block; t++)
		{
			hostShimSetIndex(b, t);
			kernel(args...);
		}
}

#endif
