"""Compiling at selection: what the CUDA backend builds for each device (SASS, PTX for a device newer than nvcc,
or a BackendError for one older than nvcc supports), the warned CPU fallback, PTX training bit-exact, no compile at
the first update, and the compiled-kernel cache. The devices of other compute capabilities are the emulated
driver's (CUDA_EMU_COMPUTE_CAPABILITY, tests/cuda_emu), each in a fresh process; those tests skip elsewhere."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from puzzlelib_rmsprop.Backend.CudaBuild import Nvcc, Target, UnusableDevice, architectures, chooseTarget
from puzzlelib_rmsprop.Errors import BackendError

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "cuda_emu"))
import emu  # noqa: E402

#: nvcc 13.0's --list-gpu-code and --list-gpu-arch
NVCC13 = Nvcc("/usr/local/cuda/bin/nvcc", "13.0", [75, 80, 86, 87, 88, 89, 90, 100, 103, 110, 120, 121],
			  [75, 80, 86, 87, 88, 89, 90, 100, 103, 110, 120, 121])
#: nvcc 12.4's (no Blackwell)
NVCC124 = Nvcc("/opt/cuda-12.4/bin/nvcc", "12.4", [50, 52, 53, 60, 61, 62, 70, 72, 75, 80, 86, 87, 89, 90],
			   [50, 52, 53, 60, 61, 62, 70, 72, 75, 80, 86, 87, 89, 90])


@pytest.mark.parametrize("capability, nvcc, expected", [
	((9, 0), NVCC13, Target("cubin", "sm_90")),
	((7, 5), NVCC13, Target("cubin", "sm_75")),
	((12, 1), NVCC13, Target("cubin", "sm_121")),
	((13, 0), NVCC13, Target("ptx", "compute_121")),     # newer than nvcc: PTX, which the driver compiles
	((12, 0), NVCC124, Target("ptx", "compute_90")),
	((8, 9), NVCC124._replace(sass=[80, 86]), Target("cubin", "sm_86")),  # an older minor's SASS runs on it
	((7, 0), NVCC124, Target("cubin", "sm_70")),
])
def test_target_for_each_device(capability, nvcc, expected):
	assert chooseTarget(capability, nvcc, "CUDA device 0 (X)") == expected


def test_a_device_older_than_nvcc_supports_is_refused_with_what_to_do():
	with pytest.raises(UnusableDevice) as info:
		chooseTarget((7, 0), NVCC13, "CUDA device 0 (Tesla V100-SXM2-16GB)")
	message = str(info.value)
	for part in ("CUDA device 0 (Tesla V100-SXM2-16GB)", "compute capability 7.0", "nvcc 13.0", "sm_75 to sm_121",
				 "PUZZLELIB_RMSPROP_BACKEND=cpu", "docs/gpu-support.md"):
		assert part in message
	assert isinstance(info.value, BackendError)


def test_architecture_lists_are_parsed_from_nvcc():
	assert architectures("sm_75\nsm_80\nsm_90a\nsm_100\n", "sm") == [75, 80, 100]
	assert architectures("compute_75 compute_121\n", "compute") == [75, 121]


emulated = pytest.mark.skipif(not emu.isEmulated(), reason="devices of other compute capabilities are the emulated "
							  "driver's (tests/test_cuda_emulated.py runs this file there)")


def inFreshProcess(code, backend="cuda", **env):
	"""Runs ``code`` (after a prelude that records the log) in a new process on the emulated driver; returns
	(what it printed last, as JSON; the log records)."""
	prelude = (
		"import json, logging, sys\n"
		"sys.path.insert(0, %r)\n"
		"records = []\n"
		"class Keep(logging.Handler):\n"
		"    def emit(self, record): records.append((record.levelname, record.getMessage()))\n"
		"logging.getLogger('puzzlelib_rmsprop').addHandler(Keep())\n"
		"logging.getLogger('puzzlelib_rmsprop').setLevel(logging.INFO)\n"
		"from puzzlelib_rmsprop.Backend import getBackend\n"
		"from puzzlelib_rmsprop.Errors import BackendError\n") % str(HERE.parent)
	full = dict(os.environ, **env)
	full.pop("PUZZLELIB_RMSPROP_BACKEND", None)
	if backend is not None:
		full["PUZZLELIB_RMSPROP_BACKEND"] = backend
	result = subprocess.run([sys.executable, "-c", prelude + code + "\nprint(json.dumps([result, records]))"], env=full,
							capture_output=True, text=True, timeout=600, cwd=str(HERE.parents[1]))
	assert result.returncode == 0, result.stderr[-3000:]
	return json.loads(result.stdout.strip().splitlines()[-1])


SELECT = """
try:
	backend = getBackend()
	result = [backend.name, list(getattr(backend, "target", ()))]
