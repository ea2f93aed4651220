/* Device memory: host addresses from one reserved arena, each allocation on pages of its own that end at a guard
 * page, with a map of live and freed allocations. Freed pages become inaccessible (a use-after-free faults) and
 * are never handed out again. Every copy and fill checks its ranges against the map. Pinned host memory is
 * ordinary host memory that the map knows as pinned (so asynchronous copies to it really are asynchronous). */
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "emu.h"

namespace emu
{

static const size_t ARENA_BYTES = 1ull << 40, PAGE = 4096, ALIGNMENT = 256;
static const size_t DEVICE_BYTES = 80ull << 30;  /* what cuMemGetInfo reports as the total */

static uintptr_t arenaBase = 0, arenaNext = 0;
static std::map<uintptr_t, Allocation> live, freed;
static size_t liveDeviceBytes = 0;

static size_t roundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

bool inArena(uintptr_t ptr)
{
	return arenaBase != 0 && ptr >= arenaBase && ptr < arenaBase + ARENA_BYTES;
}

static const Allocation *lookup(const std::map<uintptr_t, Allocation> &map, uintptr_t ptr)
{
	auto it = map.upper_bound(ptr);
	if (it == map.begin())
		return nullptr;
	--it;
	return ptr < it->second.base + std::max<size_t>(it->second.size, 1) ? &it->second : nullptr;
}

const Allocation *find(uintptr_t ptr, size_t bytes, std::string &why)
{
	char text[256];
	const Allocation *a = lookup(live, ptr);
	if (a != nullptr && ptr + bytes <= a->base + a->size)
		return a;

	if (a != nullptr)
		std::snprintf(text, sizeof(text), "0x%lx + %zu bytes runs %zu bytes past the end of its allocation (0x%lx, %zu bytes)",
					  (unsigned long)ptr, bytes, (size_t)(ptr + bytes - a->base - a->size), (unsigned long)a->base, a->size);
	else if ((a = lookup(freed, ptr)) != nullptr)
		std::snprintf(text, sizeof(text), "0x%lx is in an allocation that was freed (use after free; 0x%lx, %zu bytes)",
					  (unsigned long)ptr, (unsigned long)a->base, a->size);
	else if (inArena(ptr))
		std::snprintf(text, sizeof(text), "0x%lx is device address space that was never allocated", (unsigned long)ptr);
	else
		std::snprintf(text, sizeof(text), "0x%lx is not device memory (a host pointer?)", (unsigned long)ptr);
	why = text;
	return nullptr;
}

CUresult checkDevice(const char *caller, const char *role, uintptr_t ptr, size_t bytes)
{
	std::string why;
	if (bytes == 0 || find(ptr, bytes, why) != nullptr)
		return CUDA_SUCCESS;
	return fail(CUDA_ERROR_INVALID_VALUE, "%s: %s %s", caller, role, why.c_str());
}

CUresult checkHost(const char *caller, const char *role, const void *ptr, size_t bytes)
{
	if (bytes > 0 && ptr == nullptr)
		return fail(CUDA_ERROR_INVALID_VALUE, "%s: %s is a null pointer", caller, role);
	if (bytes > 0 && inArena((uintptr_t)ptr))
		return fail(CUDA_ERROR_INVALID_VALUE, "%s: %s 0x%lx is device memory where host memory is expected", caller, role,
					(unsigned long)ptr);
	return CUDA_SUCCESS;
}

static bool isPinned(const void *ptr, size_t bytes)
{
	const Allocation *a = lookup(live, (uintptr_t)ptr);
	return a != nullptr && a->device < 0 && (uintptr_t)ptr + bytes <= a->base + a->size;
}

template <typename T>
static CUresult fill(const char *caller, CUdeviceptr dst, T value, size_t count, CUstream stream)
{
	if (dst % sizeof(T) != 0)
		return fail(CUDA_ERROR_INVALID_VALUE, "%s: 0x%lx is not %zu-byte aligned", caller, (unsigned long)dst, sizeof(T));
	if (CUresult e = checkDevice(caller, "destination", dst, count * sizeof(T)))
		return e;
	return submit(stream, [=] { std::fill_n((T *)dst, count, value); return CUDA_SUCCESS; });
}

}

using namespace emu;

