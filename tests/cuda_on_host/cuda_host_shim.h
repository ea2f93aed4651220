/* Just enough of CUDA to compile kernels/*.cu as plain C++ and run a grid on the host, block by block and
 * thread by thread. Exact for kernels without shared memory or __syncthreads (ours have neither).
 * CUDA's own headers supply __half, __nv_bfloat16, uint4 and their host conversions. */
#ifndef CUDA_HOST_SHIM_H
#define CUDA_HOST_SHIM_H

#include <algorithm>
#include <cmath>
#include <cstring>

#include <vector_types.h>
#include <vector_functions.h>

#ifndef __global__
#define __global__
#endif
#define __launch_bounds__(...)

struct HostDim3 { unsigned int x, y, z; };
static HostDim3 threadIdx, blockIdx, blockDim, gridDim;

using std::min;

static inline float __uint_as_float(unsigned int u) { float f; std::memcpy(&f, &u, sizeof(f)); return f; }
static inline unsigned int __float_as_uint(float f) { unsigned int u; std::memcpy(&u, &f, sizeof(u)); return u; }
template <typename T> static inline T __ldg(const T *ptr) { return *ptr; }

/* Runs kernel(args...) for every (block, thread) of a 1-D grid, in order. */
template <typename Kernel, typename... Args>
static void launchOnHost(unsigned int grid, unsigned int block, Kernel kernel, Args... args)
{
	gridDim = {grid, 1, 1};
	blockDim = {block, 1, 1};
	for (unsigned int b = 0; b < grid; b++)
		for (unsigned int t = 0; t < block; t++)
		{
			blockIdx = {b, 0, 0};
			threadIdx = {t, 0, 0};
			kernel(args...);
		}
}

#endif
