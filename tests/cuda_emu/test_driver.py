"""The emulated CUDA driver itself, driven through pycuda and ctypes as a GPU program would drive a real one. Runs
only on the emulator (tests/test_cuda_emulated.py starts it there); skipped, with the reason, anywhere else."""
import ctypes
import threading
from pathlib import Path

import numpy as np
import pytest

import emu

if not emu.isEmulated():
	pytest.skip("runs on the emulated CUDA driver (tests/cuda_emu/run; tests/test_cuda_emulated.py starts it)",
				allow_module_level=True)


@pytest.fixture(scope="module")
def cuda():
	import pycuda.driver as driver
	driver.init()
	context = driver.Device(0).retain_primary_context()
	context.push()
	yield driver
	driver.Context.pop()


def compileKernel(source, name):
	from pycuda.compiler import SourceModule
	return SourceModule(source).get_function(name)


def expectError(cuda, match, call, *args, **kwargs):
	with pytest.raises(cuda.Error, match=match) as info:
		call(*args, **kwargs)
	return str(info.value)


def test_device_says_it_is_emulated(cuda):
	device = cuda.Device(0)
	assert "Emulated" in device.name() and device.compute_capability() == (9, 0)
	assert device.get_attribute(cuda.device_attribute.MULTIPROCESSOR_COUNT) == 132
	assert device.get_attribute(cuda.device_attribute.WARP_SIZE) == 32
	assert cuda.Device.count() >= 1


def test_primary_context_is_reference_counted(cuda):
	lib = emu.driver()
	state, active = ctypes.c_uint(), ctypes.c_int()
	extra = cuda.Device(0).retain_primary_context()
	lib.cuDevicePrimaryCtxGetState(0, ctypes.byref(state), ctypes.byref(active))
	assert active.value == 1
	assert extra.handle == cuda.Context.get_current().handle, "one primary context per device"
	extra.detach()
	lib.cuDevicePrimaryCtxGetState(0, ctypes.byref(state), ctypes.byref(active))
	assert active.value == 1, "the fixture still holds a reference"


def test_contexts_are_per_thread(cuda):
	"""A new thread starts with no current context, and the driver refuses its allocations with the reason."""
	seen = []

	def probe():
		ctx, pointer = ctypes.c_void_p(), ctypes.c_uint64()
		emu.driver().cuCtxGetCurrent(ctypes.byref(ctx))
		seen.extend([ctx.value, emu.driver().cuMemAlloc_v2(ctypes.byref(pointer), ctypes.c_size_t(4)), emu.lastError()])

	thread = threading.Thread(target=probe)
	thread.start()
	thread.join()
	assert seen[:2] == [None, 201] and "this thread has no current context" in seen[2]


def test_copies_are_checked_against_the_allocation_map(cuda):
	ary = cuda.mem_alloc(64)
	host = np.zeros(32, np.float32)
	message = expectError(cuda, "past the end", cuda.memcpy_htod, ary, host)
	assert "128 bytes runs 64 bytes past the end" in message

	expectError(cuda, "not device memory", cuda.memcpy_htod, host.ctypes.data, host[:4])
	code = emu.driver().cuMemcpyDtoH_v2(ctypes.c_void_p(int(ary)), ctypes.c_uint64(int(ary)), ctypes.c_size_t(16))
	assert code == 1 and "is device memory where host memory is expected" in emu.lastError()

	ary.free()
	message = expectError(cuda, "use after free", cuda.memcpy_dtoh, host[:4], int(ary))
	assert "freed" in message


def test_kernel_arguments_must_be_device_memory(cuda):
	kernel = compileKernel('__global__ void scale(float *x, float a) { x[threadIdx.x] *= a; }', "scale")
	host = np.ones(4, np.float32)
	message = expectError(cuda, "argument 0", kernel, np.intp(host.ctypes.data), np.float32(2), block=(4, 1, 1))
	assert "scale(float*, float)" in message and "not device memory" in message

	freed = cuda.mem_alloc(16)
	freed.free()
	expectError(cuda, "use after free", kernel, np.intp(int(freed)), np.float32(2), block=(4, 1, 1))


