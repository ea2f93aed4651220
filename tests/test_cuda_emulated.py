"""The CUDA backend end to end on the emulated CUDA driver (tests/cuda_emu), on a machine with no GPU.

Every run below goes through tests/cuda_emu/run with PUZZLELIB_RMSPROP_BACKEND=cuda: the reference suites (bit-exact
against the NumPy reference, float16 and bfloat16 included) with stream work deferred to synchronizing calls and
blocks in shuffled order, the backend's and the emulator's own tests in the default mode, the demo, the benchmark
(function only: the emulator's timings are no GPU figures) and data-parallel training under mpiexec through pinned
staging and through the CUDA-aware path. coverage.py follows all of them, ranks included; the last test checks that
every line of the CUDA backend ran, and prints the figures."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE / "cuda_emu"))
import build  # noqa: E402
from suites import REFERENCE_SUITES  # noqa: E402
from conftest import requireTool  # noqa: E402

pytestmark = pytest.mark.emulator

BACKEND_TESTS = ["tests/Backend/test_CudaBackend.py", "tests/cuda_emu/test_driver.py", "tests/test_puzzlelib_cuda_arrays.py"]

#: the only skips a rerun may report, each with why it is right on the emulated CUDA backend; any other skip fails
EXPECTED_SKIPS = {
	r"PuzzleLib's cpu arrays need our cpu backend": "PuzzleLib runs on its CPU backend here: our optimizer can drive its "
	"nets only on our CPU backend; test_reference_modules_on_our_backend_match_puzzlelib compares across backends",
	r"pycuda is installed here; this checks the message where it is not": "the emulated runs need pycuda; the CPU "
	"runs check the message",
	r"PuzzleLib's CPU kernels are compared on our CPU backend": "arithmetic='puzzlelib' is compared with PuzzleLib's CPU "
	"kernels on our CPU backend; on CUDA with PuzzleLib's own CUDA kernels by tests/gpu/device_check.sh",
}

#: lines of the CUDA backend that only a real GPU reaches, with the reason (none today)
GPU_ONLY_LINES = {}
#: Grid.py's CUDA branches: the pinned staging path (whole buffers and pieces, PuzzleLib's arrays too), the CUDA-aware
#: path (device views for MPI, the device-side mean, the device receive buffer)
GRID_CUDA_LINES = ['self.mode, self.host = "aware", None',
				   'self.host = info._scratch(("pinned", name), padded, self.dtype, pinned=True)',
				   'return view if hasattr(view, "__cuda_array_interface__") else DeviceMemory(view)',
				   "getBackend().synchronize([None])",
				   "self.host[a:b] = source.get().reshape(-1)", "source.get(self.host[a:b].reshape(source.shape))",
				   "target.set(self.host[a:b].reshape(target.shape))",
				   "buf = getBackend().zeros((int(size), ), dtype=dtype)",
				   "import pycuda.driver as driver", "buf = driver.pagelocked_zeros((int(size), ), dtype)",
				   "backend.driver.memcpy_dtod(backend.pointerOf(target), backend.pointerOf(total), int(total.size) * total.dtype.itemsize)",
				   "backend.divide(target, self.gridsize)"]


class Emulator:
	def __init__(self, env, coverageDir: Path):
		self.env, self.coverageDir = env, coverageDir
		self.rcfile = coverageDir / "coveragerc"
		self.rcfile.write_text("[run]\nparallel = True\npatch = subprocess\nsource = puzzlelib_rmsprop\ndata_file = %s\n" % (
			coverageDir / ".coverage"))

	def run(self, args, timeout=900, **extraEnv):
		"""Runs ``python -m coverage run ... args`` on the emulated driver with the CUDA backend selected."""
		env = dict(self.env, PUZZLELIB_RMSPROP_BACKEND="cuda", CUDA_EMU_DEVICES="4", **extraEnv)
		env.pop("COVERAGE_PROCESS_CONFIG", None)
		command = [str(HERE / "cuda_emu" / "run"), sys.executable, "-m", "coverage", "run", "--rcfile=%s" % self.rcfile, *args]
		return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)

	def pytest(self, label, paths, report, **extraEnv):
		result = self.run(["-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *paths], **extraEnv)
		assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
		unexpected = [line for line in skipped(result.stdout) if not any(re.search(p, line) for p in EXPECTED_SKIPS)]
		assert not unexpected, "%s: skips the emulated run must not take:\n%s" % (label, "\n".join(unexpected))
		summary = result.stdout.strip().splitlines()[-1]
		settings = " ".join("%s=%s" % item for item in sorted(extraEnv.items())) or "default settings"
		report.append("%s (%s): %s" % (label, settings, summary.strip("= ")))
		return result.stdout


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
	try:
		env = build.environment()
	except build.EmulatorUnavailable as e:
		requireTool("the emulated CUDA driver is unavailable: %s" % e)
	return Emulator(env, tmp_path_factory.mktemp("coverage"))


def puzzlelibSource():
	"""--puzzlelib-source with PuzzleLib 1.0.3's sdist where the tests have downloaded it (tests/puzzlelib_oracle.py)."""
	import puzzlelib_oracle
	try:
		return ["--puzzlelib-source", str(puzzlelib_oracle.sdist())]
	except puzzlelib_oracle.OracleUnavailable as e:
		if os.environ.get("CI"):
			pytest.fail("PuzzleLib's sdist could not be downloaded in CI: %s" % e)
		return []


