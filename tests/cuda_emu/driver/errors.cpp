/* Error reporting and settings. A failing call records its detail, and cuGetErrorString returns that detail for
 * the code it failed with, so pycuda's exception says what was wrong ("cuMemcpyHtoD failed: ... is not device
 * memory") rather than only "invalid argument". */
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <algorithm>

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

/* CUDA_VISIBLE_DEVICES as the driver reads it: ordinals of the emulated devices, in the order given and
 * renumbered from 0; the list ends at the first entry that is not one (not a number, out of range, or a
 * repeat), so only the devices before it are visible; set but empty, no device is. */
static std::vector<int> visibleDevices(int physical)
{
	std::vector<int> visible;
	const char *list = std::getenv("CUDA_VISIBLE_DEVICES");
	if (list == nullptr)
	{
		for (int i = 0; i < physical; i++)
			visible.push_back(i);
		return visible;
	}
	std::string text(list);
	size_t start = 0;
	while (start <= text.size() && !text.empty())
	{
		size_t end = text.find(',', start);
		std::string entry = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
		size_t a = entry.find_first_not_of(" \t"), b = entry.find_last_not_of(" \t");
		entry = a == std::string::npos ? "" : entry.substr(a, b - a + 1);
		char *rest = nullptr;
		long ordinal = entry.empty() ? -1 : std::strtol(entry.c_str(), &rest, 10);
		bool repeated = std::find(visible.begin(), visible.end(), (int)ordinal) != visible.end();
		if (entry.empty() || *rest != '\0' || ordinal < 0 || ordinal >= physical || repeated)
			break;
		visible.push_back((int)ordinal);
		if (end == std::string::npos)
			break;
		start = end + 1;
	}
	return visible;
}

void readSettings()
{
	settings.visible = visibleDevices(envInt("CUDA_EMU_DEVICES", 1));
	settings.devices = (int)settings.visible.size();
	const char *cc = std::getenv("CUDA_EMU_COMPUTE_CAPABILITY");
	if (cc == nullptr || std::sscanf(cc, "%d.%d", &settings.ccMajor, &settings.ccMinor) != 2)
		settings.ccMajor = 9, settings.ccMinor = 0;
	settings.multiprocessors = envInt("CUDA_EMU_MULTIPROCESSORS", 132);
	settings.deferred = envInt("CUDA_EMU_DEFERRED", 0) != 0;
	settings.seed = (unsigned long long)envInt("CUDA_EMU_SEED", 1);

	std::string order = std::getenv("CUDA_EMU_BLOCK_ORDER") ? std::getenv("CUDA_EMU_BLOCK_ORDER") : "forward";
	settings.blockOrder = order == "reverse" ? 1 : order == "shuffle" ? 2 : 0;

	const char *cache = std::getenv("CUDA_EMU_CACHE");
	settings.cacheDir = cache ? cache : "";
}

const Architecture &architecture()
{
	static const Architecture table[] = {
		/* cc     threads blocks registers shared/SM  shared/block (opt-in) */
		{6, 0,  2048, 32, 65536,  65536,  49152},
		{6, 1,  2048, 32, 65536,  98304,  49152},
		{6, 2,  2048, 32, 65536,  65536,  49152},
		{7, 0,  2048, 32, 65536,  98304,  98304},
		{7, 2,  2048, 32, 65536,  98304,  98304},
		{7, 5,  1024, 16, 65536,  65536,  65536},
		{8, 0,  2048, 32, 65536, 167936, 166912},
		{8, 6,  1536, 16, 65536, 102400, 101376},
		{8, 7,  1536, 16, 65536, 167936, 166912},
		{8, 9,  1536, 24, 65536, 102400, 101376},
		{9, 0,  2048, 32, 65536, 233472, 232448},
		{10, 0, 2048, 32, 65536, 233472, 232448},
		{10, 3, 2048, 32, 65536, 233472, 232448},
		{12, 0, 1536, 32, 65536, 102400, 101376},
		{12, 1, 1536, 32, 65536, 102400, 101376},
	};
	const Architecture *best = &table[0];
	for (const Architecture &a : table)
		if (a.major * 10 + a.minor <= settings.ccMajor * 10 + settings.ccMinor)
			best = &a;
	return *best;
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
