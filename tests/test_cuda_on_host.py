"""kernels/rmsprop.cu executed on the host: the same source the GPU runs, compiled as C++ through
tests/cuda_on_host/cuda_host_shim.h, every (block, thread) of the grid run in turn. Checks the index math,
the 128-bit packet path with scalar heads and tails, misaligned tensors, bfloat16 and the multi-tensor table
(built by the library's own TensorTable code) against the NumPy reference, bit for bit."""
import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import CUDA_INSTALL_FOLDERS, cudaRoot, requireTool
from reference import flavourStep, rmspropStep, weightDecay
from puzzlelib_rmsprop.Backend.CpuBackend import pointerOf
from puzzlelib_rmsprop.Backend.kernelSource import kernelDir
from puzzlelib_rmsprop.Backend.TensorTable import FlavourTable, LaunchTable, TensorList

HERE = Path(__file__).resolve().parent / "cuda_on_host"


def hostToolchain():
	"""A C++ compiler and the CUDA headers (CUDA_ROOT, then the usual install folders); the CI gate otherwise."""
	compiler = shutil.which("g++") or shutil.which("c++")
	if compiler is None:
		requireTool("no C++ compiler (g++ or c++)")
	root = cudaRoot()
	if root is None:
		requireTool("no CUDA headers (include/cuda_fp16.h) under CUDA_ROOT or %s" % ", ".join(CUDA_INSTALL_FOLDERS))
	return compiler, root / "include"


DTYPE_CODES = {"float32": 0, "float16": 1, "bfloat16": 2}


@pytest.fixture(scope="module")
def hostCuda(tmp_path_factory):
	compiler, cudaInclude = hostToolchain()

	library = tmp_path_factory.mktemp("hostcuda") / "hostlaunch.so"
	# -ffp-contract=off mirrors --fmad=false on the device
	subprocess.run([compiler, "-std=c++17", "-O2", "-ffp-contract=off", "-shared", "-fPIC", "-I", str(cudaInclude),
					"-I", str(kernelDir()), "-I", str(HERE), "-o", str(library), str(HERE / "host_launch.cpp")], check=True)

	lib = ctypes.CDLL(str(library))
	lib.hostRmsprop.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_float, ctypes.c_float,
								ctypes.c_uint, ctypes.c_uint]
	lib.hostWeightDecay.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_float, ctypes.c_longlong,
									ctypes.c_uint, ctypes.c_uint]
	lib.hostNonFinite.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_uint, ctypes.c_uint]
	lib.hostFlavour.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_float, ctypes.c_float, ctypes.c_float,
								ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_uint, ctypes.c_uint]
	lib.hostQuant8.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_float, ctypes.c_float, ctypes.c_float,
							   ctypes.c_int, ctypes.c_int, ctypes.c_uint, ctypes.c_uint]
	lib.hostLastFault.restype = ctypes.c_char_p
	return FaultChecked(lib)


class FaultChecked:
	"""The host launches, each followed by a check that no access faulted (a misaligned packet)."""

	def __init__(self, lib):
		self.lib = lib

	def __getattr__(self, name):
		function = getattr(self.lib, name)

		def checked(*args):
			result = function(*args)
			fault = self.lib.hostLastFault()
			assert fault is None, "%s faulted: %s" % (name, fault.decode())
			return result

		return checked


class HostGrid:
	"""Stands in for the CUDA backend when the tables are built: a grid of its own."""

	def __init__(self, grid, block):
		self.grid, self.block = grid, block

	def prepareTable(self, rows, dtype):
		return LaunchTable(rows, dtype, rows.__array_interface__["data"][0], grid=self.grid)

	def refreshTable(self, table):
		pass

	pointerOf = staticmethod(pointerOf)


def toBfloat16Bits(x):
	"""float32 -> bfloat16 bits, round to nearest even (as __float2bfloat16_rn)."""
	u = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
	return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def fromBfloat16Bits(bits):
	return (np.asarray(bits, np.uint16).astype(np.uint32) << 16).view(np.float32)


