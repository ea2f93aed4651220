/* The ctypes libraries' launches (host_launch.cpp, host_warp.cpp): a fault (a misaligned packet, a divergent warp)
 * ends the launch and is kept for the test to read through hostLastFault(), instead of aborting the process. */
#ifndef CUDA_HOST_GUARD_H
#define CUDA_HOST_GUARD_H

#include <string>

#include "cuda_host_shim.h"

static thread_local std::string lastFault;

extern "C" const char *hostLastFault(void) { return lastFault.empty() ? nullptr : lastFault.c_str(); }

template <typename... Args>
static void guardedLaunch(Args... args)
{
	lastFault.clear();
	try { launchOnHost(args...); }
	catch (const HostShimFault &e) { lastFault = e.what(); }
}

#endif