def skipped(output, path=""):
	return [line for line in output.splitlines() if line.startswith("SKIPPED") and path in line]


def test_reference_suites_deferred_and_shuffled(emulator, emulatorReport):
	"""The whole optimizer-level reference (bit-exact), with every stream operation held until a synchronizing call
	needs it and the blocks of every launch in shuffled order."""
	output = emulator.pytest("CUDA tests and reference suites", BACKEND_TESTS + REFERENCE_SUITES, emulatorReport, CUDA_EMU_DEFERRED="1",
							 CUDA_EMU_BLOCK_ORDER="shuffle", CUDA_EMU_SEED="11")
	for path in BACKEND_TESTS:
		assert not skipped(output, path), "nothing of %s may skip on the emulator:\n%s" % (path, "\n".join(skipped(output, path)))


def test_backend_and_driver_in_default_mode(emulator, emulatorReport):
	emulator.pytest("CUDA tests", BACKEND_TESTS, emulatorReport)


def test_device_selection_and_one_device_per_rank(emulator, emulatorReport):
	"""Compiling at selection for devices of other compute capabilities (7.0 refused, 13.0 through PTX, bit-exact),
	and one device per MPI rank (CUDA_VISIBLE_DEVICES per rank, the local rank modulo the devices)."""
	paths = ["tests/Backend/test_CudaSelection.py", "tests/test_Grid_devices.py"]
	output = emulator.pytest("device selection", paths, emulatorReport)
	for path in paths:
		assert not skipped(output, path), "nothing of %s may skip on the emulator:\n%s" % (path, "\n".join(skipped(output, path)))


def test_demo_trains_on_the_cuda_backend(emulator):
	result = emulator.run(["-m", "puzzlelib_rmsprop.demo"])
	assert result.returncode == 0, result.stderr[-3000:]
	assert result.stdout.startswith("Backend: cuda (Emulated CUDA device 0")
	cpu = subprocess.run([sys.executable, "-m", "puzzlelib_rmsprop.demo"], cwd=ROOT, capture_output=True, text=True,
						 env=dict(os.environ, PUZZLELIB_RMSPROP_BACKEND="cpu"), check=True)
	errors = lambda text: re.findall(r"Iteration #\d+ error: \S+", text)
	assert len(errors(result.stdout)) == 20 and errors(result.stdout) == errors(cpu.stdout), "same numbers as the CPU"


