"""The CUDA backend against the NumPy reference, bit for bit, on a GPU or on the emulated CUDA driver
(tests/cuda_emu/run; tests/test_cuda_emulated.py runs this file there in CI). On the emulator also what only it can
see: launch shapes, which rows take the 128-bit path, and missing synchronization (deferred mode). Skipped, with
the reason, where there is neither."""
import contextlib
import gc
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ParamBag, randomGrads, snapshot
from reference import rmspropStep
from puzzlelib_rmsprop import RMSProp
from puzzlelib_rmsprop.Backend import getBackend
from puzzlelib_rmsprop.Backend.dtypes import bfloat16
from puzzlelib_rmsprop.Backend.TensorTable import TensorList
from puzzlelib_rmsprop.Kernels import Flavour
from puzzlelib_rmsprop.bench import referenceKernels

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cuda_emu"))
import emu  # noqa: E402

pytestmark = pytest.mark.gpu
DTYPES = [np.float32, np.float16] + ([bfloat16] if bfloat16 is not None else [])
SMS, BLOCK = 132, 256  # the emulated device's SM count; the backend's block


def cudaBackend():
	"""The process's backend if it is CUDA, else a CUDA backend of this module's own; skips the module without one."""
	from puzzlelib_rmsprop.Errors import BackendError
	if getBackend().name == "cuda":
		return getBackend()
	try:
		from puzzlelib_rmsprop.Backend.CudaBackend import CudaBackend
		return CudaBackend()
	except BackendError as e:
		pytest.skip("no usable CUDA device (tests/test_cuda_emulated.py runs this on the emulated driver): %s" % e,
					allow_module_level=True)


CUDA = cudaBackend()


@pytest.fixture(scope="module")
def cuda():
	return CUDA


@pytest.fixture
def cudaProcess(cuda):
	"""For optimizer-level tests: the process's backend must be the CUDA one (PUZZLELIB_RMSPROP_BACKEND=cuda)."""
	if getBackend() is not cuda:
		pytest.skip("the process's backend is %s; run with PUZZLELIB_RMSPROP_BACKEND=cuda" % getBackend().name)
	return cuda


@pytest.fixture
def emulated(cuda):
	if not emu.isEmulated():
		pytest.skip("only the emulated driver records launches and iterations")
	emu.clearLaunches()


def update(cuda, host, offset, learnRate=1e-2):
	"""One launch over (param, grad, ms) copied to the device, each starting ``offset`` elements into its buffer."""
	views = [cuda.to_gpu(h)[offset:] for h in host]
	lists = [TensorList([v], cuda.pointerOf) for v in views]
	cuda.rmsprop(lists[0].launchTable(cuda, lists[1], lists[2], [learnRate]), Flavour(0.9, 1e-5))
	return views


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size, offset", [(1, 0), (7, 1), (1023, 3), (2 ** 20 + 5, 2), (3 * 2 ** 20, 0)])
def test_update_matches_reference(cuda, dtype, size, offset):
	rng = np.random.default_rng(size)
	host = [rng.standard_normal(size + offset).astype(dtype) for _ in range(2)] + [rng.random(size + offset).astype(dtype)]
	views = update(cuda, host, offset)

	expectedP, expectedM = rmspropStep(host[0][offset:], host[1][offset:], host[2][offset:], 1e-2)
	np.testing.assert_array_equal(views[2].get(), expectedM)
	np.testing.assert_array_equal(views[0].get(), expectedP)


@pytest.mark.parametrize("dtype", DTYPES)
def test_zeros_and_fill_for_every_dtype(cuda, dtype):
	"""pycuda's own fill kernel cannot map float16 or bfloat16 (dtype_to_ctype raises), and zeros, setupState,
	SharedArray and zeroGradParams all fill: the backend fills through cuMemsetD16/D32 instead."""
	zeros = cuda.zeros((5, 3), dtype)
	np.testing.assert_array_equal(zeros.get(), np.zeros((5, 3), dtype))
	np.testing.assert_array_equal(zeros.fill(-1.5).get(), np.full((5, 3), -1.5, dtype))

	import pycuda.gpuarray
	foreign = pycuda.gpuarray.to_gpu(np.ones(7, dtype))  # an array the user made with pycuda itself
	cuda.fill(foreign, 2.25)
	np.testing.assert_array_equal(foreign.get(), np.full(7, 2.25, dtype))
	assert cuda.zeros((0, ), dtype)[1:].size == 0, "an empty array can be sliced"


