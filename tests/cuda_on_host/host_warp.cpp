/* tests/cuda_on_host/warp_test.cu compiled by the host compiler through the shim, with C entry points for ctypes. */
#include "cuda_host_shim.h"
#include "warp_test.cu"
#include "host_guard.h"


extern "C" void hostWarpReduce(const float *x, const int *k, float *maxOut, int *sumOut, unsigned grid, unsigned block)
{
	guardedLaunch(grid, block, warpReduce, x, k, maxOut, sumOut);
}

extern "C" void hostWarpShuffles(const unsigned *x, const double *d, unsigned *out, double *dOut, int rotations,
								 unsigned grid, unsigned block)
{
	guardedLaunch(grid, block, warpShuffles, x, d, out, dOut, rotations);
}

extern "C" void hostWarpSyncwarp(const float *x, float *scratch, float *out, unsigned grid, unsigned block)
{
	guardedLaunch(grid, block, warpSyncwarp, x, scratch, out);
}

/* The kernels that must fault, by name: one float array each (warpFaultInLane: in and out). */
extern "C" void hostWarpFaulting(const char *name, float *x, float *out, unsigned grid, unsigned block)
{
	std::string kernel = name;
	if (kernel == "warpDiverge")
		guardedLaunch(grid, block, warpDiverge, x);
	else if (kernel == "warpMismatch")
		guardedLaunch(grid, block, warpMismatch, x);
	else if (kernel == "warpPartialMask")
		guardedLaunch(grid, block, warpPartialMask, x);
	else if (kernel == "warpFaultInLane")
		guardedLaunch(grid, block, warpFaultInLane, (const float *)x, out);
	else
		guardedLaunch(grid, block, warpUnmarked, x);
}
