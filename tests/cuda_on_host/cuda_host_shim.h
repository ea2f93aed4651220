/* Just enough of CUDA to compile kernels/*.cu (and pycuda's generated kernels) as plain C++ and run a grid on
 * the host, block by block and thread by thread. Exact for kernels without shared memory, __syncthreads or
 * atomics: those are compile errors here until a kernel needs them.
 * CUDA's own headers supply __half, __nv_bfloat16, uint4 and their host conversions.
 * Used by tests/test_cuda_on_host.py and by the host builds of the emulated driver (tests/cuda_emu).
 *
 * Warp intrinsics: threads run one after another cannot exchange values, so a kernel that uses them is marked,
 * right after its definition, with HOST_SHIM_WARP_KERNEL(kernelName) (nothing on the device). The launchers run
 * each warp of a marked kernel as 32 fibers (lanes) on the host thread: a lane runs until it reaches a warp
 * intrinsic, posts its operand and switches back to the scheduler; once all 32 lanes wait there, the scheduler
 * computes every lane's result from the posted operands (so no lane overwrites an operand another lane has yet to
 * read) and resumes them. Supported: __shfl_sync, __shfl_xor_sync, __shfl_up_sync, __shfl_down_sync (trivially
 * copyable values of up to 8 bytes; PTX's width rules), __ballot_sync, __all_sync, __any_sync, __syncwarp, all with
 * the full mask 0xffffffff. A HostShimFault instead of a hang or garbage: a partial mask, a lane that returns while
 * others wait (divergence), lanes at different intrinsics, a block that is no whole number of warps, an intrinsic
 * in an unmarked kernel. Unmarked kernels keep the plain loop. Lanes switch in a few instructions on x86-64
 * (ucontext elsewhere, or with -DHOST_SHIM_UCONTEXT); their stacks are mapped once per host thread. */
#ifndef CUDA_HOST_SHIM_H
#define CUDA_HOST_SHIM_H

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <dlfcn.h>
#include <sys/mman.h>
#if !defined(__x86_64__) || defined(HOST_SHIM_UCONTEXT)
#include <ucontext.h>
#endif

#include <vector_types.h>
#include <vector_functions.h>

#ifndef __global__
#define __global__
#endif
#define __launch_bounds__(...)
#define __shared__ __shared___is_not_supported_by_the_host_shim
#define __syncthreads() __syncthreads_is_not_supported_by_the_host_shim
#define atomicAdd(...) atomicAdd_is_not_supported_by_the_host_shim

struct HostDim3 { unsigned int x, y, z; };
/* thread_local: two host threads may run grids at once (the emulated driver serializes launches, the host tests
   do not launch concurrently, but nothing here should depend on that) */
static thread_local HostDim3 threadIdx, blockIdx, blockDim, gridDim;

using std::min;
using std::max;

/* What a kernel did that a GPU would fault on; the launcher reports it instead of crashing the process. */
struct HostShimFault : std::runtime_error
{
	int code;  /* the CUresult a GPU would give: 716 misaligned address */
	HostShimFault(int c, const std::string &what) : std::runtime_error(what), code(c) { }
};

/* Iterations of the 128-bit packet path and of the scalar path, and table rows read (whole rows and binary-search
   probes), as multi_tensor_apply.cuh traces them; per host thread, reset by each launch. */
struct HostShimCounters { unsigned long long packets, scalars, rows; };
static thread_local HostShimCounters hostShimCounters;

static inline void hostShimCheckAligned(const void *ptr, size_t bytes, const char *what)
{
	if ((uintptr_t)ptr % bytes != 0)
	{
		char message[160];
		std::snprintf(message, sizeof(message), "misaligned %zu-byte %s at %p (block %u, thread %u)", bytes, what, ptr,
					  blockIdx.x, threadIdx.x);
		throw HostShimFault(716, message);
	}
}

#define HOST_SHIM_TRACE(path) (hostShimCounters.path++)
#define HOST_SHIM_CHECK_ALIGNED(ptr, bytes, what) hostShimCheckAligned(ptr, bytes, what)

static inline float __uint_as_float(unsigned int u) { float f; std::memcpy(&f, &u, sizeof(f)); return f; }
static inline unsigned int __float_as_uint(float f) { unsigned int u; std::memcpy(&u, &f, sizeof(u)); return u; }