extern "C" {

CUresult cuMemAlloc(CUdeviceptr *dptr, size_t bytes)
{
	EMU_LOCKED;
	Context *ctx;
	if (CUresult e = current(&ctx, "cuMemAlloc"))
		return e;
	if (bytes == 0)
		return fail(CUDA_ERROR_INVALID_VALUE, "cuMemAlloc: 0 bytes requested");
	if (liveDeviceBytes + bytes > DEVICE_BYTES)
		return fail(CUDA_ERROR_OUT_OF_MEMORY, "cuMemAlloc: %zu bytes requested, %zu of %zu in use", bytes, liveDeviceBytes, DEVICE_BYTES);

	if (arenaBase == 0)
	{
		void *arena = mmap(nullptr, ARENA_BYTES, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (arena == MAP_FAILED)
			return fail(CUDA_ERROR_OUT_OF_MEMORY, "cuMemAlloc: cannot reserve the emulated device's address space");
		arenaBase = arenaNext = (uintptr_t)arena;
	}

	size_t span = roundUp(roundUp(bytes, ALIGNMENT), PAGE);
	if (arenaNext + span + PAGE > arenaBase + ARENA_BYTES)
		return fail(CUDA_ERROR_OUT_OF_MEMORY, "cuMemAlloc: the emulated address space is used up (freed memory is never reused)");
	uintptr_t region = arenaNext;
	arenaNext += span + PAGE;  /* a guard page after every allocation */
	if (mprotect((void *)region, span, PROT_READ | PROT_WRITE) != 0)
		return fail(CUDA_ERROR_OUT_OF_MEMORY, "cuMemAlloc: mprotect failed for %zu bytes", span);

	/* the allocation ends where its pages end, so a kernel reading past it faults */
	uintptr_t base = region + span - roundUp(bytes, ALIGNMENT);
	live[base] = Allocation{base, bytes, ctx->device};
	liveDeviceBytes += bytes;
	*dptr = (CUdeviceptr)base;
	return CUDA_SUCCESS;
}

CUresult cuMemFree(CUdeviceptr dptr)
{
	EMU_LOCKED;
	auto it = live.find((uintptr_t)dptr);
	if (it == live.end() || it->second.device < 0)
	{
		std::string why;
		find((uintptr_t)dptr, 1, why);
		return fail(CUDA_ERROR_INVALID_VALUE, "cuMemFree: 0x%lx is not the start of a live device allocation (%s)",
					(unsigned long)dptr, why.empty() ? "inside one" : why.c_str());
	}
	drainAll();  /* as on a GPU, freeing waits for the work that may use the memory */

	Allocation a = it->second;
	uintptr_t region = a.base / PAGE * PAGE;
	size_t span = roundUp(a.base + a.size, PAGE) - region;
	mprotect((void *)region, span, PROT_NONE);
	madvise((void *)region, span, MADV_DONTNEED);
	live.erase(it);
	freed[a.base] = a;
	liveDeviceBytes -= a.size;
	return CUDA_SUCCESS;
}

CUresult cuMemGetInfo(size_t *free, size_t *total)
{
	EMU_LOCKED;
	*free = DEVICE_BYTES - liveDeviceBytes;
	*total = DEVICE_BYTES;
	return CUDA_SUCCESS;
}

CUresult cuMemGetAddressRange(CUdeviceptr *pbase, size_t *psize, CUdeviceptr dptr)
{
	EMU_LOCKED;
	std::string why;
	const Allocation *a = find((uintptr_t)dptr, 1, why);
	if (a == nullptr)
		return fail(CUDA_ERROR_NOT_FOUND, "cuMemGetAddressRange: %s", why.c_str());
	if (pbase)
		*pbase = (CUdeviceptr)a->base;
	if (psize)
		*psize = a->size;
	return CUDA_SUCCESS;
}

CUresult cuMemHostAlloc(void **pp, size_t bytes, unsigned int)
{
	EMU_LOCKED;
	void *memory = nullptr;
	if (posix_memalign(&memory, PAGE, std::max<size_t>(bytes, 1)) != 0)
		return fail(CUDA_ERROR_OUT_OF_MEMORY, "cuMemHostAlloc: %zu bytes", bytes);
	live[(uintptr_t)memory] = Allocation{(uintptr_t)memory, bytes, -1};
	*pp = memory;
	return CUDA_SUCCESS;
}

CUresult cuMemAllocHost(void **pp, size_t bytes)
{
	return cuMemHostAlloc(pp, bytes, 0);
}

CUresult cuMemFreeHost(void *p)
{
	EMU_LOCKED;
	auto it = live.find((uintptr_t)p);
	if (it == live.end() || it->second.device >= 0)
		return fail(CUDA_ERROR_INVALID_VALUE, "cuMemFreeHost: %p is not pinned memory from cuMemHostAlloc", p);
	drainAll();
	live.erase(it);
	std::free(p);
	return CUDA_SUCCESS;
}

CUresult cuMemHostGetDevicePointer(CUdeviceptr *pdptr, void *p, unsigned int)
{
	EMU_LOCKED;
	if (!isPinned(p, 1))
		return fail(CUDA_ERROR_INVALID_VALUE, "cuMemHostGetDevicePointer: %p is not pinned memory", p);
	*pdptr = (CUdeviceptr)p;  /* unified addressing */
	return CUDA_SUCCESS;
}

CUresult cuMemHostGetFlags(unsigned int *flags, void *p)
{
	EMU_LOCKED;
	if (!isPinned(p, 1))
		return fail(CUDA_ERROR_INVALID_VALUE, "cuMemHostGetFlags: %p is not pinned memory", p);
	*flags = 0;
	return CUDA_SUCCESS;
}

/* Synchronous copies wait for all earlier work first, as the legacy default stream does. */
static CUresult copySync(const char *caller, void *dst, const void *src, size_t bytes, bool toDevice)
{
	uintptr_t device = (uintptr_t)(toDevice ? dst : src);
	const void *host = toDevice ? src : dst;
	if (CUresult e = checkDevice(caller, toDevice ? "destination" : "source", device, bytes))
		return e;
	if (CUresult e = checkHost(caller, toDevice ? "source" : "destination", host, bytes))
		return e;
	if (CUresult e = drainAll())
		return e;
	std::memcpy(dst, src, bytes);
	return CUDA_SUCCESS;
}

CUresult cuMemcpyHtoD(CUdeviceptr dst, const void *src, size_t bytes)
{
	EMU_LOCKED;
	return copySync("cuMemcpyHtoD", (void *)dst, src, bytes, true);
}

CUresult cuMemcpyDtoH(void *dst, CUdeviceptr src, size_t bytes)
{
	EMU_LOCKED;
	return copySync("cuMemcpyDtoH", dst, (const void *)src, bytes, false);
}

static CUresult copyDtoD(const char *caller, CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream stream)
{
	if (CUresult e = checkDevice(caller, "destination", dst, bytes))
		return e;
	if (CUresult e = checkDevice(caller, "source", src, bytes))
		return e;
	return submit(stream, [=] { std::memmove((void *)dst, (const void *)src, bytes); return CUDA_SUCCESS; });
}

CUresult cuMemcpyDtoD(CUdeviceptr dst, CUdeviceptr src, size_t bytes)
{
	EMU_LOCKED;
	return copyDtoD("cuMemcpyDtoD", dst, src, bytes, nullptr);
}

CUresult cuMemcpyDtoDAsync(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream stream)
{
	EMU_LOCKED;
	return copyDtoD("cuMemcpyDtoDAsync", dst, src, bytes, stream);
}

/* From pageable memory the source is copied at the call (CUDA stages it); from pinned memory at execution. */
CUresult cuMemcpyHtoDAsync(CUdeviceptr dst, const void *src, size_t bytes, CUstream stream)
{
	EMU_LOCKED;
	if (CUresult e = checkDevice("cuMemcpyHtoDAsync", "destination", dst, bytes))
		return e;
	if (CUresult e = checkHost("cuMemcpyHtoDAsync", "source", src, bytes))
		return e;
	if (isPinned(src, bytes))
		return submit(stream, [=] { std::memcpy((void *)dst, src, bytes); return CUDA_SUCCESS; });

	auto staged = std::make_shared<std::vector<unsigned char>>((const unsigned char *)src, (const unsigned char *)src + bytes);
	return submit(stream, [=] { std::memcpy((void *)dst, staged->data(), bytes); return CUDA_SUCCESS; });
}

/* To pinned memory the copy is queued; to pageable memory it completes before the call returns, as on a GPU. */
CUresult cuMemcpyDtoHAsync(void *dst, CUdeviceptr src, size_t bytes, CUstream stream)
{
	EMU_LOCKED;
	if (CUresult e = checkDevice("cuMemcpyDtoHAsync", "source", src, bytes))
		return e;
	if (CUresult e = checkHost("cuMemcpyDtoHAsync", "destination", dst, bytes))
		return e;
	CUresult e = submit(stream, [=] { std::memcpy(dst, (const void *)src, bytes); return CUDA_SUCCESS; });
	if (e == CUDA_SUCCESS && !isPinned(dst, bytes))
		e = drain(streamOf(stream), lastSequence(streamOf(stream)));
	return e;
}

CUresult cuMemsetD8(CUdeviceptr dst, unsigned char v, size_t n) { EMU_LOCKED; return fill("cuMemsetD8", dst, v, n, nullptr); }
CUresult cuMemsetD16(CUdeviceptr dst, unsigned short v, size_t n) { EMU_LOCKED; return fill("cuMemsetD16", dst, v, n, nullptr); }
CUresult cuMemsetD32(CUdeviceptr dst, unsigned int v, size_t n) { EMU_LOCKED; return fill("cuMemsetD32", dst, v, n, nullptr); }

CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char v, size_t n, CUstream s) { EMU_LOCKED; return fill("cuMemsetD8Async", dst, v, n, s); }
CUresult cuMemsetD16Async(CUdeviceptr dst, unsigned short v, size_t n, CUstream s) { EMU_LOCKED; return fill("cuMemsetD16Async", dst, v, n, s); }
CUresult cuMemsetD32Async(CUdeviceptr dst, unsigned int v, size_t n, CUstream s) { EMU_LOCKED; return fill("cuMemsetD32Async", dst, v, n, s); }

/* The tests' view of the map: live device allocations and their bytes. */
int cudaEmuLiveAllocations(size_t *bytes)
{
	EMU_LOCKED;
	int count = 0;
	for (const auto &entry : live)
		count += entry.second.device >= 0;
	if (bytes)
		*bytes = liveDeviceBytes;
	return count;
}

}