def test_use_after_free_inside_a_kernel_fails_the_launch(cuda):
	"""A freed pointer the kernel reads from memory (not an argument the launch can check) faults; the emulator
	turns the fault into an error instead of ending the process."""
	kernel = compileKernel('__global__ void chase(float **table) { *table[0] = 1.0f; }', "chase")
	target = cuda.mem_alloc(4)
	table = cuda.to_device(np.array([int(target)], np.uint64))
	target.free()
	with emu.deferred(False):
		message = expectError(cuda, "illegal memory access|faulted", kernel, table, block=(1, 1, 1))
	assert "chase(float**)" in message and "freed" in message

	with emu.deferred():  # as on a GPU, a fault in queued work is reported by the call that waits for it
		kernel(table, block=(1, 1, 1))
		expectError(cuda, "freed", cuda.Context.synchronize)


def test_misaligned_128_bit_access_fails_the_launch(cuda):
	kernel = compileKernel('__global__ void wide(const uint4 *x, uint4 *y) { *y = __ldg(x); }', "wide")
	buffer = cuda.mem_alloc(64)
	with emu.deferred(False):
		message = expectError(cuda, "misaligned", kernel, np.intp(int(buffer) + 4), np.intp(int(buffer) + 32), block=(1, 1, 1))
	assert "misaligned 16-byte load" in message


def test_argument_size_mismatch_names_the_kernel_and_its_types(cuda):
	kernel = compileKernel('__global__ void axpy(float *y, const float *x, float a, long long n) { }', "axpy")
	y = cuda.mem_alloc(16)
	kernel.prepare("PPf")  # the long long is missing
	message = expectError(cuda, "takes 32 bytes of arguments", kernel.prepared_call, (1, 1), (1, 1, 1), y, y, 2.0)
	assert "axpy(float*, const float*, float, long long int)" in message and "passed 20" in message


def test_kernel_params_launch(cuda):
	"""cuLaunchKernel with kernelParams (pycuda passes `extra`): the same kernel, arguments by pointer."""
	from pycuda.compiler import compile
	cubin = compile('extern "C" __global__ void axpb(float *y, float a, long long n, float b)'
					'{ long long i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) y[i] = a * y[i] + b; }',
					arch="sm_90", no_extern_c=True)
	lib, module, function = emu.driver(), ctypes.c_void_p(), ctypes.c_void_p()
	assert lib.cuModuleLoadData(ctypes.byref(module), ctypes.c_char_p(cubin)) == 0
	assert lib.cuModuleGetFunction(ctypes.byref(function), module, b"axpb") == 0

	y = cuda.to_device(np.arange(10, dtype=np.float32))
	values = [ctypes.c_uint64(int(y)), ctypes.c_float(2.0), ctypes.c_longlong(10), ctypes.c_float(1.0)]
	params = (ctypes.c_void_p * 4)(*[ctypes.cast(ctypes.byref(v), ctypes.c_void_p) for v in values])
	assert lib.cuLaunchKernel(function, 3, 1, 1, 4, 1, 1, 0, None, params, None) == 0
	np.testing.assert_array_equal(cuda.from_device(y, (10, ), np.float32), 2 * np.arange(10, dtype=np.float32) + 1)
	assert emu.launches()[-1][:3] == ("axpb", (3, 1, 1), (4, 1, 1))


def test_shared_memory_is_a_compile_error(cuda):
	from pycuda.driver import CompileError
	with pytest.raises(CompileError) as info:
		compileKernel('__global__ void tile(float *x) { __shared__ float s[32]; s[0] = x[0]; x[1] = s[0]; }', "tile")
	assert "__shared___is_not_supported_by_the_host_shim" in info.value.stderr


WARP_TEST_SOURCE = Path(__file__).resolve().parents[1] / "cuda_on_host" / "warp_test.cu"


@pytest.fixture(scope="module")
def warpKernels(cuda):
	"""tests/cuda_on_host/warp_test.cu through pycuda: nvcc for the device, the host build runs the marked kernels
	warp-synchronously (cuda_host_shim.h)."""
	from pycuda.compiler import SourceModule
	return SourceModule(WARP_TEST_SOURCE.read_text(), no_extern_c=True)