template <typename T> static inline T __ldg(const T *ptr)
{
	HOST_SHIM_CHECK_ALIGNED(ptr, alignof(T), "load");
	return *ptr;
}

/* Sets the built-in index variables for linear block ``b`` and thread ``t`` of a (possibly 3-D) launch. */
static inline void hostShimSetIndex(unsigned long long b, unsigned int t)
{
	blockIdx = {(unsigned int)(b % gridDim.x), (unsigned int)(b / gridDim.x % gridDim.y),
				(unsigned int)(b / gridDim.x / gridDim.y)};
	threadIdx = {t % blockDim.x, t / blockDim.x % blockDim.y, t / blockDim.x / blockDim.y};
}

/* ---- Warp-synchronous execution of the kernels marked HOST_SHIM_WARP_KERNEL ---- */

static constexpr int warpSize = 32;

/* The compile-time mark: HostShimWarpKernel<&k>::name is the kernel's name for a marked kernel, else null. */
template <auto K> struct HostShimWarpKernel { static constexpr const char *name = nullptr; };

/* The same marks by address, for launchOnHost, whose kernel is a run-time pointer. Filled by static initializers. */
struct HostShimWarpMark { void (*kernel)(); const char *name; };

static std::vector<HostShimWarpMark> &hostShimWarpMarks()
{
	static std::vector<HostShimWarpMark> marks;
	return marks;
}

static inline bool hostShimMarkWarpKernel(void (*kernel)(), const char *name)
{
	hostShimWarpMarks().push_back({kernel, name});
	return true;
}

