"""The CUDA backend's Python side with a real pycuda, built here against a stub libcuda (no GPU, no driver):
the module imports, the kernels compile through pycuda's compiler path, and every way CUDA can be missing
gives a BackendError that says which. pycuda lives in .cache/pycuda-stub/ and only in subprocesses."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "cuda_stub"))
import stub_pycuda  # noqa: E402
from conftest import requireTool  # noqa: E402

pytestmark = pytest.mark.nvcc


@pytest.fixture(scope="module")
def stubEnv():
	try:
		site, libDir = stub_pycuda.build()
	except stub_pycuda.StubUnavailable as e:
		requireTool("pycuda against a stub libcuda unavailable: %s" % e)
	return stub_pycuda.environment(site, libDir)


def runPython(code, env):
	result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
	assert result.returncode == 0, result.stderr[-3000:]
	return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


def test_kernels_compile_through_pycuda(stubEnv):
	code = (
		"import json\n"
		"from puzzlelib_rmsprop.Backend import CudaBackend\n"
		"out = {}\n"
		"for arch in ('sm_80', 'sm_90'):\n"
		"    cubin = CudaBackend.compileKernels(arch=arch)\n"
		"    out[arch] = [name for name in ('rmspropFloat32', 'rmspropFloat16', 'rmspropBfloat16', 'decayGradFloat32')\n"
		"                 if name.encode() in cubin]\n"
		"print(json.dumps(out))\n"
	)
	found, _ = runPython(code, stubEnv)
	assert found == {arch: ["rmspropFloat32", "rmspropFloat16", "rmspropBfloat16", "decayGradFloat32"]
					 for arch in ("sm_80", "sm_90")}


def test_driver_that_cannot_initialise(stubEnv):
	code = (
		"import json\n"
		"from puzzlelib_rmsprop.Backend.CudaBackend import CudaBackend\n"
		"from puzzlelib_rmsprop import BackendError\n"
		"try:\n"
		"    CudaBackend(); print(json.dumps('no error'))\n"
		"except BackendError as e:\n"
		"    print(json.dumps(str(e)))\n"
	)
	message, _ = runPython(code, stubEnv)
	assert message.startswith("the CUDA driver failed to initialise: cuInit failed")


def test_forced_cuda_says_why_and_auto_falls_back(stubEnv):
	code = (
		"import json, logging\n"
		"logging.basicConfig(level=logging.INFO)\n"
		"from puzzlelib_rmsprop import Config, BackendError\n"
		"from puzzlelib_rmsprop.Backend import getBackend, resetBackend\n"
		"Config.backend = 'cuda'\n"
		"try:\n"
		"    getBackend(); forced = 'no error'\n"
		"except BackendError as e:\n"
		"    forced = str(e)\n"
		"Config.backend = None; resetBackend()\n"
		"print(json.dumps([forced, getBackend().name]))\n"
	)
	env = dict(stubEnv)
	env.pop("PUZZLELIB_RMSPROP_BACKEND", None)
	(forced, auto), log = runPython(code, env)
	assert forced.startswith("backend 'cuda' was requested but cannot be used: the CUDA driver failed to initialise")
	assert auto == "cpu"
	assert "CUDA backend unavailable (the CUDA driver failed to initialise" in log


def test_pycuda_without_any_libcuda(stubEnv):
	env = dict(stubEnv, LD_LIBRARY_PATH="")
	code = (
		"import json\n"
		"from puzzlelib_rmsprop.Backend.CudaBackend import importPycuda\n"
		"from puzzlelib_rmsprop import BackendError\n"
		"try:\n"
		"    importPycuda(); print(json.dumps('no error'))\n"
		"except BackendError as e:\n"
		"    print(json.dumps(str(e)))\n"
	)
	message, _ = runPython(code, env)
	assert "cannot load the CUDA driver library (no NVIDIA driver?)" in message and "libcuda.so.1" in message