def storage(dtype):
	"""(NumPy storage dtype, encode float32 -> stored, decode stored -> float32)."""
	if dtype == "bfloat16":
		return np.uint16, toBfloat16Bits, fromBfloat16Bits
	return np.dtype(dtype), lambda x: np.asarray(x).astype(dtype), lambda x: np.asarray(x).astype(np.float32)


def runTable(hostCuda, dtype, tensors, grid, block, learnRates, factor=0.9, epsilon=1e-5):
	"""tensors: list of (param, grad, ms) stored arrays; updates them in place with one host 'launch'."""
	lists = [TensorList([t[k] for t in tensors], pointerOf) for k in range(3)]
	for tl in lists:
		tl.dtype = np.dtype(np.float16) if dtype == "bfloat16" else np.dtype(dtype)  # same itemsize for table math
	table = lists[0].launchTable(HostGrid(grid, block), lists[1], lists[2], learnRates)
	hostCuda.hostRmsprop(DTYPE_CODES[dtype], table.address, len(table.rows), factor, epsilon, grid, block)
	return table


def expected(dtype, param, grad, ms, learnRate, factor=0.9, epsilon=1e-5):
	_, encode, decode = storage(dtype)
	p, m = rmspropStep(decode(param), decode(grad), decode(ms), learnRate, factor, epsilon)
	return encode(p), encode(m)


def makeTensor(rng, dtype, size, offsets):
	"""(param, grad, ms) stored arrays of ``size`` elements, each starting ``offsets[k]`` elements into a buffer."""
	store, encode, _ = storage(dtype)
	out = []
	for k, offset in enumerate(offsets):
		values = rng.random(size + offset) if k == 2 else rng.standard_normal(size + offset)
		out.append(np.ascontiguousarray(encode(values.astype(np.float32)).astype(store))[offset:])
	return out


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("size", [1, 3, 4, 5, 8, 17, 1000, 4099])
@pytest.mark.parametrize("offset", [0, 1, 2, 3])
def test_one_tensor_any_alignment(hostCuda, dtype, size, offset):
	rng = np.random.default_rng(size * 10 + offset)
	tensor = makeTensor(rng, dtype, size, [offset] * 3)
	want = expected(dtype, *[t.copy() for t in tensor], 1e-2)

	runTable(hostCuda, dtype, [tensor], grid=3, block=32, learnRates=[1e-2])
	np.testing.assert_array_equal(tensor[0], want[0])
	np.testing.assert_array_equal(tensor[2], want[1])


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_differently_misaligned_pointers_take_the_scalar_path(hostCuda, dtype):
	rng = np.random.default_rng(9)
	tensor = makeTensor(rng, dtype, 999, [0, 1, 3])
	want = expected(dtype, *[t.copy() for t in tensor], 1e-3)

	runTable(hostCuda, dtype, [tensor], grid=2, block=64, learnRates=[1e-3])
	np.testing.assert_array_equal(tensor[0], want[0])
	np.testing.assert_array_equal(tensor[2], want[1])


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("grid, block", [(1, 1), (1, 256), (5, 32), (64, 256)])
def test_multi_tensor_table(hostCuda, dtype, grid, block):
	"""Many tensors of odd sizes and offsets, with per-tensor learnRates, in one launch of different grid shapes."""
	rng = np.random.default_rng(grid * block)
	sizes = [1, 0, 7, 64, 129, 3000, 5, 2 ** 12 + 1]
	tensors = [makeTensor(rng, dtype, n, rng.integers(0, 4, 3) if i % 2 else [i % 4] * 3) for i, n in enumerate(sizes)]
	rates = [1e-3 * (i + 1) for i in range(len(sizes))]
	wants = [expected(dtype, *[a.copy() for a in t], lr) for t, lr in zip(tensors, rates)]

	table = runTable(hostCuda, dtype, tensors, grid, block, rates)
	assert len(table.rows) == len(sizes) - 1, "the empty tensor gets no row"
	for t, want in zip(tensors, wants):
		np.testing.assert_array_equal(t[0], want[0])
		np.testing.assert_array_equal(t[2], want[1])


