"""The kernel sources themselves: nvcc builds every CUDA kernel; the host float16 fallback is exact."""
import ctypes
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import CUDA_INSTALL_FOLDERS, findNvcc, requireTool
from puzzlelib_rmsprop.Backend.kernelSource import kernelDir

NVCC = findNvcc()


RMSPROP_KERNELS = ("rmspropFloat32", "rmspropFloat16", "rmspropBfloat16", "rmspropFloat32Rows", "rmspropFloat16Rows",
				   "rmspropBfloat16Rows")
TRAFFIC_KERNELS = ("trafficLimitFloat32", "trafficLimitFloat16", "trafficLimitFloat32Rows", "trafficLimitFloat16Rows")
QUANT8_KERNELS = ("quant8Float32", "quant8Float16", "quant8Bfloat16")


def cudaTool(name):
	"""cuobjdump / nvdisasm: on PATH, or from the nvidia-cuda-cuobjdump / nvidia-cuda-nvdisasm wheels."""
	found = shutil.which(name)
	if found:
		return found
	for entry in map(Path, sys.path):
		for candidate in entry.glob("nvidia/cu*/bin/" + name):
			return str(candidate)
	return None


# (stack frame, spill stores, spill loads) ptxas is known to give a kernel: nvcc 13's sm_120 code generation keeps
# one register of the scalar flavour loop with 16-bit params and float32 states on the stack, around the IEEE
# division's subroutine calls, and on sm_80, sm_90 and sm_120/121 two of the bfloat16 row-search kernel (64
# registers, its scalar path's conversions around the same calls). Anything more, or anywhere else, fails.
KNOWN_SPILLS = {(arch, name): (8, 8, 8) for arch in ("sm_120", "sm_121")
				for name in ("flavourFloat16State32", "flavourBfloat16State32")}
KNOWN_SPILLS.update({(arch, "rmspropBfloat16Rows"): (16, 16, 16) for arch in ("sm_80", "sm_90", "sm_120", "sm_121")})


def targetArchitectures():
	"""Every architecture from sm_75 that this nvcc builds SASS for (sm_80 and sm_90 where it cannot say)."""
	if NVCC is None:
		return ["sm_80", "sm_90"]
	listed = subprocess.run([NVCC, "--list-gpu-arch"], capture_output=True, text=True).stdout.split()
	numbers = sorted({int(name.split("_")[1]) for name in listed if re.fullmatch(r"compute_\d+", name)})
	return ["sm_%d" % n for n in numbers if n >= 75] or ["sm_80", "sm_90"]


@pytest.fixture(scope="module", params=targetArchitectures())
def cubin(request, tmp_path_factory):
	"""kernels/rmsprop.cu, with the benchmark's kernels/bench_traffic.cu, built by nvcc with the backend's own
	options for every architecture from sm_75; ptxas must report no spills and no local memory."""
	if NVCC is None:
		requireTool("nvcc is neither on PATH nor in a CUDA toolkit (CUDA_ROOT, %s)" % ", ".join(CUDA_INSTALL_FOLDERS))
	from puzzlelib_rmsprop.Backend.CudaBackend import compileOptions

	directory = tmp_path_factory.mktemp(request.param)
	path, source = directory / "rmsprop.cubin", directory / "kernels.cu"
	source.write_text('#include "rmsprop.cu"\n#include "bench_traffic.cu"\n')
	result = subprocess.run(
		[NVCC, "-cubin", "-arch=" + request.param, "-I", str(kernelDir()), *compileOptions(),
		 "-Xptxas", "-v", "-o", str(path), str(source)],
		capture_output=True, text=True
	)
	assert result.returncode == 0, result.stderr
	frames = {name: (int(frame), int(stores), int(loads)) for name, frame, stores, loads in re.findall(
		r"Function properties for (\w+)\s*\n\s*(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads",
		result.stderr)}
	assert frames, result.stderr
	for name, sizes in frames.items():
		allowed = KNOWN_SPILLS.get((request.param, name), (0, 0, 0))
		assert all(got <= most for got, most in zip(sizes, allowed)), (request.param, name, "ptxas spills", sizes)
	flavours = ("flavourFloat32", "flavourFloat16", "flavourFloat16State32", "flavourBfloat16", "flavourBfloat16State32")
	for kernel in RMSPROP_KERNELS + flavours + QUANT8_KERNELS + ("decayGradFloat32", ) + TRAFFIC_KERNELS:
		assert "Compiling entry function '%s'" % kernel in result.stderr
	return request.param, path


def sassByKernel(cubinPath):
	tool = cudaTool("cuobjdump")
	if tool is None or cudaTool("nvdisasm") is None:
		pytest.fail("cuobjdump/nvdisasm missing: pip install nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm (the test extra)")

	env = dict(os.environ, PATH=os.pathsep.join([str(Path(cudaTool("nvdisasm")).parent), os.environ.get("PATH", "")]))
	sass = subprocess.run([tool, "-sass", str(cubinPath)], capture_output=True, text=True, check=True, env=env).stdout
	usage = subprocess.run([tool, "-res-usage", str(cubinPath)], capture_output=True, text=True, check=True, env=env).stdout

	kernels, current = {}, None
	for line in sass.splitlines():
		match = re.search(r"Function : (\w+)", line)
		if match:
			current = kernels.setdefault(match.group(1), [])
		elif current is not None:
			# sm_75's SASS spells the default scope out (LDG.E.128.SYS); later architectures leave it implicit
			ops = re.findall(r"\b((?:LDG|STG|LDL|STL|LD|ST)(?:\.[A-Z0-9]+)*)\b", line)
			current.extend(re.sub(r"\.SYS$", "", op) for op in ops)

	resources = dict(re.findall(r"Function (\w+):\s*\n\s*REG:(\d+)", usage))
	locals_ = dict(re.findall(r"Function (\w+):\s*\n.*?LOCAL:(\d+)", usage))
	return kernels, resources, locals_


