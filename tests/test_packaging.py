"""What a new user gets from the distributions, not from the checkout: ``python -m build`` makes the sdist and the
wheel (from the sdist); the wheel goes into a fresh virtual environment outside the checkout, where every module
imports, the demo and ``bench --quick`` run, and this suite runs against it from the sdist's copy of tests/. The
sdist holds what building and testing need and installs by itself; the ``cuda`` extra without the CUDA toolkit
fails saying what is missing. A few minutes (marker ``packaging``, which the inner run leaves out)."""
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import pytest

from conftest import requireTool

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "puzzlelib_rmsprop"
EXTENSIONS = {"puzzlelib_rmsprop.Backend._cpukernels"}
KERNEL_SUFFIXES = (".h", ".cuh", ".cu", ".c")
BUILD_OUTPUTS = (".so", ".pyc", ".o", ".cubin")  # never shipped in the sdist (MANIFEST.in)
UNSHIPPED = (".git", ".venv", ".cache", ".hypothesis", ".pytest_cache", "build", "dist", "bench-out", "*.egg-info",
			 "__pycache__", *("*" + suffix for suffix in BUILD_OUTPUTS))

# Run in the installed environment: imports every module pkgutil finds (a subpackage missing from the wheel is
# missing from this list; one that fails to import fails here) and says where everything came from.
IMPORT_EVERYTHING = """
import importlib, json, pkgutil
from importlib.metadata import version
import puzzlelib_rmsprop
from puzzlelib_rmsprop.Backend.kernelSource import kernelDir

def fail(name):
	raise

found = pkgutil.walk_packages(puzzlelib_rmsprop.__path__, "puzzlelib_rmsprop.", onerror=fail)
names = [puzzlelib_rmsprop.__name__] + [m.name for m in found]
for name in names:
	importlib.import_module(name)
print(json.dumps({"modules": names, "file": puzzlelib_rmsprop.__file__, "version": puzzlelib_rmsprop.__version__,
				  "distribution": version("puzzlelib_rmsprop"), "kernelDir": str(kernelDir()),
				  "kernels": sorted(p.name for p in kernelDir().iterdir())}))
"""


def run(command, **kwargs) -> subprocess.CompletedProcess:
	"""Runs ``command``; a non-zero exit fails the test with the end of its output."""
	kwargs.setdefault("stdout", subprocess.PIPE)
	kwargs.setdefault("stderr", subprocess.PIPE)
	result = subprocess.run([str(c) for c in command], text=True, timeout=600, **kwargs)
	assert result.returncode == 0, "%s exited with %d:\n%s\n%s" % (
		" ".join(map(str, command[:4])), result.returncode, (result.stdout or "")[-5000:], (result.stderr or "")[-5000:]
	)
	return result


def environment(**changes) -> dict:
	"""This process's environment without what could put the checkout's sources on sys.path."""
	env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
	env.update(changes)
	return env


def newVenv(path: Path) -> Path:
	"""A fresh virtual environment at ``path`` (from the base interpreter); returns its python."""
	run([sys.executable, "-m", "venv", path])
	return path / "bin" / "python"


def sourceModules() -> set:
	"""Every module of the package in the checkout, by the files there."""
	names = set(EXTENSIONS)
	for path in (ROOT / PACKAGE).rglob("*.py"):
		parts = path.relative_to(ROOT).with_suffix("").parts
		names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
	return names


def sourceKernels() -> list:
	return sorted(p.name for p in (ROOT / "kernels").iterdir() if p.suffix in KERNEL_SUFFIXES)


def sourceVersion() -> str:
	return re.search(r'^__version__ = "([^"]+)"', (ROOT / PACKAGE / "__init__.py").read_text(), re.M).group(1)


def importEverything(python: Path, venv: Path) -> dict:
	"""Imports every module in ``python``'s environment (run outside the checkout); checks where it all came from."""
	printed = run([python, "-c", IMPORT_EVERYTHING], cwd=venv, env=environment()).stdout
	found = json.loads(printed.strip().splitlines()[-1])

	assert venv.resolve() in Path(found["file"]).resolve().parents, found["file"]
	assert set(found["modules"]) == sourceModules()
	assert found["version"] == found["distribution"] == sourceVersion()
	assert venv.resolve() in Path(found["kernelDir"]).resolve().parents, "kernel sources not shipped as package data"
	assert found["kernels"] == sourceKernels()
	return found


def noDebris(text: str) -> None:
	"""Output sent to a pipe: no progress-bar redraws."""
	assert "\r" not in text and "%|" not in text and "it/s]" not in text, text[:2000]


