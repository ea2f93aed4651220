/* Modules and launches. A loaded cubin (or PTX text) is found, by the hash of its bytes, among the host builds that
 * tests/cuda_emu/nvcc made when it compiled the same source; as on a GPU, a cubin loads only on a device of its
 * architecture (same major, no older minor) and PTX only on a device at least as new as its .target. The kernels'
 * register counts (read from the cubin's .nv.info when nvcc built it, kept beside the host build) answer
 * cuFuncGetAttribute and the occupancy calculator; its kernels run there, every block and thread of
 * the grid, with the arguments unpacked by each kernel's real C++ signature. Each launch is recorded (grid, block,
 * packet and scalar iterations) for the tests. A fault inside a kernel (touching freed or unallocated memory, a
 * misaligned 128-bit access) fails the launch instead of killing the process. */
#include <dlfcn.h>
#include <elf.h>
#include <setjmp.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>

#include "emu.h"

namespace emu
{

std::vector<LaunchRecord> launches;

struct Function;

struct Module
{
	std::string path;
	int binaryVersion = 0;                 /* the architecture the kernels run as, e.g. 90 */
	std::map<std::string, int> registers;  /* per kernel, from nvcc's record */
	const EmuKernel *kernels = nullptr;
	int count = 0;
	std::map<std::string, Function *> functions;
};

struct Function
{
	Module *module;
	const EmuKernel *kernel;
};

/* A cubin's length, from its ELF headers (the driver is given only a pointer). */
static size_t elfLength(const unsigned char *image)
{
	auto *header = reinterpret_cast<const Elf64_Ehdr *>(image);
	if (std::memcmp(header->e_ident, ELFMAG, SELFMAG) != 0 || header->e_ident[EI_CLASS] != ELFCLASS64)
		return 0;
	size_t end = std::max<size_t>(header->e_shoff + (size_t)header->e_shnum * header->e_shentsize,
								  header->e_phoff + (size_t)header->e_phnum * header->e_phentsize);
	auto *sections = reinterpret_cast<const Elf64_Shdr *>(image + header->e_shoff);
	for (int i = 0; i < header->e_shnum; i++)
		if (sections[i].sh_type != SHT_NOBITS)
			end = std::max<size_t>(end, sections[i].sh_offset + sections[i].sh_size);
	return end;
}

/* FNV-1a, 64 bits: tests/cuda_emu/nvcc names the host build by the same hash of the cubin. */
static std::string imageHash(const unsigned char *image, size_t length)
{
	unsigned long long h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < length; i++)
		h = (h ^ image[i]) * 0x100000001b3ull;
	char text[17];
	std::snprintf(text, sizeof(text), "%016llx", h);
	return text;
}

static thread_local sigjmp_buf *faultJump = nullptr;
static thread_local uintptr_t faultAddress = 0;

static void onFault(int, siginfo_t *info, void *)
{
	faultAddress = (uintptr_t)info->si_addr;
	siglongjmp(*faultJump, 1);
}

/* Runs the grid; a segmentation fault inside the kernel becomes CUDA_ERROR_ILLEGAL_ADDRESS. */
static void runGuarded(const EmuKernel *kernel, EmuRun *run)
{
	struct sigaction action = {}, previousSegv, previousBus;
	action.sa_sigaction = onFault;
	action.sa_flags = SA_SIGINFO;
	sigemptyset(&action.sa_mask);

	sigjmp_buf jump;
	faultJump = &jump;
	sigaction(SIGSEGV, &action, &previousSegv);
	sigaction(SIGBUS, &action, &previousBus);

	if (sigsetjmp(jump, 1) == 0)
		kernel->run(run);
	else
	{
		std::string why;
		find(faultAddress, 1, why);
		run->code = CUDA_ERROR_ILLEGAL_ADDRESS;
		std::snprintf(run->error, sizeof(run->error), "it touched %s", why.c_str());
	}

	sigaction(SIGSEGV, &previousSegv, nullptr);
	sigaction(SIGBUS, &previousBus, nullptr);
	faultJump = nullptr;
}

static std::vector<unsigned long long> blockOrder(unsigned long long blocks, size_t launchIndex)
{
	std::vector<unsigned long long> order(blocks);
	for (unsigned long long i = 0; i < blocks; i++)
		order[i] = i;
	if (settings.blockOrder == 1)
		std::reverse(order.begin(), order.end());
	else if (settings.blockOrder == 2)
		std::shuffle(order.begin(), order.end(), std::mt19937_64(settings.seed * 1000003ull + launchIndex));
	return order;
}

