/* Devices and contexts: plausible devices (their names say they are emulated), as many of them as CUDA_EMU_DEVICES
 * says, of the compute capability CUDA_EMU_COMPUTE_CAPABILITY gives (9.0 by default) with that architecture's per-SM
 * limits, those CUDA_VISIBLE_DEVICES lists visible (renumbered from 0, as the driver does), reference-counted
 * primary contexts and a per-thread context stack. */
#include <cstdio>
#include <cstring>

#include "emu.h"

namespace emu
{

static bool ready = false;
static std::vector<Context *> primaries;
static thread_local std::vector<Context *> stack;

bool initialized() { return ready; }

CUresult current(Context **out, const char *caller)
{
	if (!ready)
		return fail(CUDA_ERROR_NOT_INITIALIZED, "%s: cuInit was not called", caller);
	if (stack.empty())
		return fail(CUDA_ERROR_INVALID_CONTEXT, "%s: this thread has no current context", caller);
	if (stack.back()->destroyed)
		return fail(CUDA_ERROR_CONTEXT_IS_DESTROYED, "%s: the current context was destroyed", caller);
	*out = stack.back();
	return CUDA_SUCCESS;
}

}

using namespace emu;

#define REQUIRE_INIT(caller) if (!ready) return fail(CUDA_ERROR_NOT_INITIALIZED, "%s: cuInit was not called", caller)
/* cuInit was called and ``dev`` exists */
#define REQUIRE_DEVICE(caller, dev) \
	REQUIRE_INIT(caller); \
	if ((dev) < 0 || (dev) >= settings.devices) \
		return fail(CUDA_ERROR_INVALID_DEVICE, "%s: device %d does not exist (%d emulated; CUDA_EMU_DEVICES sets it)", \
					caller, (int)(dev), settings.devices)

static const size_t TOTAL_MEMORY = 80ull << 30;

static int attribute(CUdevice_attribute a)
{
	switch (a)
	{
	case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: return settings.multiprocessors;
	case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: return settings.ccMajor;
	case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: return settings.ccMinor;
	case CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR: return architecture().blocksPerSM;
	case CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR: return architecture().registersPerSM;
	case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: return architecture().sharedPerBlockOptin;
	case CU_DEVICE_ATTRIBUTE_RESERVED_SHARED_MEMORY_PER_BLOCK: return settings.ccMajor >= 8 ? 1024 : 0;
	case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK: return 1024;
	case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X: case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y: return 1024;
	case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z: return 64;
	case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X: return 2147483647;
	case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y: case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z: return 65535;
	case CU_DEVICE_ATTRIBUTE_WARP_SIZE: return 32;
	case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK: return 49152;
	case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR: return architecture().sharedPerSM;
	case CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY: return 65536;
	case CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK: return 65536;
	case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR: return architecture().threadsPerSM;
	case CU_DEVICE_ATTRIBUTE_CLOCK_RATE: return 1980000;
	case CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE: return 2619000;
	case CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH: return 5120;
	case CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE: return 50 << 20;
	case CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING: case CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY: return 1;
	case CU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS: return 1;
	case CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT: return 2;
	case CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT: return 512;
	default: return 0;
	}
}