@pytest.fixture(scope="module")
def work() -> Path:
	"""A folder every user may read: the inner run's test_Checkpoint_disk runs the wheel's python as an unprivileged
	user, who could not read a virtual environment under pytest's own (mode 0700) temporary folder."""
	path = Path(tempfile.mkdtemp(prefix="puzzlelib_rmsprop-packaging-"))
	path.chmod(0o755)
	yield path
	shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def timings(packagingReport):
	"""Seconds per step, reported in the terminal summary."""
	steps = {}
	yield steps
	packagingReport.append("time: " + ", ".join("%s %.0f s" % item for item in steps.items()))


@pytest.fixture(scope="module")
def dists(work, timings):
	"""(sdist, wheel) as ``python -m build`` makes them from the checkout: from a copy of it without build
	outputs, since a stale *.egg-info/SOURCES.txt (the editable install leaves one) would add its files to the sdist."""
	start = time.monotonic()
	source = work / "source"
	shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(*UNSHIPPED))
	run([sys.executable, "-m", "build", "--outdir", work / "dist", source], env=environment())
	timings["build"] = time.monotonic() - start

	sdist, = (work / "dist").glob("*.tar.gz")
	wheel, = (work / "dist").glob("*.whl")
	return sdist, wheel


@pytest.fixture(scope="module")
def sdistTree(work, dists) -> Path:
	"""The unpacked sdist."""
	with tarfile.open(dists[0]) as tar:
		tar.extractall(work / "sdist", **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
	root, = (work / "sdist").iterdir()
	return root


@pytest.fixture(scope="module")
def wheelVenv(work, dists, timings) -> Path:
	"""A fresh virtual environment outside the checkout holding the wheel and its test extra."""
	start = time.monotonic()
	python = newVenv(work / "wheel-venv")
	run([python, "-m", "pip", "install", "-q", "%s[test]" % dists[1]], cwd=work, env=environment())
	timings["install wheel[test]"] = time.monotonic() - start
	return work / "wheel-venv"


@pytest.fixture(scope="module")
def sdistVenv(work) -> Path:
	newVenv(work / "sdist-venv")
	return work / "sdist-venv"


def test_sdist_holds_kernels_tests_docs_license_and_readme(dists):
	with tarfile.open(dists[0]) as tar:
		names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}

	expected = {"LICENSE", "README.md", "pyproject.toml", "setup.py", "MANIFEST.in"}
	expected |= {"kernels/" + name for name in sourceKernels()}
	expected |= {p.relative_to(ROOT).as_posix() for folder in ("tests", "docs") for p in (ROOT / folder).rglob("*")
				 if p.is_file() and "__pycache__" not in p.parts and p.suffix not in BUILD_OUTPUTS}
	assert expected <= names, sorted(expected - names)
	assert not [name for name in names if Path(name).suffix in BUILD_OUTPUTS]


def test_wheel_holds_every_package_and_the_kernel_sources(dists):
	with zipfile.ZipFile(dists[1]) as wheel:
		names = set(wheel.namelist())

	packages = {p.parent.relative_to(ROOT).as_posix() for p in (ROOT / PACKAGE).rglob("__init__.py")}
	assert {package + "/__init__.py" for package in packages} <= names
	assert {"%s/kernels/%s" % (PACKAGE, name) for name in sourceKernels()} <= names


def test_installed_wheel_imports_every_module(wheelVenv):
	importEverything(wheelVenv / "bin" / "python", wheelVenv)


def test_installed_demo_prints_clean_lines_to_a_pipe(wheelVenv, work):
	out = run([wheelVenv / "bin" / "python", "-m", "puzzlelib_rmsprop.demo"], cwd=work, env=environment(),
			  stderr=subprocess.STDOUT).stdout

	noDebris(out)
	lines = out.splitlines()
	assert lines[0].startswith("Backend: cpu"), out
	iterations = [int(re.fullmatch(r"Iteration #(\d+) error: \S+", line).group(1)) for line in lines[1:]]
	assert iterations == list(range(5, 101, 5)), out


def test_installed_bench_quick(wheelVenv, work, timings):
	start = time.monotonic()
	result = run([wheelVenv / "bin" / "python", "-m", "puzzlelib_rmsprop.bench", "--quick", "--out", work / "bench"],
				 cwd=work, env=environment())
	timings["bench --quick"] = time.monotonic() - start

	noDebris(result.stdout + result.stderr)
	assert re.findall(r"^benchmark (\d+)/\1: ", result.stderr, re.M), result.stderr
	assert "of limit" in result.stdout and "wrote" in result.stdout
	assert json.loads((work / "bench" / "results.json").read_text())["workloads"]
	assert (work / "bench" / "bandwidth.png").read_bytes()[:4] == b"\x89PNG"


