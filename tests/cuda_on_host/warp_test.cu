/* Kernels for the warp-synchronous host execution (cuda_host_shim.h): run on the host by tests/test_cuda_on_host.py
 * (through host_warp.cpp) and, through pycuda, on the emulated driver by tests/cuda_emu/test_driver.py. Every lane
 * stores what it got, so a lane that read an operand too early or too late shows in the results. */
#ifndef HOST_SHIM_WARP_KERNEL
#define HOST_SHIM_WARP_KERNEL(k)
#endif

#define FULL 0xffffffffu

static __device__ unsigned linearThread()
{
	return ((blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x) * (blockDim.x * blockDim.y * blockDim.z) +
		   (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
}

/* Butterfly max (float) and sum (int) of each warp's 32 values, as the 8-bit state kernel reduces its scale. */
extern "C" __global__ void warpReduce(const float *x, const int *k, float *maxOut, int *sumOut)
{
	unsigned i = linearThread();
	float m = x[i];
	int s = k[i];
	for (int o = 16; o > 0; o >>= 1)
	{
		m = fmaxf(m, __shfl_xor_sync(FULL, m, o));
		s += __shfl_xor_sync(FULL, s, o);
	}
	i = linearThread();  /* after the switches: each lane's own threadIdx again */
	maxOut[i] = m;
	sumOut[i] = s;
}
HOST_SHIM_WARP_KERNEL(warpReduce)

#define SHUFFLES 12

/* Each shuffle kind, widths and out-of-range lanes included; then a chain of rotations (each depends on the last). */
extern "C" __global__ void warpShuffles(const unsigned *x, const double *d, unsigned *out, double *dOut, int rotations)
{
	unsigned i = linearThread(), lane = i % 32, v = x[i];
	unsigned *o = out + i * SHUFFLES;
	o[0] = __shfl_sync(FULL, v, 5);
	o[1] = __shfl_sync(FULL, v, lane + 1);
	o[2] = __shfl_sync(FULL, v, 3, 8);
	o[3] = __shfl_xor_sync(FULL, v, 8, 16);
	o[4] = __shfl_xor_sync(FULL, v, 24, 16);
	o[5] = __shfl_up_sync(FULL, v, 3, 16);
	o[6] = __shfl_down_sync(FULL, v, 3, 16);
	o[7] = __ballot_sync(FULL, v & 1);
	o[8] = __all_sync(FULL, v != 0);
	o[9] = __any_sync(FULL, v == 7);
	o[10] = __float_as_uint(__shfl_sync(FULL, __uint_as_float(v), 31 - lane));
	unsigned r = v;
	for (int k = 0; k < rotations; k++)
		r = __shfl_sync(FULL, r, lane + 1);
	o[11] = r;
	dOut[i] = __shfl_xor_sync(FULL, d[i], 1);
}
HOST_SHIM_WARP_KERNEL(warpShuffles)

/* __syncwarp orders memory: every lane reads what its neighbour wrote before the barrier. */
extern "C" __global__ void warpSyncwarp(const float *x, float *scratch, float *out)
{
	unsigned i = linearThread();
	scratch[i] = x[i] * 2.0f;
	__syncwarp();
	out[i] = scratch[i ^ 1];
}
HOST_SHIM_WARP_KERNEL(warpSyncwarp)

/* The lower half of every warp returns before the shuffle: undefined on a GPU, a fault here. */
extern "C" __global__ void warpDiverge(float *x)
{
	unsigned i = linearThread();
	if (i % 32 < 16)
		return;
	x[i] = __shfl_xor_sync(FULL, x[i], 1);
}
HOST_SHIM_WARP_KERNEL(warpDiverge)

/* Half the warp at a shuffle, half at __syncwarp. */
extern "C" __global__ void warpMismatch(float *x)
{
	unsigned i = linearThread();
	if (i % 32 < 16)
		__syncwarp();
	else
		x[i] = __shfl_xor_sync(FULL, x[i], 1);
}
HOST_SHIM_WARP_KERNEL(warpMismatch)

extern "C" __global__ void warpPartialMask(float *x)
{
	unsigned i = linearThread();
	x[i] = __shfl_xor_sync(0x0000ffffu, x[i], 1);
}
HOST_SHIM_WARP_KERNEL(warpPartialMask)

/* A fault inside a lane (a misaligned load) while the other lanes wait at a shuffle. */
extern "C" __global__ void warpFaultInLane(const float *x, float *out)
{
	unsigned i = linearThread();
	const float *p = i % 32 == 7 ? (const float *)((const char *)x + 1) : x + i;
	out[i] = __shfl_xor_sync(FULL, __ldg(p), 1);
}
HOST_SHIM_WARP_KERNEL(warpFaultInLane)

/* Not marked: a shuffle here cannot work on the host. */
extern "C" __global__ void warpUnmarked(float *x)
{
	unsigned i = linearThread();
	x[i] = __shfl_xor_sync(FULL, x[i], 1);
}
