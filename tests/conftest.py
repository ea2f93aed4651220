import glob
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# The suite runs on the CPU backend; tests/test_cuda_emulated.py reruns its CUDA parts on the emulated driver.
os.environ.setdefault("PUZZLELIB_RMSPROP_BACKEND", "cpu")

import puzzlelib_rmsprop  # noqa: E402
from puzzlelib_rmsprop.Backend import gpuarray  # noqa: E402
from puzzlelib_rmsprop.Modules.Module import Module  # noqa: E402
from puzzlelib_rmsprop.Variable import Variable  # noqa: E402


def requireTool(reason: str):
	"""The one gate for a test that needs a tool the machine may lack: in CI (CI set, as .ci/run sets it) the test
	fails naming what is missing; elsewhere it is skipped with the same words."""
	if os.environ.get("CI"):
		pytest.fail("CI must not skip: %s" % reason, pytrace=False)
	pytest.skip(reason)


#: where a CUDA toolkit is looked for after CUDA_ROOT, as tests/cuda_stub/stub_pycuda.py and the emulator find it
CUDA_INSTALL_FOLDERS = ["/usr/local/cuda", *sorted(glob.glob("/usr/local/cuda-*"), reverse=True), "/opt/cuda", "/usr"]


def cudaRoot():
	"""The CUDA toolkit's root: CUDA_ROOT, then the usual install folders; the first holding include/cuda_fp16.h,
	or None."""
	candidates = [os.environ["CUDA_ROOT"]] if os.environ.get("CUDA_ROOT") else []
	for root in map(Path, candidates + CUDA_INSTALL_FOLDERS):
		if (root / "include" / "cuda_fp16.h").is_file():
			return root
	return None


def findNvcc():
	"""nvcc on PATH, else in the toolkit cudaRoot() finds; or None."""
	found = shutil.which("nvcc")
	if found:
		return found
	root = cudaRoot()
	return str(root / "bin" / "nvcc") if root is not None and (root / "bin" / "nvcc").is_file() else None


def flushToZero() -> bool:
	"""Whether float32 denormals are flushed (FTZ) or read as zero (DAZ) in this thread."""
	produced = np.array([1e-30], np.float32) * np.float32(1e-10)  # 1e-40, a denormal result
	read = np.array([1e-40], np.float32) * np.float32(1.0)  # a denormal operand
	return bool(produced[0] == 0 or read[0] == 0)


@pytest.fixture(autouse=True)
def denormalsSurvive(request):
	"""Every test leaves float32 denormals as IEEE has them: a test (or a library it loads, such as PuzzleLib's
	-ffast-math kernels) that switches flush-to-zero on for the process fails here, by name, instead of changing
	the numbers of whichever test runs next."""
	assert not flushToZero(), "flush-to-zero was already on before %s" % request.node.nodeid
	yield
	assert not flushToZero(), "%s left flush-to-zero (FTZ/DAZ) on for the process" % request.node.nodeid


class ParamBag(Module):
	"""A module holding named variables only; tests write the grads themselves."""

	def __init__(self, specs, name="bag", rng=None):
		super().__init__(name)
		rng = np.random.default_rng(0) if rng is None else rng
		for varName, (shape, dtype) in specs.items():
			self.setVar(varName, Variable(gpuarray.to_gpu(rng.standard_normal(shape).astype(dtype))))


def randomGrads(bag, rng):
	"""Writes fresh random grads into every variable of ``bag``; returns them by name."""
	grads = {}
	for name, var in bag.vars.items():
		g = rng.standard_normal(var.grad.shape).astype(var.grad.dtype)
		var.grad.set(g)
		grads[name] = g
	return grads


def snapshot(bag):
	return {name: var.data.get() for name, var in bag.vars.items()}