except BackendError as e:
	result = ["error", str(e)]
"""


@emulated
def test_a_7_0_device_fails_at_selection_when_cuda_is_forced():
	(kind, message), _ = inFreshProcess(SELECT, CUDA_EMU_COMPUTE_CAPABILITY="7.0")
	assert kind == "error"
	for part in ("backend 'cuda' was requested", "CUDA device 0 (Emulated CUDA device 0 (sm_70", "compute capability 7.0",
				 "nvcc 13", "PUZZLELIB_RMSPROP_BACKEND=cpu"):
		assert part in message, message


@emulated
def test_a_7_0_device_falls_back_to_the_cpu_with_a_warning_when_automatic():
	(name, _), records = inFreshProcess(SELECT, backend=None, CUDA_EMU_COMPUTE_CAPABILITY="7.0")
	assert name == "cpu"
	warnings = [message for level, message in records if level == "WARNING"]
	assert len(warnings) == 1 and "compute capability 7.0" in warnings[0] and "using the CPU" in warnings[0]


@emulated
def test_no_nvcc_fails_at_selection_naming_the_device():
	(kind, message), _ = inFreshProcess(SELECT, PATH=os.path.dirname(sys.executable))
	assert kind == "error" and "nvcc is not on PATH" in message and "compute capability 9.0" in message


@emulated
@pytest.mark.parametrize("capability, target", [("9.0", ["cubin", "sm_90"]), ("8.6", ["cubin", "sm_86"]),
												 ("13.0", ["ptx", "compute_121"])])
def test_each_device_gets_its_own_image(capability, target):
	(name, built), _ = inFreshProcess(SELECT, CUDA_EMU_COMPUTE_CAPABILITY=capability)
	assert [name, built] == ["cuda", target]


TRAIN = """
import numpy as np
from puzzlelib_rmsprop.Backend import CudaBuild
import pycuda.compiler

def noCompiling(*args, **kwargs):
	raise AssertionError("compiled after selection")

backend = getBackend()
CudaBuild.buildImage = pycuda.compiler.compile = pycuda.compiler.SourceModule = noCompiling
from test_RMSProp import trainAndCompare
for dtype in (np.float32, np.float16):
	for useGlobalState in (False, True):
		specs = {"a": ((17, 3), dtype), "b": ((1, ), dtype), "c": ((4096 + 5, ), dtype), "d": ((70000, ), dtype)}
		trainAndCompare(specs, np.random.default_rng(3), steps=10, useGlobalState=useGlobalState)
result = [backend.name, list(backend.target)]
"""


@emulated
@pytest.mark.parametrize("capability", ["9.0", "13.0"])
def test_training_is_bit_exact_and_compiles_nothing_after_selection(capability):
	"""13.0 is newer than nvcc 13 targets: the kernels go as PTX; 9.0 as SASS. Bit-exact against NumPy, and no
	compile once the backend is selected."""
	(name, target), _ = inFreshProcess(TRAIN, CUDA_EMU_COMPUTE_CAPABILITY=capability)
	assert name == "cuda" and target[0] == ("ptx" if capability == "13.0" else "cubin")


@emulated
def test_compiled_kernels_are_cached_whole(tmp_path):
	"""The image is written to a temporary file and renamed: the cache holds whole images only, and a second
	process loads it without running nvcc."""
	cache = tmp_path / "cache"
	(name, _), _ = inFreshProcess(SELECT, PYCUDA_CACHE_DIR=str(cache), CUDA_EMU_COMPUTE_CAPABILITY="8.6")
	files = sorted(p.name for p in (cache / "puzzlelib_rmsprop").iterdir())
	assert name == "cuda" and len(files) == 1 and files[0].endswith(".cubin"), files
	code = SELECT.replace("backend = getBackend()", "import pycuda.compiler\n\tpycuda.compiler.compile = None\n\tbackend = getBackend()")
	(name, _), _ = inFreshProcess(code, PYCUDA_CACHE_DIR=str(cache), CUDA_EMU_COMPUTE_CAPABILITY="8.6")
	assert name == "cuda"

	# a driver that refuses the cached image (here: the emulator without its host build) fails selection too
	(kind, message), _ = inFreshProcess(code, PYCUDA_CACHE_DIR=str(cache), CUDA_EMU_COMPUTE_CAPABILITY="8.6",
										CUDA_EMU_CACHE=str(tmp_path / "empty"))
	assert kind == "error" and "(compute capability 8.6) cannot load the kernels nvcc" in message and "cubin sm_86" in message
