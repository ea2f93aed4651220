/* Error reporting and settings. A failing call records its detail, and cuGetErrorString returns that detail for
 * the code it failed with, so pycuda's exception says what was wrong ("cuMemcpyHtoD failed: ... is not device
 * memory") rather than only "invalid argument". */
#include <cstdarg>
#include <cstdio>
#include <cstdlib>

#include "emu.h"

namespace emu
{

std::recursive_mutex lock;
Settings settings;

static thread_local CUresult lastCode = CUDA_SUCCESS;
static thread_local std::string lastDetail;

CUresult fail(CUresult code, const char *format, ...)
{
	char buffer[1024];
	va_list args;
	va_start(args, format);
	vsnprintf(buffer, sizeof(buffer), format, args);
	va_end(args);

	lastCode = code;
	lastDetail = std::string(buffer) + " [emulated CUDA driver]";
	if (std::getenv("CUDA_EMU_VERBOSE"))
		std::fprintf(stderr, "cuda_emu: %s\n", buffer);
	return code;
}

static int envInt(const char *name, int fallback)
{
	const char *value = std::getenv(name);
	return value && *value ? std::atoi(value) : fallback;
}

void readSettings()
{
	settings.devices = envInt("CUDA_EMU_DEVICES", 1);
	settings.multiprocessors = envInt("CUDA_EMU_MULTIPROCESSORS", 132);
	settings.deferred = envInt("CUDA_EMU_DEFERRED", 0) != 0;
	settings.seed = (unsigned long long)envInt("CUDA_EMU_SEED", 1);

	std::string order = std::getenv("CUDA_EMU_BLOCK_ORDER") ? std::getenv("CUDA_EMU_BLOCK_ORDER") : "forward";
	settings.blockOrder = order == "reverse" ? 1 : order == "shuffle" ? 2 : 0;

	const char *cache = std::getenv("CUDA_EMU_CACHE");
	settings.cacheDir = cache ? cache : "";
}

}

using namespace emu;

static const char *genericName(CUresult code)
{
	switch (code)
	{
	case CUDA_SUCCESS: return "no error";
	case CUDA_ERROR_INVALID_VALUE: return "invalid argument";
	case CUDA_ERROR_OUT_OF_MEMORY: return "out of memory";
	case CUDA_ERROR_NOT_INITIALIZED: return "initialization error";
	case CUDA_ERROR_INVALID_DEVICE: return "invalid device ordinal";
	case CUDA_ERROR_INVALID_IMAGE: return "device kernel image is invalid";
	case CUDA_ERROR_INVALID_CONTEXT: return "invalid device context";
	case CUDA_ERROR_INVALID_HANDLE: return "invalid resource handle";
	case CUDA_ERROR_NOT_FOUND: return "named symbol not found";
	case CUDA_ERROR_NOT_READY: return "device not ready";
	case CUDA_ERROR_ILLEGAL_ADDRESS: return "an illegal memory access was encountered";
	case CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES: return "too many resources requested for launch";
	case CUDA_ERROR_CONTEXT_IS_DESTROYED: return "context is destroyed";
	case CUDA_ERROR_MISALIGNED_ADDRESS: return "misaligned address";
	case CUDA_ERROR_NOT_SUPPORTED: return "operation not supported";
	default: return "unknown error";
	}
}

extern "C" {

CUresult cuGetErrorString(CUresult error, const char **pStr)
{
	if (!pStr)
		return CUDA_ERROR_INVALID_VALUE;
	*pStr = error == lastCode && error != CUDA_SUCCESS ? lastDetail.c_str() : genericName(error);
	return CUDA_SUCCESS;
}

CUresult cuGetErrorName(CUresult error, const char **pStr)
{
	if (!pStr)
		return CUDA_ERROR_INVALID_VALUE;
	*pStr = genericName(error);
	return CUDA_SUCCESS;
}

/* Every driver entry point the emulator does not implement ends here (tests/cuda_emu/build.py generates them). */
CUresult cudaEmuUnimplemented(const char *name)
{
	std::fprintf(stderr, "cuda_emu: %s is not implemented by the emulated CUDA driver\n", name);
	return fail(CUDA_ERROR_NOT_SUPPORTED, "%s is not implemented by the emulated CUDA driver", name);
}

/* The detail of this thread's last failure, for the tests. */
const char *cudaEmuLastError(void)
{
	return lastDetail.c_str();
}

/* Both return the previous setting, so a test can restore it. */
int cudaEmuSetDeferred(int deferred)
{
	EMU_LOCKED;
	int previous = settings.deferred;
	drainAll();
	settings.deferred = deferred != 0;
	return previous;
}

int cudaEmuSetBlockOrder(int order, unsigned long long seed)
{
	EMU_LOCKED;
	int previous = settings.blockOrder;
	settings.blockOrder = order;
	settings.seed = seed;
	return previous;
}

}