/* The kernel's arguments in its own layout, from `extra` (pycuda) or `kernelParams`. */
static CUresult gatherArguments(const EmuKernel *k, void **kernelParams, void **extra, std::vector<unsigned char> &args)
{
	args.assign(k->argBytes, 0);
	if (extra != nullptr)
	{
		if (kernelParams != nullptr)
			return fail(CUDA_ERROR_INVALID_VALUE, "cuLaunchKernel %s: both kernelParams and extra were given", k->name);
		const void *buffer = nullptr;
		size_t size = 0;
		for (int i = 0; extra[i] != CU_LAUNCH_PARAM_END; i += 2)
		{
			if (extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER)
				buffer = extra[i + 1];
			else if (extra[i] == CU_LAUNCH_PARAM_BUFFER_SIZE)
				size = *static_cast<size_t *>(extra[i + 1]);
			else
				return fail(CUDA_ERROR_INVALID_VALUE, "cuLaunchKernel %s: unknown extra option %p", k->name, extra[i]);
		}
		if (size != k->argBytes)
			return fail(CUDA_ERROR_INVALID_VALUE, "cuLaunchKernel: kernel %s(%s) takes %zu bytes of arguments (each at its "
						"natural alignment), the launch passed %zu", k->name, k->paramTypes, k->argBytes, size);
		std::memcpy(args.data(), buffer, size);
	}
	else if (kernelParams != nullptr)
	{
		for (int i = 0; i < k->argCount; i++)
			std::memcpy(args.data() + k->offsets[i], kernelParams[i], k->sizes[i]);
	}
	else if (k->argCount > 0)
		return fail(CUDA_ERROR_INVALID_VALUE, "cuLaunchKernel: kernel %s(%s) got no arguments", k->name, k->paramTypes);
	return CUDA_SUCCESS;
}

/* Every non-null pointer argument must be device memory of the launching context's device (or pinned memory). */
static CUresult checkPointers(const EmuKernel *k, const std::vector<unsigned char> &args, int device)
{
	for (int i = 0; i < k->argCount; i++)
	{
		if (!k->isPointer[i])
			continue;
		uintptr_t ptr;
		std::memcpy(&ptr, args.data() + k->offsets[i], sizeof(ptr));
		if (ptr == 0)
			continue;

		std::string why;
		const Allocation *a = find(ptr, 1, why);
		if (a == nullptr)
			return fail(CUDA_ERROR_INVALID_VALUE, "cuLaunchKernel: kernel %s(%s), argument %d: %s", k->name, k->paramTypes,
						i, why.c_str());
		if (a->device >= 0 && a->device != device)
			return fail(CUDA_ERROR_INVALID_VALUE, "cuLaunchKernel: kernel %s(%s), argument %d: 0x%lx is memory of device %d, "
						"the launch is on device %d", k->name, k->paramTypes, i, (unsigned long)ptr, a->device, device);
	}
	return CUDA_SUCCESS;
}

/* The architecture a cubin was built for, e.g. 90 (ELF ABI 8, CUDA 12.8 and later, keeps it in bits 8-15 of
 * e_flags; older ones in bits 0-7). */
static int cubinArchitecture(const unsigned char *image)
{
	auto *header = reinterpret_cast<const Elf64_Ehdr *>(image);
	return header->e_ident[EI_ABIVERSION] >= 8 ? (header->e_flags >> 8) & 0xff : header->e_flags & 0xff;
}

/* The sm_XY of a PTX text's .target directive, or 0. */
static int ptxTarget(const char *text)
{
	const char *target = std::strstr(text, ".target");
	int arch = 0;
	if (target == nullptr || std::sscanf(target, ".target sm_%d", &arch) != 1)
		return 0;
	return arch;
}

static void readRegisters(Module *module, const std::string &path)
{
	std::ifstream file(path);
	std::string name;
	int count;
	while (file >> name >> count)
		module->registers[name] = count;
}