/* extern "C++": pycuda wraps a module's source in extern "C" { }, where a template may not be declared */
#define HOST_SHIM_WARP_KERNEL(k) \
	extern "C++" { \
	template <> struct HostShimWarpKernel<&k> { static constexpr const char *name = #k; }; \
	[[maybe_unused]] static const bool hostShimWarpMarked_##k = hostShimMarkWarpKernel(reinterpret_cast<void (*)()>(&k), #k); \
	}

/* The kernel being launched on this host thread, for messages: its name where the launcher knows it, else its
   address (looked up by dladdr when a message needs it). */
static thread_local const char *hostShimKernelName;
static thread_local void (*hostShimKernelAddress)();

static inline std::string hostShimKernel()
{
	if (hostShimKernelName != nullptr && *hostShimKernelName)
		return hostShimKernelName;
	Dl_info info;
	if (hostShimKernelAddress != nullptr && dladdr(reinterpret_cast<void *>(hostShimKernelAddress), &info) != 0 &&
		info.dli_saddr == reinterpret_cast<void *>(hostShimKernelAddress) && info.dli_sname != nullptr)
		return info.dli_sname;
	return "(unnamed)";
}

enum HostShimWarpOp : unsigned char
{
	HOST_WARP_SYNC, HOST_WARP_SHFL, HOST_WARP_SHFL_XOR, HOST_WARP_SHFL_UP, HOST_WARP_SHFL_DOWN, HOST_WARP_BALLOT,
	HOST_WARP_ALL, HOST_WARP_ANY
};
static const char *const hostShimWarpOpNames[] = {"__syncwarp", "__shfl_sync", "__shfl_xor_sync", "__shfl_up_sync",
												  "__shfl_down_sync", "__ballot_sync", "__all_sync", "__any_sync"};

#ifndef HOST_SHIM_LANE_STACK
#define HOST_SHIM_LANE_STACK (256 << 10)
#endif

/* Switching between the scheduler and a lane. x86-64: only the callee-saved registers are saved, on the stack
   being left (a plain function call to the compiler, which saves the rest itself); comdat and hidden, so every
   translation unit and every host build may carry its own copy. */
#if defined(__x86_64__) && !defined(HOST_SHIM_UCONTEXT)
typedef void *HostShimFiber;  /* the saved stack pointer */

asm(".pushsection .text.hostShimSwitch,\"axG\",@progbits,hostShimSwitch,comdat\n"
	".weak hostShimSwitch\n.hidden hostShimSwitch\n.type hostShimSwitch, @function\n"
	"hostShimSwitch:\n"
	"\tpushq %rbp\n\tpushq %rbx\n\tpushq %r12\n\tpushq %r13\n\tpushq %r14\n\tpushq %r15\n"
	"\tmovq %rsp, (%rdi)\n\tmovq %rsi, %rsp\n"
	"\tpopq %r15\n\tpopq %r14\n\tpopq %r13\n\tpopq %r12\n\tpopq %rbx\n\tpopq %rbp\n\tret\n"
	".size hostShimSwitch, .-hostShimSwitch\n"
	".weak hostShimFiberStart\n.hidden hostShimFiberStart\n.type hostShimFiberStart, @function\n"
	"hostShimFiberStart:\n\tcallq *%r12\n\tud2\n"
	".size hostShimFiberStart, .-hostShimFiberStart\n"
	".popsection\n");

extern "C" __attribute__((visibility("hidden"))) void hostShimSwitch(HostShimFiber *save, HostShimFiber next);
extern "C" __attribute__((visibility("hidden"))) void hostShimFiberStart();

/* A fresh fiber: the frame hostShimSwitch pops (r15 r14 r13 r12=entry rbx rbp=0), then hostShimFiberStart as
   the return address, placed so that entry is called with the stack aligned as the ABI wants. */
static inline void hostShimFiberInit(HostShimFiber *fiber, char *stackTop, void (*entry)())
{
	void **sp = reinterpret_cast<void **>(reinterpret_cast<uintptr_t>(stackTop) & ~uintptr_t(15)) - 9;
	std::memset(sp, 0, 9 * sizeof(void *));
	sp[3] = reinterpret_cast<void *>(entry);
	sp[6] = reinterpret_cast<void *>(&hostShimFiberStart);
	*fiber = sp;
}

static inline void hostShimFiberSwitch(HostShimFiber *from, HostShimFiber *to) { hostShimSwitch(from, *to); }
#else
typedef ucontext_t HostShimFiber;

static inline void hostShimFiberInit(HostShimFiber *fiber, char *stackTop, void (*entry)())
{
	getcontext(fiber);
	fiber->uc_stack.ss_sp = stackTop - HOST_SHIM_LANE_STACK;
	fiber->uc_stack.ss_size = HOST_SHIM_LANE_STACK;
	fiber->uc_link = nullptr;
	makecontext(fiber, entry, 0);
}

static inline void hostShimFiberSwitch(HostShimFiber *from, HostShimFiber *to) { swapcontext(from, to); }
#endif

enum : unsigned char { HOST_LANE_READY, HOST_LANE_WAITING, HOST_LANE_DONE };

/* One warp in flight on this host thread, and the lanes' stacks (mapped on first use, kept for the thread). */
struct HostShimWarp
{
	HostShimFiber scheduler, lanes[32];
	unsigned char state[32], op[32];
	unsigned b[32], c[32];                /* the shuffle's lane operand, and PTX's clamp/segment mask */
	uint64_t in[32], out[32];             /* operands posted, results read */
	unsigned lane;                        /* the lane running */
	HostDim3 block, index[32];            /* blockIdx and each lane's threadIdx */
	void (*call)(void *);                 /* runs the kernel with its arguments */
	void *callArg;
	std::exception_ptr error;             /* thrown inside a lane, rethrown by the scheduler */
	char *stacks = nullptr;
	size_t stride = 0;

	~HostShimWarp()
	{
		if (stacks != nullptr)
			munmap(stacks, 32 * stride);
	}

	char *stackTop(unsigned lane)
	{
		if (stacks == nullptr)
		{
			/* a guard page below each stack: an overflow faults instead of running into the next lane's */
			stride = HOST_SHIM_LANE_STACK + 4096;
			void *map = mmap(nullptr, 32 * stride, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
			if (map == MAP_FAILED)
				throw HostShimFault(2, "cannot map the stacks of a warp's lanes");
			stacks = static_cast<char *>(map);
			for (int i = 0; i < 32; i++)
				mprotect(stacks + i * stride, 4096, PROT_NONE);
		}
		return stacks + (lane + 1) * stride;
	}
};

static thread_local std::unique_ptr<HostShimWarp> hostShimWarpSlot;  /* small TLS: dlopen'ed host builds */
static thread_local HostShimWarp *hostShimWarp;  /* the warp running on this thread: null in a plain launch */

static inline std::string hostShimLanes(unsigned lanes)
{
	std::string text;
	for (unsigned i = 0; i < 32; i++)
		if (lanes >> i & 1)
		{
			unsigned j = i;
			while (j + 1 < 32 && (lanes >> (j + 1) & 1))
				j++;
			text += (text.empty() ? "" : ",") + std::to_string(i) + (j > i ? "-" + std::to_string(j) : "");
			i = j;
		}
	return text;
}

[[noreturn]] static void hostShimWarpFault(const char *what)
{
	char message[400];
	std::snprintf(message, sizeof(message), "kernel %s, block (%u, %u, %u), thread (%u, %u, %u): %s", hostShimKernel().c_str(),
				  blockIdx.x, blockIdx.y, blockIdx.z, threadIdx.x, threadIdx.y, threadIdx.z, what);
	throw HostShimFault(719, message);  /* CUDA_ERROR_LAUNCH_FAILED */
}

/* Called by a lane at a warp intrinsic: posts its operand, waits for the other 31, returns its result. */
static uint64_t hostShimWarpExchange(unsigned op, unsigned mask, uint64_t value, unsigned b, unsigned c)
{
	HostShimWarp *w = hostShimWarp;
	char message[300];
	if (w == nullptr)
	{
		std::snprintf(message, sizeof(message), "%s in a kernel not marked HOST_SHIM_WARP_KERNEL (the host runs its threads "
					  "one after another; write HOST_SHIM_WARP_KERNEL(%s) after its definition)", hostShimWarpOpNames[op],
					  hostShimKernel().c_str());
		hostShimWarpFault(message);
	}
	if (mask != 0xffffffffu)
	{
		std::snprintf(message, sizeof(message), "%s with mask 0x%08x: only full-warp masks (0xffffffff) are emulated",
					  hostShimWarpOpNames[op], mask);
		hostShimWarpFault(message);
	}
	unsigned lane = w->lane;
	w->op[lane] = (unsigned char)op, w->in[lane] = value, w->b[lane] = b, w->c[lane] = c;
	w->state[lane] = HOST_LANE_WAITING;
	hostShimFiberSwitch(&w->lanes[lane], &w->scheduler);
	return w->out[lane];
}

/* Every lane waits at the same intrinsic: the read phase, each result from the operands as posted (PTX's shfl). */
static void hostShimWarpResolve(HostShimWarp *w)
{
	unsigned op = w->op[0], ballot = 0;
	for (unsigned lane = 0; lane < 32; lane++)
		ballot |= (w->in[lane] != 0) << lane;
	for (unsigned lane = 0; lane < 32; lane++)
	{
		if (op == HOST_WARP_SYNC)
			continue;
		if (op == HOST_WARP_BALLOT || op == HOST_WARP_ALL || op == HOST_WARP_ANY)
		{
			w->out[lane] = op == HOST_WARP_BALLOT ? ballot : op == HOST_WARP_ALL ? ballot == 0xffffffffu : ballot != 0;
			continue;
		}
		int b = w->b[lane] & 31, segmask = w->c[lane] >> 8 & 31, clamp = w->c[lane] & 31, self = lane;
		int maxLane = (self & segmask) | (clamp & ~segmask), minLane = self & segmask, j = self;
		bool valid = false;
		switch (op)
		{
		case HOST_WARP_SHFL: j = minLane | (b & ~segmask), valid = j <= maxLane; break;
		case HOST_WARP_SHFL_XOR: j = self ^ b, valid = j <= maxLane; break;
		case HOST_WARP_SHFL_UP: j = self - b, valid = j >= maxLane; break;
		case HOST_WARP_SHFL_DOWN: j = self + b, valid = j <= maxLane; break;
		}
		w->out[lane] = w->in[valid ? j : self];
	}
}

static void hostShimLaneMain()
{
	HostShimWarp *w = hostShimWarp;
	unsigned lane = w->lane;
	/* nothing may unwind past this frame: there is no caller on this stack */
	try { w->call(w->callArg); }
	catch (...) { w->error = std::current_exception(); }
	w->state[lane] = HOST_LANE_DONE;
	hostShimFiberSwitch(&w->lanes[lane], &w->scheduler);
	std::abort();  /* a finished lane is never resumed */
}

/* Runs the grid's blocks, each warp's lanes as fibers in lockstep at the warp intrinsics. */
static void hostShimRunWarps(unsigned long long blocks, const unsigned long long *order, void (*call)(void *), void *callArg)
{
	unsigned threads = blockDim.x * blockDim.y * blockDim.z;
	if (threads % 32 != 0)
	{
		char message[300];
		std::snprintf(message, sizeof(message), "kernel %s: a block of %u threads; a HOST_SHIM_WARP_KERNEL kernel runs whole "
					  "warps, so its block size must be a multiple of 32", hostShimKernel().c_str(), threads);
		throw HostShimFault(1, message);  /* CUDA_ERROR_INVALID_VALUE */
	}
	if (!hostShimWarpSlot)
		hostShimWarpSlot.reset(new HostShimWarp());
	HostShimWarp *w = hostShimWarpSlot.get();
	w->call = call, w->callArg = callArg, w->error = nullptr;
	hostShimWarp = w;
	struct Leave { ~Leave() { hostShimWarp = nullptr; } } leave;

	for (unsigned long long i = 0; i < blocks; i++)
	{
		unsigned long long block = order != nullptr ? order[i] : i;
		for (unsigned warp = 0; warp < threads / 32; warp++)
		{
			for (unsigned lane = 0; lane < 32; lane++)
			{
				hostShimSetIndex(block, warp * 32 + lane);
				w->index[lane] = threadIdx;
				w->state[lane] = HOST_LANE_READY;
				hostShimFiberInit(&w->lanes[lane], w->stackTop(lane), &hostShimLaneMain);
			}
			w->block = blockIdx;
			for (;;)
			{
				for (unsigned lane = 0; lane < 32; lane++)
				{
					if (w->state[lane] != HOST_LANE_READY)
						continue;
					/* thread_local, so shared by the lanes: each lane's own before it runs */
					w->lane = lane, blockIdx = w->block, threadIdx = w->index[lane];
					hostShimFiberSwitch(&w->scheduler, &w->lanes[lane]);
					if (w->error)
					{
						std::exception_ptr error = w->error;
						w->error = nullptr;
						std::rethrow_exception(error);
					}
				}
				unsigned waiting = 0, done = 0, sameOp = 0;
				for (unsigned lane = 0; lane < 32; lane++)
				{
					waiting |= (w->state[lane] == HOST_LANE_WAITING) << lane;
					done |= (w->state[lane] == HOST_LANE_DONE) << lane;
				}
				if (waiting == 0)
					break;
				blockIdx = w->block, threadIdx = w->index[__builtin_ctz(waiting)];
				char message[300];
				if (done != 0)
				{
					std::snprintf(message, sizeof(message), "the warp diverged: lanes %s returned while lanes %s wait at %s",
								  hostShimLanes(done).c_str(), hostShimLanes(waiting).c_str(), hostShimWarpOpNames[w->op[__builtin_ctz(waiting)]]);
					hostShimWarpFault(message);
				}
				for (unsigned lane = 0; lane < 32; lane++)
					sameOp |= (w->op[lane] == w->op[0]) << lane;
				if (sameOp != 0xffffffffu)
				{
					unsigned other = __builtin_ctz(~sameOp);
					std::snprintf(message, sizeof(message), "the warp diverged: lanes %s wait at %s, lanes %s at %s",
								  hostShimLanes(sameOp).c_str(), hostShimWarpOpNames[w->op[0]], hostShimLanes(~sameOp).c_str(),
								  hostShimWarpOpNames[w->op[other]]);
					hostShimWarpFault(message);
				}
				hostShimWarpResolve(w);
				std::memset(w->state, HOST_LANE_READY, sizeof(w->state));
			}
		}
	}
}

/* The warp intrinsics. Values travel as their bytes; c is PTX's clamp and segment mask for the width. */
static inline unsigned hostShimWidth(unsigned op, int width, bool up)
{
	if (width < 1 || width > 32 || (width & (width - 1)) != 0)
	{
		char message[120];
		std::snprintf(message, sizeof(message), "%s with width %d: not a power of 2 up to 32", hostShimWarpOpNames[op], width);
		hostShimWarpFault(message);
	}
	return (32 - width) << 8 | (up ? 0 : 0x1f);
}

template <typename T>
static inline T hostShimShuffle(unsigned op, unsigned mask, T var, int b, int width)
{
	static_assert(std::is_trivially_copyable<T>::value && sizeof(T) <= 8, "the host shim shuffles trivially copyable values of up to 8 bytes");
	uint64_t bits = 0;
	std::memcpy(&bits, &var, sizeof(T));
	bits = hostShimWarpExchange(op, mask, bits, (unsigned)b, hostShimWidth(op, width, op == HOST_WARP_SHFL_UP));
	std::memcpy(&var, &bits, sizeof(T));
	return var;
}

template <typename T> static inline T __shfl_sync(unsigned mask, T var, int srcLane, int width = 32)
{
	return hostShimShuffle(HOST_WARP_SHFL, mask, var, srcLane, width);
}

template <typename T> static inline T __shfl_xor_sync(unsigned mask, T var, int laneMask, int width = 32)
{
	return hostShimShuffle(HOST_WARP_SHFL_XOR, mask, var, laneMask, width);
}

template <typename T> static inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32)
{
	return hostShimShuffle(HOST_WARP_SHFL_UP, mask, var, (int)delta, width);
}

template <typename T> static inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32)
{
	return hostShimShuffle(HOST_WARP_SHFL_DOWN, mask, var, (int)delta, width);
}

