/* kernels/rmsprop.cu itself, compiled by the host compiler through the shim, with C entry points for ctypes. */
#include "cuda_host_shim.h"
#include "rmsprop.cu"
#include "host_guard.h"


extern "C" void hostRmsprop(int dtype, const TensorEntry *table, int count, float factor, float epsilon,
							unsigned int grid, unsigned int block)
{
	RMSPropFlavour f = {factor, epsilon};
	if (dtype == 0)
		guardedLaunch(grid, block, rmspropFloat32, table, count, f);
	else if (dtype == 1)
		guardedLaunch(grid, block, rmspropFloat16, table, count, f);
	else
		guardedLaunch(grid, block, rmspropBfloat16, table, count, f);
}

extern "C" void hostWeightDecay(float *grad, const float *param, float rate, long long size, unsigned int grid, unsigned int block)
{
	guardedLaunch(grid, block, decayGradFloat32, grad, param, rate, size);
}

extern "C" int hostNonFinite(int dtype, const TensorEntry *table, int count, unsigned int grid, unsigned int block)
{
	int flag = 0;
	if (dtype == 0)
		guardedLaunch(grid, block, nonFiniteFloat32, table, count, &flag);
	else if (dtype == 1)
		guardedLaunch(grid, block, nonFiniteFloat16, table, count, &flag);
	else
		guardedLaunch(grid, block, nonFiniteBfloat16, table, count, &flag);
	return flag;
}

extern "C" void hostFlavour(int combo, const FlavourEntry *table, int count, float factor, float epsilon, float weightDecay,
							int centered, int epsilonInSqrt, int momentumMode, unsigned int grid, unsigned int block)
{
	decltype(&flavourFloat32) kernels[] = {flavourFloat32, flavourFloat16, flavourFloat16State32, flavourBfloat16,
										   flavourBfloat16State32};
	RMSPropFlavour f = {factor, epsilon, weightDecay, centered, epsilonInSqrt, momentumMode};
	guardedLaunch(grid, block, kernels[combo], table, count, f);
}

extern "C" void hostQuant8(int dtype, const Quant8Entry *table, int count, float factor, float epsilon, float weightDecay,
						   int epsilonInSqrt, int momentumMode, unsigned int grid, unsigned int block)
{
	decltype(&quant8Float32) kernels[] = {quant8Float32, quant8Float16, quant8Bfloat16};
	RMSPropFlavour f = {factor, epsilon, weightDecay, 0, epsilonInSqrt, momentumMode};
	guardedLaunch(grid, block, kernels[dtype], table, count, f);
}