static CUresult loadImage(CUmodule *out, const void *image)
{
	Context *ctx;
	if (CUresult e = current(&ctx, "cuModuleLoadData"))
		return e;

	auto *bytes = static_cast<const unsigned char *>(image);
	int device = settings.ccMajor * 10 + settings.ccMinor, binaryVersion = device;
	size_t length = elfLength(bytes);
	if (length != 0)
	{
		int arch = cubinArchitecture(bytes);
		if (arch / 10 != settings.ccMajor || arch % 10 > settings.ccMinor)
			return fail(CUDA_ERROR_NO_BINARY_FOR_GPU, "cuModuleLoadData: the cubin is sm_%d, the device is compute capability "
						"%d.%d (a cubin runs only on its major version, same or newer minor)", arch, settings.ccMajor, settings.ccMinor);
		binaryVersion = arch;
	}
	else if (std::strncmp(reinterpret_cast<const char *>(bytes), "//", 2) == 0 || ptxTarget(reinterpret_cast<const char *>(bytes)))
	{
		const char *text = reinterpret_cast<const char *>(bytes);
		int target = ptxTarget(text);
		if (target == 0)
			return fail(CUDA_ERROR_INVALID_PTX, "cuModuleLoadData: PTX without a .target sm_XY directive");
		if (target > device)
			return fail(CUDA_ERROR_INVALID_PTX, "cuModuleLoadData: the PTX targets sm_%d, newer than the device (compute "
						"capability %d.%d): the JIT cannot compile it", target, settings.ccMajor, settings.ccMinor);
		length = std::strlen(text);
	}
	else
		return fail(CUDA_ERROR_INVALID_IMAGE, "cuModuleLoadData: neither a cubin nor PTX (the emulator loads ELF cubins and PTX "
					"text, not fatbins)");
	if (settings.cacheDir.empty())
		return fail(CUDA_ERROR_INVALID_IMAGE, "cuModuleLoadData: CUDA_EMU_CACHE is not set (run through tests/cuda_emu/run)");

	std::string stem = settings.cacheDir + "/hosts/" + imageHash(bytes, length), path = stem + ".so";
	void *handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
	if (handle == nullptr)
		return fail(CUDA_ERROR_INVALID_IMAGE, "cuModuleLoadData: no host build of this cubin (%s): it was not compiled through "
					"tests/cuda_emu/nvcc (a cubin from an old pycuda cache? run through tests/cuda_emu/run)", dlerror());

	auto table = reinterpret_cast<EmuKernelTableFn>(dlsym(handle, "cudaEmuKernelTable"));
	int abi = 0;
	auto *module = new Module();
	module->path = path;
	module->binaryVersion = binaryVersion;
	readRegisters(module, stem + ".regs");
	module->kernels = table ? table(&module->count, &abi) : nullptr;
	if (module->kernels == nullptr || abi != EMU_ABI_VERSION)
	{
		delete module;
		return fail(CUDA_ERROR_INVALID_IMAGE, "cuModuleLoadData: %s is not a host build of ABI %d (rebuild: delete it)",
					path.c_str(), EMU_ABI_VERSION);
	}
	*out = reinterpret_cast<CUmodule>(module);
	return CUDA_SUCCESS;
}

}

using namespace emu;

extern "C" {

CUresult cuModuleLoadDataEx(CUmodule *module, const void *image, unsigned int numOptions, CUjit_option *options,
							void **optionValues)
{
	EMU_LOCKED;
	for (unsigned i = 0; i < numOptions; i++)
		if (options[i] == CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES || options[i] == CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES)
			optionValues[i] = nullptr;  /* nothing was logged */
	return loadImage(module, image);
}

CUresult cuModuleLoadData(CUmodule *module, const void *image)
{
	EMU_LOCKED;
	return loadImage(module, image);
}

CUresult cuModuleLoad(CUmodule *module, const char *fname)
{
	EMU_LOCKED;
	std::ifstream file(fname, std::ios::binary);
	if (!file)
		return fail(CUDA_ERROR_FILE_NOT_FOUND, "cuModuleLoad: cannot read %s", fname);
	std::stringstream bytes;
	bytes << file.rdbuf();
	std::string image = bytes.str();
	return loadImage(module, image.data());
}

CUresult cuModuleUnload(CUmodule)
{
	return CUDA_SUCCESS;  /* host builds stay loaded: functions may outlive their pycuda module object */
}

CUresult cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod, const char *name)
{
	EMU_LOCKED;
	auto *module = reinterpret_cast<Module *>(hmod);
	Function *&function = module->functions[name];
	if (function == nullptr)
	{
		std::string available;
		for (int i = 0; i < module->count; i++)
		{
			if (std::strcmp(module->kernels[i].name, name) == 0)
				function = new Function{module, &module->kernels[i]};
			available += std::string(i ? ", " : "") + module->kernels[i].name;
		}
		if (function == nullptr)
		{
			module->functions.erase(name);
			return fail(CUDA_ERROR_NOT_FOUND, "cuModuleGetFunction: no kernel %s in the host build (it has %s; only extern \"C\" "
						"kernels are emulated)", name, available.c_str());
		}
	}
	*hfunc = reinterpret_cast<CUfunction>(function);
	return CUDA_SUCCESS;
}

