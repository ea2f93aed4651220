"""The kernel sources themselves: nvcc builds every CUDA kernel; the host float16 fallback is exact."""
import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from puzzlelib_rmsprop.Backend.kernelSource import kernelDir

NVCC = shutil.which("nvcc")


@pytest.mark.nvcc
@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_cuda_kernels_compile_without_spills(arch, tmp_path):
	from puzzlelib_rmsprop.Backend.CudaBackend import compileOptions

	cubin = tmp_path / "rmsprop.cubin"
	result = subprocess.run(
		[NVCC, "-cubin", "-arch=" + arch, "-I", str(kernelDir()), *compileOptions(),
		 "-Xptxas", "-v,--warn-on-spills,--warn-on-local-memory-usage,--warning-as-error",
		 "-o", str(cubin), str(kernelDir() / "rmsprop.cu")],
		capture_output=True, text=True
	)
	assert result.returncode == 0, result.stderr
	for kernel in ("rmspropFloat32", "rmspropFloat16", "weightDecayFloat32"):
		assert "Compiling entry function '%s'" % kernel in result.stderr
	assert "0 bytes spill stores" in result.stderr and cubin.stat().st_size > 0


@pytest.fixture(scope="module")
def softHalf(tmp_path_factory):
	"""kernels/half_host.h's software conversions, built with gcc as a tiny shared library."""
	cc = shutil.which("gcc") or shutil.which("cc")
	if cc is None:
		pytest.skip("no C compiler")

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