static inline unsigned __ballot_sync(unsigned mask, int predicate)
{
	return (unsigned)hostShimWarpExchange(HOST_WARP_BALLOT, mask, predicate != 0, 0, 0);
}

static inline int __all_sync(unsigned mask, int predicate) { return (int)hostShimWarpExchange(HOST_WARP_ALL, mask, predicate != 0, 0, 0); }
static inline int __any_sync(unsigned mask, int predicate) { return (int)hostShimWarpExchange(HOST_WARP_ANY, mask, predicate != 0, 0, 0); }
static inline void __syncwarp(unsigned mask = 0xffffffffu) { hostShimWarpExchange(HOST_WARP_SYNC, mask, 0, 0, 0); }

template <typename Call> static void hostShimInvoke(void *call) { (*static_cast<Call *>(call))(); }

/* Runs call() (the kernel with its arguments) warp-synchronously for every block (order[i], or i where order is
   null) of the launch gridDim and blockDim describe. Both launchers keep their plain loop for unmarked kernels,
   where the compiler may inline the kernel. */
template <typename Call>
__attribute__((noinline, cold)) static void hostShimRunWarpGrid(const char *name, unsigned long long blocks, const unsigned long long *order, Call &call)
{
	hostShimKernelName = name;
	hostShimRunWarps(blocks, order, &hostShimInvoke<Call>, &call);
}