/* The kernel's register count as nvcc recorded it, or a failure naming the kernel. */
static CUresult registersOf(Function *function, int *registers, const char *caller)
{
	auto found = function->module->registers.find(function->kernel->name);
	if (found == function->module->registers.end())
		return fail(CUDA_ERROR_NOT_FOUND, "%s: no register count recorded for kernel %s (%s.regs is missing: built by an "
					"older tests/cuda_emu/nvcc?)", caller, function->kernel->name, function->module->path.c_str());
	*registers = found->second;
	return CUDA_SUCCESS;
}

/* Blocks of ``blockSize`` threads that fit on one SM at once, limited as the CUDA occupancy calculator limits them:
 * by the architecture's resident blocks, by its warps, by registers (allocated per warp in units of 256, warps in
 * groups of 4), and by shared memory (the driver reserves 1 KiB per block from compute capability 8.0). */
static int occupancy(int registers, int blockSize, size_t sharedBytes)
{
	const Architecture &arch = architecture();
	int warps = (blockSize + 31) / 32;
	int byBlocks = arch.blocksPerSM, byWarps = arch.threadsPerSM / 32 / warps;
	int registersPerWarp = (registers * 32 + 255) / 256 * 256;
	int byRegisters = registersPerWarp == 0 ? byBlocks : arch.registersPerSM / registersPerWarp / 4 * 4 / warps;
	if ((long long)registersPerWarp * warps > 65536)
		byRegisters = 0;
	size_t perBlock = sharedBytes + (settings.ccMajor >= 8 ? 1024 : 0);
	int byShared = perBlock == 0 ? byBlocks : (int)(arch.sharedPerSM / ((perBlock + 127) / 128 * 128));
	if (sharedBytes > (size_t)arch.sharedPerBlockOptin)
		byShared = 0;
	return std::min(std::min(byBlocks, byWarps), std::min(byRegisters, byShared));
}

CUresult cuFuncGetAttribute(int *value, CUfunction_attribute attrib, CUfunction hfunc)
{
	auto *function = reinterpret_cast<Function *>(hfunc);
	switch (attrib)
	{
	case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *value = 1024; break;
	case CU_FUNC_ATTRIBUTE_NUM_REGS: return registersOf(function, value, "cuFuncGetAttribute");
	case CU_FUNC_ATTRIBUTE_PTX_VERSION: case CU_FUNC_ATTRIBUTE_BINARY_VERSION: *value = function->module->binaryVersion; break;
	default: *value = 0;
	}
	return CUDA_SUCCESS;
}

CUresult cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int *numBlocks, CUfunction hfunc, int blockSize,
															  size_t dynamicSMemSize, unsigned int flags)
{
	EMU_LOCKED;
	const char *caller = "cuOccupancyMaxActiveBlocksPerMultiprocessor";
	if (hfunc == nullptr || numBlocks == nullptr)
		return fail(CUDA_ERROR_INVALID_VALUE, "%s: null function or result pointer", caller);
	if (blockSize <= 0 || blockSize > 1024)
		return fail(CUDA_ERROR_INVALID_VALUE, "%s: block size %d is not 1 to 1024", caller, blockSize);
	if (flags != CU_OCCUPANCY_DEFAULT && flags != CU_OCCUPANCY_DISABLE_CACHING_OVERRIDE)
		return fail(CUDA_ERROR_INVALID_VALUE, "%s: unknown flags 0x%x", caller, flags);
	int registers;
	if (CUresult e = registersOf(reinterpret_cast<Function *>(hfunc), &registers, caller))
		return e;
	*numBlocks = occupancy(registers, blockSize, dynamicSMemSize);
	return CUDA_SUCCESS;
}

CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int *numBlocks, CUfunction hfunc, int blockSize, size_t dynamicSMemSize)
{
	return cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(numBlocks, hfunc, blockSize, dynamicSMemSize, CU_OCCUPANCY_DEFAULT);
}

CUresult cuFuncSetAttribute(CUfunction, CUfunction_attribute, int) { return CUDA_SUCCESS; }
CUresult cuFuncSetCacheConfig(CUfunction, CUfunc_cache) { return CUDA_SUCCESS; }
CUresult cuFuncSetBlockShape(CUfunction, int, int, int) { return CUDA_SUCCESS; }  /* cuLaunchKernel carries the block */

CUresult cuFuncSetSharedSize(CUfunction hfunc, unsigned int bytes)
{
	if (bytes == 0)
		return CUDA_SUCCESS;
	return fail(CUDA_ERROR_NOT_SUPPORTED, "cuFuncSetSharedSize: kernel %s: shared memory is not emulated",
				reinterpret_cast<Function *>(hfunc)->kernel->name);
}

CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
						unsigned sharedMemBytes, CUstream stream, void **kernelParams, void **extra)
{
	EMU_LOCKED;
	Context *ctx;
	if (CUresult e = current(&ctx, "cuLaunchKernel"))
		return e;
	const EmuKernel *k = reinterpret_cast<Function *>(f)->kernel;

	if (gx == 0 || gy == 0 || gz == 0 || bx == 0 || by == 0 || bz == 0 || gy > 65535 || gz > 65535 || bz > 64)
		return fail(CUDA_ERROR_INVALID_VALUE, "cuLaunchKernel %s: invalid grid (%u, %u, %u) or block (%u, %u, %u)", k->name,
					gx, gy, gz, bx, by, bz);
	if (1ull * bx * by * bz > 1024)
		return fail(CUDA_ERROR_INVALID_VALUE, "cuLaunchKernel %s: %llu threads per block, at most 1024", k->name, 1ull * bx * by * bz);
	if (sharedMemBytes > 0)
		return fail(CUDA_ERROR_NOT_SUPPORTED, "cuLaunchKernel %s: dynamic shared memory is not emulated", k->name);

	auto args = std::make_shared<std::vector<unsigned char>>();
	if (CUresult e = gatherArguments(k, kernelParams, extra, *args))
		return e;
	if (CUresult e = checkPointers(k, *args, ctx->device))
		return e;

	size_t index = launches.size();
	launches.push_back(LaunchRecord{k->name, {gx, gy, gz}, {bx, by, bz}, 0, 0, 0, 0.0});
	auto order = std::make_shared<std::vector<unsigned long long>>(blockOrder(1ull * gx * gy * gz, index));

	return submit(stream, [=] {
		EmuRun run = {};
		std::memcpy(run.grid, launches[index].grid, sizeof(run.grid));
		std::memcpy(run.block, launches[index].block, sizeof(run.block));
		run.blockOrder = order->data();
		run.args = args->data();
		auto started = std::chrono::steady_clock::now();
		runGuarded(k, &run);
		launches[index].hostSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

		launches[index].packets = run.packets;
		launches[index].scalars = run.scalars;
		launches[index].rows = run.rows;
		if (run.code != 0)
			return fail((CUresult)run.code, "kernel %s(%s) faulted: %s", k->name, k->paramTypes, run.error);
		return CUDA_SUCCESS;
	});
}

/* The launch log, for the tests. Reading it waits for queued launches, as reading their results would. */
int cudaEmuLaunchCount(void)
{
	EMU_LOCKED;
	drainAll();
	return (int)launches.size();
}

int cudaEmuLaunchInfo(int i, char *name, int nameLength, unsigned *grid, unsigned *block, unsigned long long *counts,
					  double *hostSeconds)
{
	EMU_LOCKED;
	if (i < 0 || i >= (int)launches.size())
		return -1;
	const LaunchRecord &r = launches[i];
	std::snprintf(name, nameLength, "%s", r.kernel.c_str());
	std::memcpy(grid, r.grid, sizeof(r.grid));
	std::memcpy(block, r.block, sizeof(r.block));
	counts[0] = r.packets, counts[1] = r.scalars, counts[2] = r.rows;
	*hostSeconds = r.hostSeconds;
	return 0;
}

void cudaEmuClearLaunches(void)
{
	EMU_LOCKED;
	drainAll();
	launches.clear();
}

}