extern "C" {

CUresult cuInit(unsigned int flags)
{
	EMU_LOCKED;
	if (flags != 0)
		return fail(CUDA_ERROR_INVALID_VALUE, "cuInit: flags must be 0, got %u", flags);
	if (!ready)
	{
		readSettings();
		primaries.assign(settings.devices, nullptr);
		ready = true;
	}
	return CUDA_SUCCESS;
}

CUresult cuDriverGetVersion(int *version)
{
	*version = CUDA_VERSION;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int *count)
{
	REQUIRE_INIT("cuDeviceGetCount");
	*count = settings.devices;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice *device, int ordinal)
{
	REQUIRE_DEVICE("cuDeviceGet", ordinal);
	*device = ordinal;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetName(char *name, int len, CUdevice dev)
{
	REQUIRE_DEVICE("cuDeviceGetName", dev);
	std::snprintf(name, len, "Emulated CUDA device %d (sm_%d%d, runs on the host CPU)", settings.visible[dev],
				  settings.ccMajor, settings.ccMinor);
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetAttribute(int *value, CUdevice_attribute attrib, CUdevice dev)
{
	REQUIRE_DEVICE("cuDeviceGetAttribute", dev);
	if (attrib == CU_DEVICE_ATTRIBUTE_PCI_BUS_ID)
		*value = settings.visible[dev] + 1;
	else if ((int)attrib <= 0 || attrib >= CU_DEVICE_ATTRIBUTE_MAX)
		return fail(CUDA_ERROR_INVALID_VALUE, "cuDeviceGetAttribute: no attribute %d", (int)attrib);
	else
		*value = attribute(attrib);
	return CUDA_SUCCESS;
}

CUresult cuDeviceComputeCapability(int *major, int *minor, CUdevice dev)
{
	REQUIRE_DEVICE("cuDeviceComputeCapability", dev);
	*major = settings.ccMajor, *minor = settings.ccMinor;
	return CUDA_SUCCESS;
}

CUresult cuDeviceTotalMem(size_t *bytes, CUdevice dev)
{
	REQUIRE_DEVICE("cuDeviceTotalMem", dev);
	*bytes = TOTAL_MEMORY;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetPCIBusId(char *pciBusId, int len, CUdevice dev)
{
	REQUIRE_DEVICE("cuDeviceGetPCIBusId", dev);
	std::snprintf(pciBusId, len, "0000:%02x:00.0", settings.visible[dev] + 1);
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetByPCIBusId(CUdevice *dev, const char *pciBusId)
{
	REQUIRE_INIT("cuDeviceGetByPCIBusId");
	unsigned domain = 0, bus = 0;
	if (std::sscanf(pciBusId, "%x:%x", &domain, &bus) == 2)
		for (int i = 0; i < settings.devices; i++)
			if (settings.visible[i] + 1 == (int)bus)
			{
				*dev = (CUdevice)i;
				return CUDA_SUCCESS;
			}
	return fail(CUDA_ERROR_INVALID_VALUE, "cuDeviceGetByPCIBusId: no visible device at %s", pciBusId);
}

CUresult cuDeviceCanAccessPeer(int *canAccessPeer, CUdevice dev, CUdevice peerDev)
{
	REQUIRE_DEVICE("cuDeviceCanAccessPeer", dev);
	REQUIRE_DEVICE("cuDeviceCanAccessPeer", peerDev);
	*canAccessPeer = 0;  /* kernels may only touch their own device's memory */
	return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)
{
	EMU_LOCKED;
	REQUIRE_DEVICE("cuDevicePrimaryCtxRetain", dev);
	Context *&ctx = primaries[dev];
	if (ctx == nullptr)
		ctx = new Context{dev, true, false, 0};
	if (ctx->refs == 0)
		ctx->destroyed = false;
	ctx->refs++;
	*pctx = reinterpret_cast<CUcontext>(ctx);
	return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease(CUdevice dev)
{
	EMU_LOCKED;
	REQUIRE_DEVICE("cuDevicePrimaryCtxRelease", dev);
	Context *ctx = primaries[dev];
	if (ctx == nullptr || ctx->refs == 0)
		return fail(CUDA_ERROR_INVALID_CONTEXT, "cuDevicePrimaryCtxRelease: device %d's primary context is not retained", (int)dev);
	if (--ctx->refs == 0)
	{
		drainAll();
		ctx->destroyed = true;
	}
	return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int *flags, int *active)
{
	EMU_LOCKED;
	REQUIRE_DEVICE("cuDevicePrimaryCtxGetState", dev);
	*flags = 0;
	*active = primaries[dev] != nullptr && primaries[dev]->refs > 0;
	return CUDA_SUCCESS;
}

CUresult cuCtxCreate(CUcontext *pctx, CUctxCreateParams *, unsigned int, CUdevice dev)
{
	EMU_LOCKED;
	REQUIRE_DEVICE("cuCtxCreate", dev);
	Context *ctx = new Context{dev, false, false, 1};
	stack.push_back(ctx);
	*pctx = reinterpret_cast<CUcontext>(ctx);
	return CUDA_SUCCESS;
}

static CUresult destroy(Context *ctx, const char *caller)
{
	if (ctx == nullptr || ctx->primary)
		return fail(CUDA_ERROR_INVALID_CONTEXT, "%s: not a context created by cuCtxCreate", caller);
	drainAll();
	ctx->destroyed = true;
	if (!stack.empty() && stack.back() == ctx)
		stack.pop_back();
	return CUDA_SUCCESS;
}

CUresult cuCtxDestroy(CUcontext handle)
{
	EMU_LOCKED;
	return destroy(reinterpret_cast<Context *>(handle), "cuCtxDestroy");
}

CUresult cuCtxAttach(CUcontext *pctx, unsigned int)
{
	EMU_LOCKED;
	Context *ctx;
	if (CUresult e = current(&ctx, "cuCtxAttach"))
		return e;
	ctx->refs++;
	*pctx = reinterpret_cast<CUcontext>(ctx);
	return CUDA_SUCCESS;
}

CUresult cuCtxDetach(CUcontext handle)
{
	EMU_LOCKED;
	Context *ctx = reinterpret_cast<Context *>(handle);
	if (ctx == nullptr)
		return fail(CUDA_ERROR_INVALID_CONTEXT, "cuCtxDetach: null context");
	/* pycuda's primary_context destructor reaches the base class's cuCtxDetach (a virtual call in a destructor):
	   for a primary context that means releasing it */
	if (ctx->primary)
		return cuDevicePrimaryCtxRelease(ctx->device);
	return --ctx->refs == 0 ? destroy(ctx, "cuCtxDetach") : CUDA_SUCCESS;
}

CUresult cuCtxPushCurrent(CUcontext handle)
{
	EMU_LOCKED;
	if (handle == nullptr)
		return fail(CUDA_ERROR_INVALID_CONTEXT, "cuCtxPushCurrent: null context");
	stack.push_back(reinterpret_cast<Context *>(handle));
	return CUDA_SUCCESS;
}

CUresult cuCtxPopCurrent(CUcontext *pctx)
{
	EMU_LOCKED;
	if (stack.empty())
		return fail(CUDA_ERROR_INVALID_CONTEXT, "cuCtxPopCurrent: this thread's context stack is empty");
	if (pctx)
		*pctx = reinterpret_cast<CUcontext>(stack.back());
	stack.pop_back();
	return CUDA_SUCCESS;
}

CUresult cuCtxGetCurrent(CUcontext *pctx)
{
	*pctx = stack.empty() ? nullptr : reinterpret_cast<CUcontext>(stack.back());
	return CUDA_SUCCESS;
}

CUresult cuCtxSetCurrent(CUcontext handle)
{
	EMU_LOCKED;
	if (!stack.empty())
		stack.pop_back();
	if (handle != nullptr)
		stack.push_back(reinterpret_cast<Context *>(handle));
	return CUDA_SUCCESS;
}

CUresult cuCtxGetDevice(CUdevice *device)
{
	Context *ctx;
	if (CUresult e = current(&ctx, "cuCtxGetDevice"))
		return e;
	*device = ctx->device;
	return CUDA_SUCCESS;
}

CUresult cuCtxGetApiVersion(CUcontext, unsigned int *version)
{
	*version = 3020;
	return CUDA_SUCCESS;
}

CUresult cuCtxGetFlags(unsigned int *flags)
{
	*flags = 0;
	return CUDA_SUCCESS;
}

CUresult cuCtxGetLimit(size_t *value, CUlimit)
{
	*value = 0;
	return CUDA_SUCCESS;
}

CUresult cuCtxSetCacheConfig(CUfunc_cache) { return CUDA_SUCCESS; }

CUresult cuCtxGetCacheConfig(CUfunc_cache *config)
{
	*config = CU_FUNC_CACHE_PREFER_NONE;
	return CUDA_SUCCESS;
}

}