@pytest.mark.parametrize("order", ["forward", "shuffle"])
def test_warp_kernels_run_in_lockstep(cuda, warpKernels, order):
	"""A butterfly max and sum per warp (the 8-bit state kernel's reduction) in 2-D blocks of 2 warps, blocks in
	either order, and a chain of dependent rotations: right only if every exchange is all-post-then-all-read."""
	rng = np.random.default_rng(5)
	n = 4 * 64
	x, k = rng.standard_normal(n).astype(np.float32), rng.integers(-1000, 1000, n).astype(np.int32)
	maxOut, sumOut = cuda.mem_alloc(4 * n), cuda.mem_alloc(4 * n)
	with emu.blockOrder(order, seed=3):
		warpKernels.get_function("warpReduce")(cuda.In(x), cuda.In(k), maxOut, sumOut, grid=(2, 2), block=(16, 2, 2))
	np.testing.assert_array_equal(cuda.from_device(maxOut, (n, ), np.float32), np.repeat(x.reshape(-1, 32).max(axis=1), 32))
	np.testing.assert_array_equal(cuda.from_device(sumOut, (n, ), np.int32), np.repeat(k.reshape(-1, 32).sum(axis=1), 32))

	u, d = rng.integers(0, 2 ** 32, 64, dtype=np.uint64).astype(np.uint32), rng.standard_normal(64)
	out, dOut = np.zeros((64, 12), np.uint32), np.zeros(64)
	warpKernels.get_function("warpShuffles")(cuda.In(u), cuda.In(d), cuda.Out(out), cuda.Out(dOut), np.int32(7), block=(64, 1, 1))
	lanes = np.arange(64)
	np.testing.assert_array_equal(out[:, 0], u[lanes // 32 * 32 + 5])
	np.testing.assert_array_equal(out[:, 11], u[lanes // 32 * 32 + (lanes + 7) % 32])
	np.testing.assert_array_equal(dOut, d[lanes ^ 1])


def test_warp_kernel_counts_its_trace(cuda):
	"""HOST_SHIM_TRACE counts inside lanes too; the kernel is compiled in pycuda's extern "C" { } wrapping."""
	kernel = compileKernel("""
#ifndef HOST_SHIM_WARP_KERNEL
#define HOST_SHIM_WARP_KERNEL(k)
#define HOST_SHIM_TRACE(path) ((void)0)
#endif
__global__ void warpTrace(float *x)
{
	unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
	HOST_SHIM_TRACE(scalars);
	x[i] = __shfl_down_sync(0xffffffffu, x[i], 1);
}
HOST_SHIM_WARP_KERNEL(warpTrace)
""", "warpTrace")
	x = np.arange(96, dtype=np.float32)
	emu.clearLaunches()
	kernel(cuda.InOut(x), grid=(3, 1), block=(32, 1, 1))
	np.testing.assert_array_equal(x, np.where(np.arange(96) % 32 == 31, np.arange(96), np.arange(96) + 1))
	assert [launch[:5] for launch in emu.launchesOf("warpTrace")] == [("warpTrace", (3, 1, 1), (32, 1, 1), 0, 96)]


@pytest.mark.parametrize("kernel, block, message", [
	("warpDiverge", 64, "kernel warpDiverge(float*) faulted: kernel warpDiverge, block (0, 0, 0), thread (16, 0, 0): the warp "
	 "diverged: lanes 0-15 returned while lanes 16-31 wait at __shfl_xor_sync"),
	("warpPartialMask", 64, "__shfl_xor_sync with mask 0x0000ffff: only full-warp masks"),
	("warpUnmarked", 64, "__shfl_xor_sync in a kernel not marked HOST_SHIM_WARP_KERNEL"),
	("warpDiverge", 48, "a block of 48 threads"),
])
def test_warp_faults_fail_the_launch(cuda, warpKernels, kernel, block, message):
	x = cuda.to_device(np.ones(block, np.float32))
	with emu.deferred(False):
		assert message in expectError(cuda, ".", warpKernels.get_function(kernel), x, block=(block, 1, 1))
	test_warp_kernels_run_in_lockstep(cuda, warpKernels, "forward")


def test_a_memory_fault_inside_a_lane_fails_the_launch(cuda, warpKernels):
	"""A lane reads freed memory while the others wait at a shuffle: the fault handler leaves the lane's stack by
	siglongjmp, the launch fails with the reason, and the next warp launch starts clean."""
	kernel = compileKernel("""
#ifndef HOST_SHIM_WARP_KERNEL
#define HOST_SHIM_WARP_KERNEL(k)
#endif
__global__ void warpChase(float **table, float *out)
{
	out[threadIdx.x] = __shfl_sync(0xffffffffu, threadIdx.x == 3 ? *table[0] : 0.0f, 3);
}
HOST_SHIM_WARP_KERNEL(warpChase)
""", "warpChase")
	target, out = cuda.mem_alloc(4), cuda.mem_alloc(4 * 32)
	table = cuda.to_device(np.array([int(target)], np.uint64))
	target.free()
	with emu.deferred(False):
		message = expectError(cuda, "illegal memory access|faulted", kernel, table, out, block=(32, 1, 1))
	assert "warpChase(float**, float*)" in message and "freed" in message
	test_warp_kernels_run_in_lockstep(cuda, warpKernels, "forward")


def test_unimplemented_entry_points_fail_loudly_with_their_name(cuda, capfd):
	message = expectError(cuda, "not implemented", cuda.managed_empty, (4, ), np.float32, mem_flags=cuda.mem_attach_flags.GLOBAL)
	assert "cuMemAllocManaged is not implemented by the emulated CUDA driver" in message
	assert "cuMemAllocManaged" in capfd.readouterr().err


def test_a_cubin_from_outside_the_nvcc_route_is_refused(cuda):
	"""The emulator cannot run a cubin it has no host build of, and says how to get one."""
	from pycuda.compiler import compile
	cubin = bytearray(compile('extern "C" __global__ void nop() { }', arch="sm_90", no_extern_c=True))
	cubin[-1] ^= 0xFF  # a different cubin: no host build has its hash
	message = expectError(cuda, "no host build", cuda.module_from_buffer, bytes(cubin))
	assert "tests/cuda_emu/nvcc" in message


def test_deferred_mode_holds_work_until_a_synchronizing_call(cuda):
	kernel = compileKernel('__global__ void inc(float *x) { x[threadIdx.x] += 1.0f; }', "inc")
	x = cuda.to_device(np.zeros(4, np.float32))
	stream = cuda.Stream()
	pinned = cuda.pagelocked_zeros(4, np.float32)
	with emu.deferred():
		kernel(x, block=(4, 1, 1), stream=stream)
		cuda.memcpy_dtoh_async(pinned, x, stream)
		assert emu.pendingWork() == 2
		np.testing.assert_array_equal(pinned, 0), "nothing ran: reading before synchronize sees stale memory"
		stream.synchronize()
		np.testing.assert_array_equal(pinned, 1)

		kernel(x, block=(4, 1, 1))  # the NULL stream
		host = np.zeros(4, np.float32)
		cuda.memcpy_dtoh(host, x)  # synchronous: waits for the kernel
		np.testing.assert_array_equal(host, 2)
		assert emu.pendingWork() == 0


def test_deferred_stream_order_follows_the_legacy_default_stream(cuda):
	"""Work on a blocking stream waits for earlier NULL-stream work, and NULL-stream work for earlier stream work."""
	set2 = compileKernel('__global__ void set2(float *x) { x[0] = 2.0f; }', "set2")
	double = compileKernel('__global__ void twice(float *x) { x[0] *= 2.0f; }', "twice")
	x = cuda.to_device(np.ones(1, np.float32))
	stream = cuda.Stream()
	with emu.deferred():
		set2(x, block=(1, 1, 1))
		double(x, block=(1, 1, 1), stream=stream)
		stream.synchronize()  # must run the NULL-stream set2 first
		assert cuda.from_device(x, (1, ), np.float32)[0] == 4.0


def test_events_time_and_synchronize(cuda):
	kernel = compileKernel('__global__ void mark(float *x) { x[0] = 5.0f; }', "mark")
	x = cuda.to_device(np.zeros(1, np.float32))
	start, end = cuda.Event(), cuda.Event()
	with emu.deferred():
		start.record()
		kernel(x, block=(1, 1, 1))
		end.record()
		end.synchronize()
		assert emu.pendingWork() == 0 and end.time_since(start) >= 0.0


@pytest.mark.parametrize("order", ["reverse", "shuffle"])
def test_block_order(cuda, order):
	"""Blocks run one after the other here; reversing or shuffling them exposes code that relies on their order."""
	kernel = compileKernel('__global__ void visit(int *log, int *n) { if (threadIdx.x == 0) log[(*n)++] = blockIdx.x; }', "visit")
	log, n = cuda.to_device(np.zeros(64, np.int32)), cuda.to_device(np.zeros(1, np.int32))
	with emu.blockOrder(order, seed=7):
		kernel(log, n, grid=(64, 1), block=(32, 1, 1))
	visited = cuda.from_device(log, (64, ), np.int32)
	assert sorted(visited) == list(range(64))
	assert list(visited) == (list(range(63, -1, -1)) if order == "reverse" else list(visited)) and list(visited) != list(range(64))


def test_launches_are_recorded(cuda):
	kernel = compileKernel('__global__ void touch(float *x) { x[blockIdx.x * blockDim.x + threadIdx.x] = 0; }', "touch")
	x = cuda.mem_alloc(4 * 6 * 32)
	emu.clearLaunches()
	kernel(x, grid=(6, 1), block=(32, 1, 1))
	assert [launch[:6] for launch in emu.launches()] == [("touch", (6, 1, 1), (32, 1, 1), 0, 0, 0)]
	assert emu.launches()[0].hostSeconds > 0


def test_devices_are_separate(cuda):
	"""A kernel may not touch another device's memory (peer access is off)."""
	if cuda.Device.count() < 2:
		pytest.skip("CUDA_EMU_DEVICES=1")
	kernel = compileKernel('__global__ void zero(float *x) { x[0] = 0; }', "zero")
	other = cuda.Device(1).retain_primary_context()
	other.push()
	foreign = cuda.mem_alloc(4)
	cuda.Context.pop()
	message = expectError(cuda, "memory of device 1", kernel, foreign, block=(1, 1, 1))
	assert "the launch is on device 0" in message
	other.push()
	foreign.free()
	cuda.Context.pop()
	other.detach()


def inFreshDriver(code, **env):
	"""Runs ``code`` in a new process on the emulated driver (its settings are read at cuInit) with ``env`` added;
	returns what it printed as JSON."""
	import json
	import os
	import subprocess
	import sys
	result = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, **env), capture_output=True, text=True, timeout=600)
	assert result.returncode == 0, result.stderr[-3000:]
	return json.loads(result.stdout.strip().splitlines()[-1])


VISIBLE = """
import json, pycuda.driver as cuda
cuda.init()
print(json.dumps([cuda.Device(i).pci_bus_id() for i in range(cuda.Device.count())]))
"""


@pytest.mark.parametrize("visible, physical", [
	("2,0", [2, 0]),          # a subset, in the order given, renumbered from 0
	("3", [3]),
	("1,7,2", [1]),           # the list ends at the first device that does not exist
	("1,x,2", [1]),           # ... or at an entry that is no ordinal
	("2,2,0", [2]),           # ... or at a repeat
	("-1", []),
	("", []),                 # set but empty: no device
])
def test_cuda_visible_devices_as_the_driver_reads_it(visible, physical):
	busIds = inFreshDriver(VISIBLE, CUDA_EMU_DEVICES="4", CUDA_VISIBLE_DEVICES=visible)
	assert busIds == ["0000:%02x:00.0" % (p + 1) for p in physical]


def test_without_cuda_visible_devices_every_device_is_visible():
	env = {"CUDA_EMU_DEVICES": "3"}
	import os
	if "CUDA_VISIBLE_DEVICES" in os.environ:
		pytest.skip("CUDA_VISIBLE_DEVICES is set for this run")
	assert inFreshDriver(VISIBLE, **env) == ["0000:%02x:00.0" % (p + 1) for p in range(3)]


#: the CUDA C++ Programming Guide, "Technical Specifications per Compute Capability": resident threads, resident
#: blocks, 32-bit registers, shared memory (bytes) per SM, shared memory per block (opt-in); checked on 2026-12-02
#: against NVIDIA CCCL's cuda/__device/arch_traits.h (the same figures; opt-in = per SM less 1 KiB reserved from 8.0)
SPECIFICATIONS = {(7, 0): (2048, 32, 65536, 96 * 1024, 96 * 1024), (7, 5): (1024, 16, 65536, 64 * 1024, 64 * 1024),
				  (8, 0): (2048, 32, 65536, 164 * 1024, 163 * 1024), (8, 6): (1536, 16, 65536, 100 * 1024, 99 * 1024),
				  (8, 9): (1536, 24, 65536, 100 * 1024, 99 * 1024), (9, 0): (2048, 32, 65536, 228 * 1024, 227 * 1024),
				  (10, 0): (2048, 32, 65536, 228 * 1024, 227 * 1024), (12, 0): (1536, 32, 65536, 100 * 1024, 99 * 1024)}

ATTRIBUTES = """
import json, pycuda.driver as cuda
cuda.init()
d, a = cuda.Device(0), cuda.device_attribute
print(json.dumps([d.compute_capability(), d.name(), [d.get_attribute(x) for x in (a.MAX_THREADS_PER_MULTIPROCESSOR,
	a.MAX_BLOCKS_PER_MULTIPROCESSOR, a.MAX_REGISTERS_PER_MULTIPROCESSOR, a.MAX_SHARED_MEMORY_PER_MULTIPROCESSOR,
	a.MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)]]))
"""


@pytest.mark.parametrize("capability", sorted(SPECIFICATIONS))
def test_compute_capability_sets_the_architectures_limits(capability):
	cc, name, limits = inFreshDriver(ATTRIBUTES, CUDA_EMU_COMPUTE_CAPABILITY="%d.%d" % capability)
	assert tuple(cc) == capability and "sm_%d%d" % capability in name
	assert tuple(limits) == SPECIFICATIONS[capability]


#: a kernel whose register count depends on the architecture; ptxas reports it independently of the emulator
OCCUPANCY_KERNEL = r"""
extern "C" __global__ void manyRegisters(float *out, const float *in, int n)
{
	float acc[24];
	for (int k = 0; k < 24; k++)
		acc[k] = in[(threadIdx.x + k * 97) % n];
	for (int i = 0; i < n; i++)
		for (int k = 0; k < 24; k++)
			acc[k] = acc[k] * in[(i + k) % n] + acc[(k + 1) % 24];
	float s = 0;
	for (int k = 0; k < 24; k++)
		s += acc[k] * (k + 1);
	out[threadIdx.x] = s;
}
"""

OCCUPANCY = """
import ctypes, json, sys, pycuda.driver as cuda
from pycuda import compiler
cuda.init()
context = cuda.Device(0).retain_primary_context()
context.push()
major, minor = cuda.Device(0).compute_capability()
cubin = compiler.compile(sys.argv[1] if len(sys.argv) > 1 else open(%r).read(), arch="sm_%%d%%d" %% (major, minor), cache_dir=False,
						 no_extern_c=True)
lib = ctypes.CDLL("libcuda.so.1")
module, function = ctypes.c_void_p(), ctypes.c_void_p()
assert lib.cuModuleLoadData(ctypes.byref(module), ctypes.c_char_p(cubin)) == 0
assert lib.cuModuleGetFunction(ctypes.byref(function), module, b"manyRegisters") == 0
regs = ctypes.c_int()
assert lib.cuFuncGetAttribute(ctypes.byref(regs), 4, function) == 0  # CU_FUNC_ATTRIBUTE_NUM_REGS
answers = {}
for block in (32, 64, 96, 128, 256, 512, 768, 1024):
	blocks, withFlags = ctypes.c_int(), ctypes.c_int()
	assert lib.cuOccupancyMaxActiveBlocksPerMultiprocessor(ctypes.byref(blocks), function, block, ctypes.c_size_t(0)) == 0
	assert lib.cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(ctypes.byref(withFlags), function, block, ctypes.c_size_t(0), 0) == 0
	assert blocks.value == withFlags.value
	answers[block] = blocks.value
context.pop()
print(json.dumps([regs.value, answers]))
"""


def ptxasRegisters(source, arch, tmp_path):
	"""The register count ptxas -v reports for the kernel (the real nvcc, not the emulator's route)."""
	import os
	import re
	import subprocess
	path = tmp_path / "k.cu"
	path.write_text(source)
	result = subprocess.run([os.environ["CUDA_EMU_REAL_NVCC"], "--cubin", "-arch", arch, "--resource-usage", "-o",
							 str(tmp_path / "k.cubin"), str(path)], capture_output=True, text=True, check=True)
	return int(re.search(r"Used (\d+) registers", result.stdout + result.stderr).group(1))


def calculatorBlocks(capability, registers, block):
	"""NVIDIA's occupancy calculator: warps in units of 4, registers per warp in units of 256, the per-SM limits."""
	threads, blocks, registerFile, _, _ = SPECIFICATIONS[capability]
	warps = -(-block // 32)
	perWarp = -(-registers * 32 // 256) * 256
	byRegisters = (registerFile // perWarp) // 4 * 4 // warps
	return min(blocks, threads // 32 // warps, byRegisters)


@pytest.mark.parametrize("capability", [(7, 5), (8, 6), (9, 0)])
def test_occupancy_follows_the_kernels_registers_and_the_architecture(capability, tmp_path):
	source = tmp_path / "kernel.cu"
	source.write_text(OCCUPANCY_KERNEL)
	registers, answers = inFreshDriver(OCCUPANCY % str(source), CUDA_EMU_COMPUTE_CAPABILITY="%d.%d" % capability)
	assert registers == ptxasRegisters(OCCUPANCY_KERNEL, "sm_%d%d" % capability, tmp_path) and registers > 32
	expected = {str(block): calculatorBlocks(capability, registers, block) for block in map(int, answers)}
	assert answers == expected
	assert len(set(answers.values())) > 2, "the limits that bind differ across block sizes"


PTX = """
import json, numpy as np, pycuda.driver as cuda
from pycuda import compiler
cuda.init()
context = cuda.Device(0).retain_primary_context()
context.push()
source = 'extern "C" __global__ void twice(float *a) { a[threadIdx.x] *= 2.0f; }'
outcome = {}
for kind, arch in (("ptx", "compute_80"), ("ptx", "compute_90"), ("ptx", "compute_120"), ("cubin", "sm_90"), ("cubin", "sm_80")):
	image = compiler.compile(source, arch=arch, target=kind, cache_dir=False, no_extern_c=True)
	try:
		function = cuda.module_from_buffer(image).get_function("twice")
	except cuda.Error as e:
		outcome[arch] = str(e)
		continue
	a = np.arange(32, dtype=np.float32)
	function(cuda.InOut(a), block=(32, 1, 1), grid=(1, 1))
	outcome[arch] = a.tolist()
context.pop()
print(json.dumps(outcome))
"""


def test_ptx_loads_on_devices_at_least_as_new_as_its_target_and_cubins_on_their_own_architecture():
	outcome = inFreshDriver(PTX, CUDA_EMU_COMPUTE_CAPABILITY="9.0")
	doubled = [2.0 * i for i in range(32)]
	assert outcome["compute_80"] == doubled and outcome["compute_90"] == doubled and outcome["sm_90"] == doubled
	assert "targets sm_120, newer than the device" in outcome["compute_120"]
	assert "the cubin is sm_80, the device is compute capability 9.0" in outcome["sm_80"]