def test_contiguous_rows_merge_and_still_match(hostCuda):
	"""Views of one buffer with equal learnRates become one row (global state); unequal ones split."""
	rng = np.random.default_rng(2)
	flat = makeTensor(rng, "float32", 1000, [0, 0, 0])
	want = [a.copy() for a in flat]
	bounds = [0, 10, 333, 334, 1000]
	rates = [0.01, 0.01, 0.02, 0.02]
	tensors = [[a[lo:hi] for a in flat] for lo, hi in zip(bounds, bounds[1:])]

	table = runTable(hostCuda, "float32", tensors, 4, 128, rates)
	assert list(table.rows["size"]) == [333, 667]

	for (lo, hi), lr in zip(zip(bounds, bounds[1:]), rates):
		p, m = rmspropStep(want[0][lo:hi], want[1][lo:hi], want[2][lo:hi], lr)
		np.testing.assert_array_equal(flat[0][lo:hi], p)
		np.testing.assert_array_equal(flat[2][lo:hi], m)


def test_weight_decay_kernel(hostCuda):
	rng = np.random.default_rng(3)
	grad, param = rng.standard_normal(1001).astype(np.float32), rng.standard_normal(1001).astype(np.float32)
	want = weightDecay(grad, param, 0.05)
	hostCuda.hostWeightDecay(grad.ctypes.data, param.ctypes.data, 0.05, grad.size, 3, 64)
	np.testing.assert_array_equal(grad, want)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan, None])
def test_non_finite_check_kernel(hostCuda, dtype, bad):
	"""The skipNonFinite check: finds one bad grad anywhere in a multi-tensor table, and nothing in a clean one."""
	rng = np.random.default_rng(4)
	tensors = [makeTensor(rng, dtype, n, [1, 0, 2]) for n in (5, 300, 1029)]
	_, encode, _ = storage(dtype)
	if bad is not None:
		tensors[2][1][1028] = encode(np.array([bad], np.float32))[0]

	lists = [TensorList([t[k] for t in tensors], pointerOf) for k in range(3)]
	table = lists[1].launchTable(HostGrid(4, 32), lists[1], lists[1], 0.0)
	assert hostCuda.hostNonFinite(DTYPE_CODES[dtype], table.address, len(table.rows), 4, 32) == (bad is not None)


FLAVOUR_COMBOS = [("float32", "float32"), ("float16", "float16"), ("float16", "float32"), ("bfloat16", "bfloat16"),
				  ("bfloat16", "float32")]


@pytest.mark.parametrize("combo", range(len(FLAVOUR_COMBOS)))
@pytest.mark.parametrize("options", [
	dict(weightDecay=0.0, centered=False, epsilonInSqrt=False, momentumMode=1),
	dict(weightDecay=0.01, centered=True, epsilonInSqrt=True, momentumMode=2),
	dict(weightDecay=0.0, centered=True, epsilonInSqrt=False, momentumMode=0),
])
@pytest.mark.parametrize("packed", [False, True])
def test_flavour_kernels(hostCuda, combo, options, packed):
	"""The flavour kernels of rmsprop.cu for every parameter/state storage pair, on a multi-tensor table built by
	the library's FlavourTable, against the NumPy transcription of rmspropFlavourStep. Packed, each column's tensors
	follow each other in one buffer and the first two share their rates: FlavourTable merges them into one row."""
	paramType, stateType = FLAVOUR_COMBOS[combo]
	(pStore, pEnc, pDec), (sStore, sEnc, sDec) = storage(paramType), storage(stateType)
	rng = np.random.default_rng(combo)
	sizes, rates, momenta = [3, 257, 1000], [1e-2, 2e-3, 0.0], [0.9, 0.5, 0.9]
	if packed:
		rates[1], momenta[1] = rates[0], momenta[0]

	def column(values, store):
		"""One column's tensors: own arrays, or packed, consecutive views of one buffer."""
		arrays = [np.ascontiguousarray(v.astype(store)) for v in values]
		if not packed:
			return arrays
		buffer, ends = np.concatenate(arrays), np.cumsum(sizes)
		return [buffer[end - n:end] for n, end in zip(sizes, ends)]

	draw = lambda make, enc, store: column([enc(make(n).astype(np.float32)) for n in sizes], store)
	# ms >= 1 keeps ms - mg^2 positive (a NaN's payload is not something to compare across converters)
	columns = [draw(rng.standard_normal, pEnc, pStore), draw(rng.standard_normal, pEnc, pStore),
			   draw(lambda n: 1 + rng.random(n), sEnc, sStore), draw(lambda n: 0.1 * rng.standard_normal(n), sEnc, sStore),
			   draw(lambda n: 0.1 * rng.standard_normal(n), sEnc, sStore)]
	tensors = [list(t) for t in zip(*columns)]

	wants = []
	for (p, g, ms, mg, mom), lr, mo in zip(tensors, rates, momenta):
		new = flavourStep(pDec(p), pDec(g), sDec(ms), sDec(mg), sDec(mom), lr, mo, 0.9, 1e-4, **options)
		wants.append([pEnc(new[0]), sEnc(new[1]), sEnc(new[2]), sEnc(new[3])])

	lists = [TensorList([t[k] for t in tensors], pointerOf) for k in range(5)]
	table = FlavourTable(HostGrid(3, 64), *lists).launchTable(rates, momenta)
	assert len(table.rows) == (2 if packed else 3)
	hostCuda.hostFlavour(combo, table.address, len(table.rows), 0.9, 1e-4, options["weightDecay"], options["centered"],
						 options["epsilonInSqrt"], options["momentumMode"], 3, 64)

	for t, want in zip(tensors, wants):
		for got, expected in zip([t[0], t[2], t[3], t[4]], want):
			np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("grid, block", [(1, 32), (3, 64), (5, 256)])