@pytest.mark.parametrize("dtype", DTYPES)
def test_divide_matches_numpy(cuda, dtype):
	"""Grid's mean under CUDA-aware MPI: the device division rounds as np.divide does on the host."""
	host = (np.random.default_rng(5).standard_normal(1001) * 100).astype(dtype)
	ary = cuda.to_gpu(host)
	cuda.divide(ary, 3)
	np.testing.assert_array_equal(ary.get(), np.divide(host, host.dtype.type(3)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_training_16_bit_variables_with_every_fill(cudaProcess, dtype, rng):
	"""zeroGradParams, setupState (ms zeros, initialMs) and the global-state buffers on float16 and bfloat16."""
	for useGlobalState in (False, True):
		bag = ParamBag({"w": ((33, ), dtype), "b": ((8, ), dtype)}, rng=np.random.default_rng(1))
		opt = RMSProp(learnRate=1e-2, initialMs=1.0, centered=True)
		opt.setupOn(bag, useGlobalState=useGlobalState)
		randomGrads(bag, rng)
		opt.zeroGradParams()
		assert not any(var.grad.get().astype(np.float32).any() for var in bag.vars.values())
		np.testing.assert_array_equal(opt.states["bag.w"]["ms"].get(), np.ones(33, dtype))
		before = snapshot(bag)
		opt.update()  # zero grads: nothing moves
		for name, value in snapshot(bag).items():
			np.testing.assert_array_equal(value, before[name])


def calculatorBlocksPerSM(registers, threadsPerSM, blocksPerSM, registersPerSM, block=BLOCK):
	"""NVIDIA's occupancy calculator (no shared memory): warps in units of 4, registers per warp in units of 256."""
	warps = -(-block // 32)
	perWarp = -(-registers * 32 // 256) * 256
	return min(blocksPerSM, threadsPerSM // 32 // warps, (registersPerSM // perWarp) // 4 * 4 // warps)


def occupancyOf(cuda, name):
	"""Blocks per SM of kernel ``name`` on this device, by the calculator from its registers and the SM's limits."""
	driver = cuda.driver
	registers = cuda.module().get_function(name).get_attribute(driver.function_attribute.NUM_REGS)
	a = driver.device_attribute
	return calculatorBlocksPerSM(registers, *(cuda.device.get_attribute(x) for x in (
		a.MAX_THREADS_PER_MULTIPROCESSOR, a.MAX_BLOCKS_PER_MULTIPROCESSOR, a.MAX_REGISTERS_PER_MULTIPROCESSOR)))


def expectedGrid(elements, itemsize, cuda=CUDA, name="rmspropFloat32"):
	"""The design: one 16-byte packet per thread per iteration, at most one full wave (occupancy times SMs)."""
	packets = -(-elements * itemsize // 16)
	return max(1, min(cuda.smCount * occupancyOf(cuda, name), -(-packets // BLOCK)))


@pytest.mark.parametrize("dtype, size", [(np.float32, 2 ** 20 + 5), (np.float16, 2 ** 20 + 5), (np.float32, 1000),
										 (np.float32, 2 ** 24)])
def test_launch_shape(cuda, emulated, dtype, size):
	"""A grid large enough to fill the GPU (a kernel whose grid is one block would still be correct, and slow)."""
	host = [np.ones(size, dtype)] * 3
	update(cuda, host, 0)
	(launch, ) = emu.launchesOf("rmsprop")
	assert launch.block == (BLOCK, 1, 1)
	name = "rmsprop" + ("Float32" if np.dtype(dtype) == np.float32 else "Float16")
	assert launch.grid == (expectedGrid(size, np.dtype(dtype).itemsize, cuda, name), 1, 1)
	assert size < 10 ** 4 or launch.grid[0] > 500, "large tensors spread over hundreds of blocks"


@pytest.mark.parametrize("dtype, width", [(np.float32, 4), (np.float16, 8)])
@pytest.mark.parametrize("useGlobalState", [False, True])
def test_aligned_rows_take_the_128_bit_path(cudaProcess, emulated, dtype, width, useGlobalState, rng):
	"""Variables whose sizes are whole packets, in their own allocations or packed into the global-state buffer
	(whose blocks start on 16-byte boundaries), are updated by 128-bit packets only: no scalar iteration."""
	sizes = [8, 64, 1024, 40, 8 * 37]
	bag = ParamBag({"v%d" % i: ((n, ), dtype) for i, n in enumerate(sizes)}, rng=np.random.default_rng(2))
	opt = RMSProp()
	opt.setupOn(bag, useGlobalState=useGlobalState)
	randomGrads(bag, rng)
	emu.clearLaunches()
	opt.update()

	(launch, ) = emu.launchesOf("rmsprop")
	assert (launch.packets, launch.scalars) == (sum(sizes) // width, 0)


def test_unaligned_rows_take_scalar_heads_and_tails(cuda, emulated):
	"""The counters see both paths: a tensor 3 elements into its buffer has a scalar head, packets and a tail."""
	size, offset = 1003, 3
	update(cuda, [np.ones(size + offset, np.float32)] * 3, offset)
	(launch, ) = emu.launchesOf("rmsprop")
	head = 1  # 3 floats in, 1 more reaches the next 16-byte boundary
	assert launch.scalars == head + (size - head) % 4 and launch.packets == (size - head) // 4


def test_non_finite_check_waits_for_its_flag(cudaProcess, rng):
	"""skipNonFinite reads a flag the check kernels write: in deferred mode, a read that does not wait for them
	sees the flag's old value and the step with a NaN is not skipped."""
	bag = ParamBag({"w": ((1000, ), np.float32), "h": ((77, ), np.float16)}, rng=rng)
	opt = RMSProp(skipNonFinite=True)
	opt.setupOn(bag, useGlobalState=True)
	grads = randomGrads(bag, rng)
	grads["h"][50] = np.inf
	bag.getVar("h").grad.set(grads["h"])
	before = snapshot(bag)

	with emu.deferred() if emu.isEmulated() else contextlib.nullcontext():
		opt.update()
	assert opt.skippedSteps == 1 and opt.t == 0
	for name, value in snapshot(bag).items():
		np.testing.assert_array_equal(value, before[name])


def test_updates_allocate_nothing_per_step(cudaProcess, emulated, rng):
	bag = ParamBag({"w": ((100, ), np.float32)}, rng=rng)
	opt = RMSProp(skipNonFinite=True)
	opt.setupOn(bag)
	randomGrads(bag, rng)
	opt.update()
	gc.collect()  # earlier tests' garbage, freed whenever the collector runs, is not this optimizer's
	live = emu.liveAllocations()
	for _ in range(3):
		opt.update()
	gc.collect()
	assert emu.liveAllocations() == live



def test_fill_of_8_byte_items_goes_to_the_arrays_own_fill(cuda):
	"""No memset has 8-byte items: float64 arrays (ours, and pycuda's own) are filled by pycuda's fill kernel."""
	import pycuda.gpuarray
	for ary in (cuda.to_gpu(np.zeros(6, np.float64)), pycuda.gpuarray.to_gpu(np.zeros(6, np.float64))):
		cuda.fill(ary, -0.75)
		np.testing.assert_array_equal(ary.get(), np.full(6, -0.75))


def test_fill_on_a_stream(cuda):
	stream = cuda.streams(1)[0]
	ary = cuda.zeros((9, ), np.float16)
	cuda.fill(ary, 0.5, stream)
	cuda.synchronize([stream])
	np.testing.assert_array_equal(ary.get(), np.full(9, 0.5, np.float16))


def test_empty_tables_launch_nothing(cuda):
	from puzzlelib_rmsprop.Kernels import Flavour, flavourUpdate
	if emu.isEmulated():
		emu.clearLaunches()
	empty = [cuda.zeros((0, ), np.float32) for _ in range(4)]
	flavourUpdate(empty[0], empty[1], empty[2], None, empty[3], 1e-3, 0.9, Flavour(0.9, 1e-5, momentumMode=1))
	update(cuda, [np.zeros(0, np.float32)] * 3, 0)
	from puzzlelib_rmsprop.Kernels import quant8Update
	from puzzlelib_rmsprop.Quantized8 import zeros
	quant8Update(empty[0], empty[1], zeros((0, ), False, cuda), None, None, 1e-3, 0.0, Flavour(0.9, 1e-5))
	assert not emu.isEmulated() or emu.launches() == []


def test_kernels_compile_for_an_explicit_architecture(cuda):
	from puzzlelib_rmsprop.Backend.CudaBackend import compileKernels
	cubin = compileKernels(arch="sm_80")
	assert cubin[:4] == b"\x7fELF" and b"rmspropFloat16" in cubin and b"divideBfloat16" in cubin


@pytest.mark.parametrize("missing, message", [
	("pycuda", "pycuda is not installed (pip install 'puzzlelib_rmsprop[cuda]')"),
	("pycuda.driver", "cannot load the CUDA driver library (no NVIDIA driver?)"),
])
def test_missing_pycuda_pieces_are_named(cuda, monkeypatch, missing, message):
	from puzzlelib_rmsprop.Backend.CudaBackend import importPycuda
	from puzzlelib_rmsprop.Errors import BackendError
	monkeypatch.setitem(sys.modules, missing, None)  # importing it now raises ImportError
	with pytest.raises(BackendError, match=re.escape(message)):
		importPycuda()


@pytest.mark.parametrize("sabotage, message", [
	("init", "the CUDA driver failed to initialise: "),
	("count", "the CUDA driver sees no device"),
	("index", "Config.deviceIdx is 99 but there are"),
])
def test_unusable_driver_or_device_is_explained(cuda, monkeypatch, sabotage, message):
	from puzzlelib_rmsprop.Backend.CudaBackend import CudaBackend
	from puzzlelib_rmsprop.Errors import BackendError
	driver = cuda.driver
	if sabotage == "init":
		def failingInit(*args):
			raise driver.LogicError("cuInit failed: no CUDA-capable device is detected")
		monkeypatch.setattr(driver, "init", failingInit)
	elif sabotage == "count":
		monkeypatch.setattr(driver.Device, "count", staticmethod(lambda: 0))
	with pytest.raises(BackendError, match=re.escape(message)):
		CudaBackend(99 if sabotage == "index" else 0)


def test_threads_get_the_backends_context_or_a_clear_error(cuda):
	"""A thread with no context gets the backend's; one with another context current is refused, naming both."""
	import threading
	outcomes = []

	def plain():
		outcomes.append(cuda.to_gpu(np.arange(3, dtype=np.float32)).get().tolist())

	def withOwnContext():
		own = cuda.driver.Device(0).make_context()  # a second context, current on this thread
		try:
			cuda.zeros((2, ), np.float32)
		except Exception as e:  # noqa: BLE001
			outcomes.append(str(e))
		finally:
			own.pop()
			own.detach()

	for target in (plain, withOwnContext):
		thread = threading.Thread(target=target, name=target.__name__)
		thread.start()
		thread.join()
	assert outcomes[0] == [0.0, 1.0, 2.0]
	assert re.match(r"thread 'withOwnContext' has another CUDA context current \(0x[0-9a-f]+\) than the one", outcomes[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_traffic_limit_kernel_reads_three_and_writes_two(cuda, dtype):
	"""The benchmark's same-traffic reference moves what the update moves: param <- ms, ms <- param + grad."""
	host = [np.random.default_rng(7).standard_normal(10_003).astype(dtype) for _ in range(3)]
	arrays = [cuda.to_gpu(h) for h in host]
	lists = [TensorList([a], cuda.pointerOf) for a in arrays]
	referenceKernels.traffic(cuda, lists[0].launchTable(cuda, lists[1], lists[2], [1.0]))
	np.testing.assert_array_equal(arrays[0].get(), host[2])
	np.testing.assert_array_equal(arrays[2].get(), (host[0].astype(np.float32) + host[1]).astype(dtype))
	with pytest.raises(ValueError, match="only the same-traffic reference"):
		referenceKernels.traffic(cuda, lists[0].launchTable(cuda, lists[1], lists[2], [1.0]), kind=1)


OCCUPANCY_GRIDS = """
import json, types, numpy as np
from puzzlelib_rmsprop.Backend.CudaBackend import CudaBackend
cuda = CudaBackend(0)
driver, a = cuda.driver, cuda.driver.device_attribute
limits = [cuda.device.get_attribute(x) for x in (a.MAX_THREADS_PER_MULTIPROCESSOR, a.MAX_BLOCKS_PER_MULTIPROCESSOR,
	a.MAX_REGISTERS_PER_MULTIPROCESSOR)]
names = ["rmspropFloat32", "rmspropFloat16", "flavourFloat32", "flavourFloat16State32", "quant8Float32", "quant8Float16",
	"nonFiniteFloat32", "decayGradFloat32"]
registers = {n: cuda.module().get_function(n).get_attribute(driver.function_attribute.NUM_REGS) for n in names}
rows = np.zeros(1, [("size", np.int64), ("blocks", np.int64)])
rows["size"], rows["blocks"] = 1 << 30, 1 << 30
table = types.SimpleNamespace(rows=rows, dtype=np.dtype(np.float32), grid=1 << 30)
grids = {n: cuda.maxGrid(n) for n in names}
grids["quant8"] = cuda.quant8Grid(table)
grids["launch"] = cuda.launchGrid(table, "flavourFloat32")
from puzzlelib_rmsprop.Backend.CudaOccupancy import blocksPerSM
grids["calculator"] = {n: blocksPerSM(driver, cuda.device, cuda.module().get_function(n), None, n, 256) for n in names}
print(json.dumps([cuda.smCount, limits, registers, grids]))
"""


@pytest.mark.parametrize("capability", ["7.5", "8.6", "9.0"])
def test_grids_follow_each_kernels_occupancy(emulated, capability):
	"""Grids are one full wave of each kernel: its blocks per SM from the driver's occupancy answer (the kernel's real
	registers against the architecture's per-SM limits), times the SM count; never the old fixed 8 per SM."""
	import json
	import os
	import subprocess
	env = dict(os.environ, CUDA_EMU_COMPUTE_CAPABILITY=capability)
	result = subprocess.run([sys.executable, "-c", OCCUPANCY_GRIDS], env=env, capture_output=True, text=True, timeout=600)
	assert result.returncode == 0, result.stderr[-3000:]
	sms, limits, registers, grids = json.loads(result.stdout.strip().splitlines()[-1])
	perSM = {name: calculatorBlocksPerSM(regs, *limits) for name, regs in registers.items()}
	for name in registers:
		assert grids[name] == sms * perSM[name], (capability, name, registers[name], grids[name])
	assert grids["calculator"] == perSM, "the fallback without the driver's answer computes the same"
	assert grids["quant8"] == sms * perSM["quant8Float32"] and grids["launch"] == sms * perSM["flavourFloat32"]
	# the limits that bind: threads per SM on 7.5 (1,024: 4 blocks of 256), registers for the 8-bit kernels
	assert perSM["rmspropFloat32"] == min(8, limits[0] // BLOCK) or registers["rmspropFloat32"] > 32
	assert perSM["quant8Float32"] < perSM["rmspropFloat32"], "the 8-bit kernels' registers bind"
	if capability == "7.5":
		assert perSM["rmspropFloat32"] <= 4


ROW_KERNELS = [({}, "rmspropFloat32"), ({"centered": True}, "flavourFloat32"), ({"stateBits": 8}, "quant8Float32")]


@pytest.mark.parametrize("options, kernel", ROW_KERNELS, ids=["plain", "centered", "8-bit"])
@pytest.mark.parametrize("useGlobalState", [False, True])
@pytest.mark.parametrize("even", [True, False])
def test_threads_read_only_the_rows_they_work_on(cudaProcess, emulated, options, kernel, useGlobalState, even):
	"""1,000 small tensors (issue 21): for each row a thread works on, it reads the table's last row (the launch's
	total), the first unit of the row it searches from, a few probes and the row itself (multi_tensor_apply.cuh,
	visitRows): at most 3 probes for rows of equal size (an interpolated guess and a gallop), 2 log2(rows) + 1 for
	others. Before, every thread read every row: 1,000 per thread here. Tables of a few rows (global state) take the
	kernel that walks them all (CudaBackend.FEW_ROWS). Bit-exactness on the same tables is the reference suites'."""
	from puzzlelib_rmsprop.Backend.TensorTable import FLAVOUR_SPAN, packetRowUnits
	from puzzlelib_rmsprop.Quantized8 import blocksOf
	from row_walk import measure
	sizes = [64] * 1000 if even else [int(n) for n in np.random.default_rng(3).integers(1, 300, 1000)]
	launch = measure(options, useGlobalState, sizes, rounds=1)
	assert launch.kernel.startswith(kernel), launch
	threads = launch.grid[0] * launch.block[0]
	# units of the tables before merging (merged rows have as many or fewer); the 8-bit kernels' workers are warps
	units, workers = {"rmspropFloat32": (int(packetRowUnits(sizes, 4).sum()), threads),
					  "flavourFloat32": (sum(-(-n // FLAVOUR_SPAN) for n in sizes), threads),
					  "quant8Float32": (sum(blocksOf(n) for n in sizes), threads // 32)}[kernel]
	visits = -(-units // workers)  # rows a worker can visit at most: one per unit it takes
	probes = 3 if even else 2 * int(np.ceil(np.log2(len(sizes)))) + 1
	assert launch.rows <= threads * (1 + visits * (probes + 3)), (launch, units, workers)
	assert launch.rows < threads * len(sizes) / 20, "far below every thread reading every row"
