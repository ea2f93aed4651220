/* The emulated CUDA driver's shared state. One lock guards it all: the driver is called from Python threads, and
 * deferred work runs at synchronizing calls from whichever thread makes them. */
#ifndef CUDA_EMU_H
#define CUDA_EMU_H

#include <cuda.h>

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "emu_abi.h"

namespace emu
{

extern std::recursive_mutex lock;
#define EMU_LOCKED std::lock_guard<std::recursive_mutex> emuGuard(emu::lock)

/* Settings, from the environment at cuInit (CUDA_EMU_*) and from the cudaEmu* calls of the tests. */
struct Settings
{
	int devices = 1, multiprocessors = 132;   /* devices: how many are visible (CUDA_VISIBLE_DEVICES) */
	std::vector<int> visible;                 /* the emulated (physical) device of each visible ordinal */
	int ccMajor = 9, ccMinor = 0;             /* CUDA_EMU_COMPUTE_CAPABILITY */
	bool deferred = false;
	int blockOrder = 0;        /* 0 forward, 1 reverse, 2 shuffled */
	unsigned long long seed = 1;
	std::string cacheDir;      /* where tests/cuda_emu/nvcc put the host builds */
};
extern Settings settings;
void readSettings();

/* The per-SM limits of an architecture (the CUDA C++ Programming Guide's "Technical Specifications per Compute
 * Capability"); a capability the table lacks gets the nearest lower one's. */
struct Architecture
{
	int major, minor;
	int threadsPerSM, blocksPerSM, registersPerSM, sharedPerSM, sharedPerBlockOptin;
};
const Architecture &architecture();

/* Records a failure's detail for cuGetErrorString and returns its code. */
CUresult fail(CUresult code, const char *format, ...) __attribute__((format(printf, 2, 3)));

struct Context
{
	int device;
	bool primary, destroyed = false;
	unsigned refs = 1;
};
/* The current context, or a failure (CUDA_ERROR_INVALID_CONTEXT / CONTEXT_IS_DESTROYED) naming ``caller``. */
CUresult current(Context **out, const char *caller);
bool initialized();

/* Device memory: host addresses from one reserved arena, with a map of live (and freed) allocations. */
struct Allocation
{
	uintptr_t base;
	size_t size;
	int device;   /* -1: pinned host memory */
};
/* The live allocation holding [ptr, ptr + bytes), or nullptr with the reason in ``why``. */
const Allocation *find(uintptr_t ptr, size_t bytes, std::string &why);
bool inArena(uintptr_t ptr);
CUresult checkDevice(const char *caller, const char *role, uintptr_t ptr, size_t bytes);
CUresult checkHost(const char *caller, const char *role, const void *ptr, size_t bytes);

/* Streams: work runs at once, or (deferred) is queued until a synchronizing call needs it. */
struct Stream
{
	bool blocking = true;  /* synchronizes with the legacy NULL stream */
};
Stream *streamOf(CUstream handle);
/* Runs ``work`` now, or queues it on ``stream`` in deferred mode. */
CUresult submit(CUstream stream, std::function<CUresult()> work);
/* Runs every queued operation of ``stream`` up to sequence number ``upTo`` (and what it depends on). */
CUresult drain(Stream *stream, unsigned long long upTo);
CUresult drainAll();
unsigned long long lastSequence(Stream *stream);

/* The launch log the tests read through cudaEmuLaunch*. */
struct LaunchRecord
{
	std::string kernel;
	unsigned grid[3], block[3];
	unsigned long long packets, scalars, rows;
	double hostSeconds;  /* how long the host build ran the grid: the emulator's cost, no GPU's */
};
extern std::vector<LaunchRecord> launches;

}

#endif