def test_8_bit_state_kernels(hostCuda, dtype, grid, block):
	"""rmsprop8.cuh's kernels (warps in lockstep through the shim) on a Quant8Table of the library, every state, rows
	of 1, 255 and 1000 elements and one whose parameters are off the 16-byte grid (the scalar path), against the
	independent reference of tests/quant8_reference.py, bit for bit over two steps."""
	rows = checkQuant8Kernel(hostCuda, dtype, grid, block, sizes=[1, 255, 1000, 300], rates=[1e-2, 2e-3, 1e-2, 5e-3],
							 momenta=[0.9, 0.5, 0.9, 0.7], offsets=[0, 0, 0, 1], packed=False)
	assert rows == 4


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("grid, block", [(1, 32), (3, 64)])
def test_8_bit_state_kernels_on_merged_rows(hostCuda, dtype, grid, block):
	"""Tensors packed one after another (parameters, grads, codes and scales) with equal rates: those after a tensor of
	whole blocks join its row, the one after a partial block starts its own: 2 rows for 4 tensors, bit for bit."""
	rows = checkQuant8Kernel(hostCuda, dtype, grid, block, sizes=[256, 512, 300, 100], rates=[1e-2] * 4,
							 momenta=[0.9] * 4, offsets=[0] * 4, packed=True)
	assert rows == 2