def runTestFiles(files, timeout: float = 900) -> str:
	"""Runs pytest on ``files`` in that order, in one child process from the checkout's root (no plugin reorders
	them); fails with the end of its output unless every test passed. Returns its summary line."""
	result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *files],
							cwd=Path(__file__).resolve().parents[1], env=dict(os.environ, PYTEST_ADDOPTS=""),
							capture_output=True, text=True, timeout=timeout)
	assert result.returncode == 0, "files %s:\n%s\n%s" % (files, result.stdout[-5000:], result.stderr[-2000:])
	return result.stdout.strip().splitlines()[-1]


def runMpiJob(command, limit: float) -> subprocess.CompletedProcess:
	"""Runs an mpiexec ``command`` in its own process group; past ``limit`` seconds kills the group and fails (the
	job hung)."""
	process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
	try:
		stdout, stderr = process.communicate(timeout=limit)
	except subprocess.TimeoutExpired:
		os.killpg(process.pid, signal.SIGKILL)
		process.communicate()
		pytest.fail("the MPI job was still running after %d s" % limit)
	return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


@pytest.fixture(scope="session")
def launcher():
	"""mpiexec, for the MPI tests; they fail in CI without it and are skipped elsewhere."""
	try:
		from puzzlelib_rmsprop.Grid import importMPI, mpiexec
		importMPI()
		return mpiexec()
	except Exception as e:  # noqa: BLE001
		requireTool("MPI (mpi4py and mpiexec) unavailable: %s" % e)


@pytest.fixture
def rng():
	return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def puzzlelib():
	"""Real PuzzleLib 1.0.3 (tests/puzzlelib_oracle.py). In CI a failure to set it up fails the tests that need it;
	elsewhere they are skipped with the reason."""
	import puzzlelib_oracle

	try:
		return puzzlelib_oracle.load()
	except puzzlelib_oracle.OracleUnavailable as e:
		requireTool("PuzzleLib %s unavailable: %s" % (puzzlelib_oracle.VERSION, e))


# tests/test_packaging.py runs this suite against an installed wheel: it must not import another copy
_EXPECTED_INSTALL = os.environ.get("PUZZLELIB_RMSPROP_EXPECT_INSTALLED_IN")
if _EXPECTED_INSTALL and Path(_EXPECTED_INSTALL).resolve() not in Path(puzzlelib_rmsprop.__file__).resolve().parents:
	raise pytest.UsageError("puzzlelib_rmsprop was imported from %s, not from the installation in %s" % (
		puzzlelib_rmsprop.__file__, _EXPECTED_INSTALL
	))


def pytest_report_header(config):
	return "puzzlelib_rmsprop %s from %s" % (puzzlelib_rmsprop.__version__, Path(puzzlelib_rmsprop.__file__).parent)


# lines printed in the terminal summary, one section each
_KERNEL_REPORT = []
_PACKAGING_REPORT = []
_EMULATOR_REPORT = []
_QUANT8_REPORT = []
_REPORTS = {"8-bit state (stateBits=8) against 32-bit state": _QUANT8_REPORT, "CUDA kernels (static SASS checks)": _KERNEL_REPORT, "Packaging (built wheel and sdist)": _PACKAGING_REPORT,
			"CUDA backend on the emulated driver (tests/cuda_emu)": _EMULATOR_REPORT}


@pytest.fixture(scope="session")
def kernelReport():
	"""Lines the SASS checks report (registers, vector accesses), printed in the terminal summary."""
	return _KERNEL_REPORT


@pytest.fixture(scope="session")
def packagingReport():
	"""Lines tests/test_packaging.py reports (timings, the inner run's summary and skips)."""
	return _PACKAGING_REPORT


@pytest.fixture(scope="session")
def quant8Report():
	"""Lines the 8-bit state tests report (accuracies, the soak's figures)."""
	return _QUANT8_REPORT


@pytest.fixture(scope="session")
def emulatorReport():
	"""Lines tests/test_cuda_emulated.py reports (each run's summary, the coverage of the CUDA backend)."""
	return _EMULATOR_REPORT


def pytest_terminal_summary(terminalreporter):
	for title, lines in _REPORTS.items():
		if lines:
			terminalreporter.section(title)
			for line in lines:
				terminalreporter.write_line(line)
