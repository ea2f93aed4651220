/* The interface between the emulated driver (libcuda.so.1) and the host builds of the kernels it loads.
 * A host build (written by tests/cuda_emu/nvcc, see kernel_host.h) exports cudaEmuKernelTable(): one EmuKernel per
 * extern "C" kernel of the cubin, describing the kernel's real C++ parameters and running its grid. Plain C, so
 * both sides agree on the layout whatever compiled them. */
#ifndef CUDA_EMU_ABI_H
#define CUDA_EMU_ABI_H

#include <stddef.h>

#define EMU_ABI_VERSION 2
#define EMU_MAX_ARGS 32

typedef struct
{
	unsigned grid[3], block[3];
	const unsigned long long *blockOrder; /* every linear block index once, in the order to run them */
	const unsigned char *args;            /* the arguments, each at its offset in EmuKernel */
	unsigned long long packets, scalars;  /* out: 128-bit packet and scalar iterations (kernels that trace them) */
	unsigned long long rows;              /* out: table rows read, probes included (kernels that trace them) */
	int code;                             /* out: 0, or the CUresult of a fault */
	char error[512];                      /* out: what faulted */
}
EmuRun;

typedef struct
{
	const char *name;
	const char *paramTypes;               /* the C++ parameter list, e.g. "const TensorEntry*, int, float, float" */
	int argCount;
	size_t argBytes;                      /* as Python's struct packs them in native alignment, no trailing padding */
	size_t offsets[EMU_MAX_ARGS], sizes[EMU_MAX_ARGS];
	unsigned char isPointer[EMU_MAX_ARGS];
	void (*run)(EmuRun *run);
}
EmuKernel;

typedef const EmuKernel *(*EmuKernelTableFn)(int *count, int *abiVersion);

#endif