def checkQuant8Kernel(hostCuda, dtype, grid, block, sizes, rates, momenta, offsets, packed):
	"""Two steps of the 8-bit kernel against tests/quant8_reference.py; returns the table's row count."""
	import quant8_reference as ref
	from puzzlelib_rmsprop.Quantized8 import Quant8Table, QuantizedState, blocksOf

	store, encode, decode = storage(dtype)
	rng = np.random.default_rng(block)
	tensors, wants = [], []
	for n, offset in zip(sizes, offsets):
		p, g = (np.ascontiguousarray(encode(rng.standard_normal(n + offset).astype(np.float32)).astype(store))[offset:] for _ in range(2))
		states = [ref.Quantized((1 + rng.random(n)).astype(np.float32), False)] + \
				 [ref.Quantized((0.1 * rng.standard_normal(n)).astype(np.float32), True) for _ in range(2)]
		ours = [QuantizedState(s.codes.copy(), s.scales.copy(), (n, ), s.signed) for s in states]
		tensors.append([p, g, ours])
		wants.append((decode(p).copy(), states))

	if packed:
		# every column one buffer, each tensor a view where the previous one ends
		ends, blockEnds = np.cumsum(sizes), np.cumsum([blocksOf(n) for n in sizes])
		views = lambda buffer, lengths, stops: [buffer[stop - n:stop] for n, stop in zip(lengths, stops)]
		for k in range(2):
			for t, view in zip(tensors, views(np.concatenate([t[k] for t in tensors]), sizes, ends)):
				t[k] = view
		for k in range(3):
			codes = views(np.concatenate([t[2][k].codes for t in tensors]), sizes, ends)
			scales = views(np.concatenate([t[2][k].scales for t in tensors]), [blocksOf(n) for n in sizes], blockEnds)
			for t, c, sc in zip(tensors, codes, scales):
				t[2][k] = QuantizedState(c, sc, c.shape, t[2][k].signed)

	lists = [TensorList([t[0] for t in tensors], pointerOf), TensorList([t[1] for t in tensors], pointerOf)] + \
			[TensorList([t[2][k] for t in tensors], pointerOf) for k in range(3)]
	table = Quant8Table(HostGrid(grid, block), *lists).launchTable(rates, momenta)
	for _ in range(2):
		hostCuda.hostQuant8(DTYPE_CODES[dtype], table.address, len(table.rows), 0.9, 1e-4, 0.01, 1, 1, grid, block)
		for i, ((p, g, _), (want, states)) in enumerate(zip(tensors, wants)):
			new = ref.step(want, decode(g), *states, rates[i], momenta[i], 0.9, 1e-4, weightDecay=0.01, centered=True,
						   epsilonInSqrt=True, momentumMode=1)
			wants[i] = (decode(encode(new)), states)

	for (p, _, ours), (want, states) in zip(tensors, wants):
		np.testing.assert_array_equal(decode(p), want)
		for got, state in zip(ours, states):
			np.testing.assert_array_equal(got.scales, state.scales)
			np.testing.assert_array_equal(got.codes, state.codes)
	return len(table.rows)


# Warp-synchronous execution (cuda_host_shim.h, HOST_SHIM_WARP_KERNEL): tests/cuda_on_host/warp_test.cu's kernels,
# built with the shim's own lane switch and with ucontext, against NumPy.

@pytest.fixture(scope="module", params=["switch", "ucontext"])
def hostWarp(request, tmp_path_factory):
	compiler, cudaInclude = hostToolchain()
	library = tmp_path_factory.mktemp("hostwarp") / ("hostwarp-%s.so" % request.param)
	defines = ["-DHOST_SHIM_UCONTEXT"] if request.param == "ucontext" else []
	subprocess.run([compiler, "-std=c++17", "-O2", "-ffp-contract=off", "-shared", "-fPIC", *defines, "-I", str(cudaInclude),
					"-I", str(HERE), "-o", str(library), str(HERE / "host_warp.cpp")], check=True)
	lib = ctypes.CDLL(str(library))
	lib.hostWarpReduce.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_uint] * 2
	lib.hostWarpShuffles.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int, ctypes.c_uint, ctypes.c_uint]
	lib.hostWarpSyncwarp.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_uint] * 2
	lib.hostWarpFaulting.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
	lib.hostLastFault.restype = ctypes.c_char_p
	return lib


def lastFault(lib):
	fault = lib.hostLastFault()
	return None if fault is None else fault.decode()


def warpShufflesExpected(x, d, rotations):
	"""warp_test.cu's warpShuffles from the CUDA documentation's definitions, lane by lane."""
	out, dOut = np.zeros((x.size, 12), np.uint32), np.zeros_like(d)
	for base in range(0, x.size, 32):
		v, dv = x[base:base + 32], d[base:base + 32]
		ballot = int(sum(1 << lane for lane in range(32) if v[lane] & 1))
		for lane in range(32):
			start = lambda width: lane // width * width
			xor16, up, down = lane ^ 24, lane - 3, lane + 3
			out[base + lane] = [
				v[5], v[(lane + 1) % 32], v[start(8) + 3], v[lane ^ 8],
				v[xor16] if xor16 < start(16) + 16 else v[lane],  # a later group's lane: its own value
				v[up] if up >= start(16) else v[lane], v[down] if down < start(16) + 16 else v[lane],
				ballot, int(all(v != 0)), int(any(v == 7)), v[31 - lane], v[(lane + rotations) % 32]]
			dOut[base + lane] = dv[lane ^ 1]
	return out, dOut


