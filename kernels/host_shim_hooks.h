/* The emulator's hooks in the CUDA kernels, empty unless a host build defines them first
 * (tests/cuda_on_host/cuda_host_shim.h): it counts the path each iteration takes and checks the 16-byte alignment
 * x86 would forgive, and runs the kernels that need their warps in lockstep (shuffles) lane by lane.
 */
#ifndef PUZZLELIB_RMSPROP_HOST_SHIM_HOOKS_H
#define PUZZLELIB_RMSPROP_HOST_SHIM_HOOKS_H

#ifndef HOST_SHIM_WARP_KERNEL
#define HOST_SHIM_WARP_KERNEL(kernel)
#endif

#ifndef HOST_SHIM_TRACE
#define HOST_SHIM_TRACE(path) ((void)0)
#define HOST_SHIM_CHECK_ALIGNED(ptr, bytes, what) ((void)0)
#endif

#endif