def innerFailures(output: str) -> str:
	"""What failed in the inner run, first: its FAILED and ERROR lines, then the start of its failures section
	(the terminal summary's SASS listing after it would fill any tail)."""
	lines = output.splitlines()
	failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
	start = next((i for i, line in enumerate(lines) if re.match(r"=+ (FAILURES|ERRORS) =+$", line)), None)
	details = "\n".join(lines[start:])[:8000] if start is not None else output[-8000:]
	return "\n".join(failed + [details])


def test_suite_passes_against_the_installed_wheel(wheelVenv, sdistTree, work, timings, packagingReport):
	"""The sdist's tests/, beside no package source, run by the environment's python: only the installed package
	can be imported (conftest checks it). They share the checkout's .cache (pycuda and PuzzleLib builds). Left
	out: this module, the emulated-GPU runs (marker ``emulator``: minutes of the same code under coverage of
	the checkout's sources, which the installed package does not change) and the reruns in other file orders
	(marker ``order``: the same tests again)."""
	suite = work / "suite"
	shutil.copytree(sdistTree / "tests", suite / "tests")
	shutil.copy(sdistTree / "pyproject.toml", suite / "pyproject.toml")  # pytest's markers
	(ROOT / ".cache").mkdir(exist_ok=True)
	(suite / ".cache").symlink_to(ROOT / ".cache")

	start = time.monotonic()
	command = [wheelVenv / "bin" / "python", "-m", "pytest", "-rfEs", "-q", "-p", "no:cacheprovider",
			   "-m", "not packaging and not emulator and not order", "tests"]
	env = environment(PUZZLELIB_RMSPROP_EXPECT_INSTALLED_IN=str(wheelVenv))
	result = subprocess.run([str(c) for c in command], cwd=suite, env=env, stdout=subprocess.PIPE,
							stderr=subprocess.STDOUT, text=True, timeout=600)
	timings["inner test run"] = time.monotonic() - start

	lines = result.stdout.strip().splitlines()
	packagingReport.extend("inner run: " + line for line in lines if line.startswith(("SKIPPED", "FAILED", "ERROR")))
	packagingReport.append("inner run: " + lines[-1])
	assert result.returncode == 0, innerFailures(result.stdout)
	assert re.search(r"\d+ passed", lines[-1]), result.stdout[-2000:]


def test_sdist_installs_and_imports(sdistVenv, dists, timings):
	start = time.monotonic()
	run([sdistVenv / "bin" / "python", "-m", "pip", "install", "-q", dists[0]], cwd=sdistVenv, env=environment())
	timings["install sdist"] = time.monotonic() - start
	importEverything(sdistVenv / "bin" / "python", sdistVenv)


def test_cuda_extra_without_the_toolkit_says_what_is_missing(sdistVenv, dists, work, timings):
	"""pycuda is sdist-only: its build needs nvcc (or CUDA_ROOT) and cuda.h. Hidden here: PATH without nvcc, no
	CUDA variables, a HOME without pycuda's ~/.aksetup-defaults.py."""
	if Path("/usr/include/cuda.h").exists():
		requireTool("a machine without a system-wide CUDA toolkit: /usr/include/cuda.h is there, so its absence cannot be simulated")

	hidden = ("CUDA_ROOT", "CUDA_HOME", "CUDA_PATH", "CUDA_INC_DIR", "CPATH", "C_INCLUDE_PATH", "CPLUS_INCLUDE_PATH")
	env = {k: v for k, v in environment().items() if k not in hidden}
	env["PATH"] = os.pathsep.join(d for d in env.get("PATH", "").split(os.pathsep) if d and not (Path(d) / "nvcc").exists())
	# pip's cache where it was, before HOME moves
	cacheHome = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
	env["PIP_CACHE_DIR"] = os.environ.get("PIP_CACHE_DIR") or str(cacheHome / "pip")
	env["HOME"] = str(work / "home")
	(work / "home").mkdir(exist_ok=True)

	start = time.monotonic()
	result = subprocess.run([str(sdistVenv / "bin" / "python"), "-m", "pip", "install", "%s[cuda]" % dists[0]],
							cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
	timings["cuda extra, failing"] = time.monotonic() - start

	assert result.returncode != 0, "pycuda built without the CUDA toolkit?\n" + result.stdout[-3000:]
	assert "nvcc not in path" in result.stdout, result.stdout[-5000:]
	assert "cuda.h: No such file or directory" in result.stdout, result.stdout[-5000:]
