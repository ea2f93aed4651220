/* Included first by every host build of a cubin (tests/cuda_emu/nvcc writes the build): the host shim, and the
 * launcher that turns the emulated driver's argument buffer into a call of each kernel's real signature and runs
 * its grid, block by block (in the order the driver asks) and thread by thread, or, for a kernel marked
 * HOST_SHIM_WARP_KERNEL, warp by warp with the lanes in lockstep at warp intrinsics (cuda_host_shim.h). */
#ifndef CUDA_EMU_KERNEL_HOST_H
#define CUDA_EMU_KERNEL_HOST_H

#include <tuple>
#include <type_traits>
#include <utility>

#include "cuda_host_shim.h"
#include "emu_abi.h"

/* "const TensorEntry*, int, float, float": the parameter list as the compiler spells it. */
template <typename... A>
static const char *emuParamTypes()
{
	static std::string types;
	if (types.empty())
	{
		std::string pretty = __PRETTY_FUNCTION__;
		size_t open = pretty.find("A = {"), close = pretty.rfind('}');
		types = open == std::string::npos ? std::string("") : pretty.substr(open + 5, close - open - 5);
	}
	return types.c_str();
}

template <typename F, F K> struct EmuLauncher;

template <typename... A, void (*K)(A...)>
struct EmuLauncher<void (*)(A...), K>
{
	using Args = std::tuple<std::decay_t<A>...>;
	static inline const char *label = "";  /* the kernel's name, for messages */

	static EmuKernel entry(const char *name)
	{
		static_assert(sizeof...(A) <= EMU_MAX_ARGS, "too many kernel parameters for the emulator");
		EmuKernel k = {};
		k.name = name;
		if (*name)
			label = name;
		k.paramTypes = emuParamTypes<A...>();
		k.argCount = sizeof...(A);

		size_t sizes[] = {sizeof(std::decay_t<A>)..., 0}, aligns[] = {alignof(std::decay_t<A>)..., 1};
		bool pointers[] = {std::is_pointer<std::decay_t<A>>::value..., false};
		size_t offset = 0;
		for (int i = 0; i < k.argCount; i++)
		{
			offset = (offset + aligns[i] - 1) / aligns[i] * aligns[i];
			k.offsets[i] = offset, k.sizes[i] = sizes[i], k.isPointer[i] = pointers[i];
			offset += sizes[i];
		}
		k.argBytes = offset;
		k.run = &run;
		return k;
	}

	template <size_t... I>
	static Args unpack(const unsigned char *buffer, const size_t *offsets, std::index_sequence<I...>)
	{
		Args args;
		(std::memcpy(&std::get<I>(args), buffer + offsets[I], sizeof(std::get<I>(args))), ...);
		return args;
	}

	static void run(EmuRun *r)
	{
		static const EmuKernel self = entry("");
		Args args = unpack(r->args, self.offsets, std::index_sequence_for<A...>());

		gridDim = {r->grid[0], r->grid[1], r->grid[2]};
		blockDim = {r->block[0], r->block[1], r->block[2]};
		unsigned long long blocks = 1ull * r->grid[0] * r->grid[1] * r->grid[2];
		hostShimCounters = {0, 0};
		r->code = 0;

		hostShimKernelName = label;
		hostShimKernelAddress = reinterpret_cast<void (*)()>(K);
		hostShimWarp = nullptr;  /* a launch that ended in a signal (the fault handler in module.cpp) leaves it set */
		try
		{
			if constexpr (HostShimWarpKernel<K>::name != nullptr)
			{
				auto call = [&] { std::apply(K, args); };
				hostShimRunWarpGrid(HostShimWarpKernel<K>::name, blocks, r->blockOrder, call);
			}
			else
			{
				unsigned threads = r->block[0] * r->block[1] * r->block[2];
				for (unsigned long long i = 0; i < blocks; i++)
					for (unsigned t = 0; t < threads; t++)
					{
						hostShimSetIndex(r->blockOrder[i], t);
						std::apply(K, args);
					}
			}
		}
		catch (const HostShimFault &e)
		{
			r->code = e.code;
			std::snprintf(r->error, sizeof(r->error), "%s", e.what());
		}

		r->packets = hostShimCounters.packets;
		r->scalars = hostShimCounters.scalars;
		r->rows = hostShimCounters.rows;
	}
};

#define EMU_KERNEL(k) EmuLauncher<decltype(&k), &k>::entry(#k)

#endif