@pytest.mark.parametrize("grid, block", [(1, 32), (3, 64), (2, 256)])
def test_warp_reduction(hostWarp, grid, block):
	"""The 8-bit state kernel's pattern: a butterfly max over each warp; a sum too, which double counts if a lane
	reads an operand another lane has already replaced."""
	rng = np.random.default_rng(block)
	n = grid * block
	x, k = rng.standard_normal(n).astype(np.float32), rng.integers(-1000, 1000, n).astype(np.int32)
	maxOut, sumOut = np.zeros(n, np.float32), np.zeros(n, np.int32)
	hostWarp.hostWarpReduce(x.ctypes.data, k.ctypes.data, maxOut.ctypes.data, sumOut.ctypes.data, grid, block)
	assert lastFault(hostWarp) is None
	np.testing.assert_array_equal(maxOut, np.repeat(x.reshape(-1, 32).max(axis=1), 32))
	np.testing.assert_array_equal(sumOut, np.repeat(k.reshape(-1, 32).sum(axis=1), 32))


@pytest.mark.parametrize("rotations", [1, 5, 32, 33])
def test_warp_shuffles(hostWarp, rotations):
	"""Every shuffle kind, sub-warp widths, lanes out of range, ballot/all/any, 8-byte values, and a chain of
	dependent rotations, in 4 warps of 2 blocks."""
	rng = np.random.default_rng(rotations)
	x = rng.integers(1, 2 ** 32, 128, dtype=np.uint64).astype(np.uint32)
	x[64:96] = 7  # one warp where __all_sync and __any_sync are true
	d = rng.standard_normal(128)
	out, dOut = np.zeros((128, 12), np.uint32), np.zeros(128)
	hostWarp.hostWarpShuffles(x.ctypes.data, d.ctypes.data, out.ctypes.data, dOut.ctypes.data, rotations, 2, 64)
	assert lastFault(hostWarp) is None
	want, wantD = warpShufflesExpected(x, d, rotations)
	np.testing.assert_array_equal(out, want)
	np.testing.assert_array_equal(dOut, wantD)


def test_syncwarp_orders_the_lanes(hostWarp):
	x = np.arange(64, dtype=np.float32)
	scratch, out = np.zeros(64, np.float32), np.zeros(64, np.float32)
	hostWarp.hostWarpSyncwarp(x.ctypes.data, scratch.ctypes.data, out.ctypes.data, 1, 64)
	assert lastFault(hostWarp) is None
	np.testing.assert_array_equal(out, 2 * x[np.arange(64) ^ 1])


@pytest.mark.parametrize("kernel, block, message", [
	("warpDiverge", 64, "kernel warpDiverge, block (0, 0, 0), thread (16, 0, 0): the warp diverged: lanes 0-15 returned "
	 "while lanes 16-31 wait at __shfl_xor_sync"),
	("warpMismatch", 64, "the warp diverged: lanes 0-15 wait at __syncwarp, lanes 16-31 at __shfl_xor_sync"),
	("warpPartialMask", 64, "kernel warpPartialMask, block (0, 0, 0), thread (0, 0, 0): __shfl_xor_sync with mask 0x0000ffff"),
	("warpFaultInLane", 64, "misaligned 4-byte load"),
	("warpUnmarked", 64, "kernel warpUnmarked, block (0, 0, 0), thread (0, 0, 0): __shfl_xor_sync in a kernel not marked "
	 "HOST_SHIM_WARP_KERNEL"),
	("warpDiverge", 48, "kernel warpDiverge: a block of 48 threads"),
])
def test_warp_faults_fail_the_launch(hostWarp, kernel, block, message):
	"""Divergence, mixed intrinsics, a partial mask, a fault inside a lane, a shuffle in an unmarked kernel and a
	block of no whole warps each end the launch with the reason; the next launch runs normally."""
	x, out = np.ones(2 * block, np.float32), np.zeros(2 * block, np.float32)
	hostWarp.hostWarpFaulting(kernel.encode(), x.ctypes.data, out.ctypes.data, 2, block)
	fault = lastFault(hostWarp)
	assert fault is not None and message in fault, fault
	test_warp_reduction(hostWarp, 2, 64)