/* The name HOST_SHIM_WARP_KERNEL gave the kernel at this address, or null. */
__attribute__((noinline)) static const char *hostShimWarpKernelName(void (*kernel)())
{
	for (const HostShimWarpMark &mark : hostShimWarpMarks())
		if (mark.kernel == kernel)
			return mark.name;
	return nullptr;
}

/* Runs kernel(args...) for every (block, thread) of a 1-D grid, in order. A fault becomes a HostShimFault. */
template <typename Kernel, typename... Args>
static void launchOnHost(unsigned int grid, unsigned int block, Kernel kernel, Args... args)
{
	/* before gridDim and blockDim are set: after an opaque call the compiler could no longer fold them into the loop */
	const char *name = nullptr;
	hostShimKernelAddress = nullptr;
	if constexpr (std::is_pointer<Kernel>::value)
	{
		name = hostShimWarpKernelName(reinterpret_cast<void (*)()>(kernel));
		hostShimKernelAddress = reinterpret_cast<void (*)()>(kernel);
	}
	hostShimKernelName = nullptr;
	hostShimWarp = nullptr;  /* a launch that ended in a signal (the emulator's fault handler) leaves it set */
	gridDim = {grid, 1, 1};
	blockDim = {block, 1, 1};
	if (name != nullptr)
	{
		auto call = [kernel, args...] { kernel(args...); };  /* copies: the plain loop's stay unescaped */
		hostShimRunWarpGrid(name, grid, nullptr, call);
		return;
	}
	for (unsigned int b = 0; b < grid; b++)
		for (unsigned int t = 0; t < block; t++)
		{
			hostShimSetIndex(b, t);
			kernel(args...);
		}
}

#endif