@pytest.mark.nvcc
def test_sass_uses_128_bit_global_accesses_and_no_local_memory(cubin, kernelReport):
	arch, path = cubin
	kernels, registers, localBytes = sassByKernel(path)

	for name in RMSPROP_KERNELS + TRAFFIC_KERNELS:
		ops = kernels[name]
		loads128 = [op for op in ops if op.startswith("LDG.E.128")]
		stores128 = [op for op in ops if op.startswith("STG.E.128")]
		# the packet path: param, grad and ms in with one 128-bit load each, param and ms out with one store each
		assert len(loads128) >= 3 and len(stores128) >= 2, (name, ops)
		# local memory only for a known spill (KNOWN_SPILLS, bounded in the cubin fixture), never a generic access
		banned = ("LD", "ST") if (arch, name) in KNOWN_SPILLS else ("LDL", "STL", "LD", "ST")
		assert not [op for op in ops if op.split(".")[0] in banned], (name, "local or generic access", ops)
		assert localBytes[name] == "0"
		kernelReport.append("%s %s: %s registers, %d x LDG.E.128, %d x STG.E.128, %s" % (
			arch, name, registers[name], len(loads128), len(stores128),
			"a known spill" if (arch, name) in KNOWN_SPILLS else "no local memory"))


@pytest.mark.nvcc
def test_sass_of_the_8_bit_state_kernels(cubin, kernelReport):
	"""stateBits=8: params in and out and grads in by 128-bit packets (two per lane for float32, one for 16-bit; the
	grads through the read-only path), codes by 64-bit words, everything global (LDG/STG), no local memory."""
	arch, path = cubin
	kernels, registers, localBytes = sassByKernel(path)

	for name in QUANT8_KERNELS:
		ops = kernels[name]
		packets = 2 if name == "quant8Float32" else 1
		paramLoads = [op for op in ops if op == "LDG.E.128"]
		gradLoads = [op for op in ops if op == "LDG.E.128.CONSTANT"]
		stores128 = [op for op in ops if op.startswith("STG.E.128")]
		codeWords = [op for op in ops if op in ("LDG.E.64", "STG.E.64")]
		assert len(paramLoads) >= packets and len(gradLoads) >= packets and len(stores128) >= packets, (name, ops)
		assert [op for op in ops if op == "STG.E.64"], (name, "codes are not stored as 64-bit words", ops)
		assert not [op for op in ops if op.split(".")[0] in ("LDL", "STL", "LD", "ST")], (name, "local or generic access", ops)
		assert localBytes[name] == "0"
		kernelReport.append("%s %s: %s registers, %d + %d x LDG.E.128 (param, grad), %d x STG.E.128, %d 64-bit code accesses, "
							"no local memory" % (arch, name, registers[name], len(paramLoads), len(gradLoads), len(stores128), len(codeWords)))


@pytest.fixture(scope="module")
def softHalf(tmp_path_factory):
	"""kernels/half_host.h's software conversions, built with gcc as a tiny shared library."""
	cc = shutil.which("gcc") or shutil.which("cc")
	if cc is None:
		requireTool("no C compiler (gcc or cc)")

	directory = tmp_path_factory.mktemp("softhalf")
	source = directory / "softhalf.c"
	source.write_text(
		'#include "half_host.h"\n'
		"float toFloat(half_t h) { return halfToFloat(h); }\n"
		"half_t toHalf(float f) { return floatToHalf(f); }\n"
	)
	library = directory / "softhalf.so"
	subprocess.run([cc, "-O2", "-shared", "-fPIC", "-DPUZZLELIB_RMSPROP_SOFT_HALF", "-I", str(kernelDir()),
					"-o", str(library), str(source)], check=True)

	lib = ctypes.CDLL(str(library))
	lib.toFloat.argtypes, lib.toFloat.restype = [ctypes.c_uint16], ctypes.c_float
	lib.toHalf.argtypes, lib.toHalf.restype = [ctypes.c_float], ctypes.c_uint16
	return lib


def test_soft_half_to_float_every_value(softHalf):
	for bits in range(0, 1 << 16, 7):
		expected = np.array([bits], np.uint16).view(np.float16).astype(np.float32)[0]
		got = np.float32(softHalf.toFloat(bits))
		assert got == expected or (np.isnan(got) and np.isnan(expected)), hex(bits)


def test_soft_float_to_half_rounds_like_numpy(softHalf):
	rng = np.random.default_rng(0)
	values = np.concatenate([
		rng.standard_normal(3000).astype(np.float32) * np.float32(10.0) ** rng.integers(-8, 6, 3000),
		np.array([0.0, -0.0, 65504, 65519.99, 65520, 1e9, -1e9, 6e-8, 3e-8, 2.98e-8, np.inf, -np.inf], np.float32),
	]).astype(np.float32)

	with np.errstate(over="ignore"):
		expectedAll = values.astype(np.float16).view(np.uint16)
	for v, expected in zip(values, expectedAll):
		assert softHalf.toHalf(float(v)) == expected, repr(v)