def test_benchmark_runs_on_the_cuda_backend(emulator, tmp_path):
	"""Function only: every GPU candidate runs and reports; the figures are the emulator's, not a GPU's."""
	result = emulator.run(["-m", "puzzlelib_rmsprop.bench", "--quick", "--repeats", "1", "--max-elements", "1e6",
						   "--out", str(tmp_path)] + puzzlelibSource(), timeout=600)
	assert result.returncode == 0, result.stderr[-3000:]
	results = json.loads((tmp_path / "results.json").read_text())
	assert results["machine"]["backend"] == "cuda" and results["machine"]["emulated"] and results["targets"] == []
	assert "EMULATED device" in result.stdout
	assert [(w["name"], w["dtype"]) for w in results["workloads"]] == [
		("N=1e+06 float32", "float32"), ("N=1e+06 float16", "float16"), ("overhead, 1 tensors", "float32"),
		("overhead, 161 tensors", "float32"), ("overhead, 1000 tensors", "float32")]
	expected = {"ours (global)", "ours kernel (rmspropKer)", "limit (same traffic, no math)"}
	for workload in results["workloads"]:
		names = set(workload["results"])
		assert expected <= names and (workload["kind"] == "single" or "ours (local)" in names), workload["name"]
		assert not puzzlelibSource() or "PuzzleLib 1.0.3 kernel (global)" in names, "PuzzleLib's CUDA kernel as a peer"
	assert (tmp_path / "bandwidth.png").is_file()


@pytest.mark.parametrize("cudaAware", ["0", "1"])
def test_data_parallel_training_on_the_cuda_backend(emulator, emulatorReport, cudaAware):
	"""mpiexec -n 2 and -n 3, one emulated GPU per rank: gradients through pinned host staging, or handed to MPI as
	device memory (CUDA-aware MPI; here the device memory is host memory, so any MPI can read it). Deferred: MPI
	must not read device memory before the kernels that write it are done (it caught that once)."""
	emulator.pytest("mpiexec -n 2 and -n 3", ["tests/test_Grid.py", "tests/test_Sharding.py", "-k",
											 "equals_single or demo_option or equals_one_process or continues_on_three"], emulatorReport,
					PUZZLELIB_RMSPROP_CUDA_AWARE_MPI=cudaAware, CUDA_EMU_DEFERRED="1", CUDA_EMU_BLOCK_ORDER="shuffle")


def test_every_line_of_the_cuda_backend_ran(emulator, emulatorReport):
	"""Runs last: coverage of the runs above (all processes and ranks)."""
	import coverage

	cov = coverage.Coverage(config_file=str(emulator.rcfile))
	cov.combine()
	cov.save()
	package = ROOT / "puzzlelib_rmsprop"

	for name in ("Backend/CudaBackend.py", "Backend/CudaContext.py"):
		_, statements, _, missing, _ = cov.analysis2(str(package / name))
		lines = (package / name).read_text().splitlines()
		unexplained = [(n, lines[n - 1].strip()) for n in missing if lines[n - 1].strip() not in GPU_ONLY_LINES]
		emulatorReport.append("coverage of %s: %d of %d statements%s" % (
			name, len(statements) - len(missing), len(statements),
			"".join("; line %d only on a GPU: %s" % (n, GPU_ONLY_LINES[lines[n - 1].strip()]) for n in missing
					if lines[n - 1].strip() in GPU_ONLY_LINES)))
		assert not unexplained, "lines of %s no emulated run reached: %s" % (name, unexplained)

	_, statements, _, missing, _ = cov.analysis2(str(package / "Grid.py"))
	lines = (package / "Grid.py").read_text().splitlines()
	cudaLines = [i + 1 for i, line in enumerate(lines) if line.strip() in GRID_CUDA_LINES]
	assert {lines[n - 1].strip() for n in cudaLines} == set(GRID_CUDA_LINES), "Grid.py changed: update GRID_CUDA_LINES"
	assert not set(cudaLines) & set(missing), "Grid.py's CUDA lines not reached: %s" % sorted(set(cudaLines) & set(missing))
	emulatorReport.append("coverage of Grid.py: %d of %d statements, all %d CUDA-branch lines" % (
		len(statements) - len(missing), len(statements), len(cudaLines)))

