"""Real PuzzleLib 1.0.3 as the reference: installed once into the project's cache (never globally) and
imported in-process on its CPU backend. See ../shared/notes/puzzlelib-oracle.md for the traps handled here.

Its CPU kernels are built with -ffast-math, whose startup code switches flush-to-zero and denormals-are-zero
(MXCSR's FTZ/DAZ on x86) on for the whole thread when the library is loaded. So the floating-point environment is
saved and restored around every call into them (isolateFloatingPointMode): they run in the mode they set
themselves, as in PuzzleLib's own process, and every other line of the tests keeps IEEE denormals."""
import ctypes
import functools
import importlib
import os
import subprocess
import sys
from pathlib import Path

VERSION = "1.0.3"
CACHE = Path(__file__).resolve().parent.parent / ".cache" / ("puzzlelib-" + VERSION)


class OracleUnavailable(RuntimeError):
	pass


def install() -> Path:
	"""pip-installs PuzzleLib into CACHE/site (a --target directory) unless it is there already."""
	site = CACHE / "site"
	if (site / "PuzzleLib" / "__init__.py").is_file():
		return site

	CACHE.mkdir(parents=True, exist_ok=True)
	constraint = CACHE / "setuptools-constraint.txt"
	# its sdist uses a flat layout that setuptools >= 61 refuses to build
	constraint.write_text("setuptools<61\n")

	result = subprocess.run(
		[sys.executable, "-m", "pip", "install", "--no-deps", "--no-input", "-q", "--target", str(site),
		 "puzzlelib==" + VERSION],
		env=dict(os.environ, PIP_CONSTRAINT=str(constraint)), capture_output=True, text=True
	)
	if result.returncode != 0:
		raise OracleUnavailable("pip could not install puzzlelib==%s:\n%s" % (VERSION, result.stderr[-3000:]))
	return site


def sdist() -> Path:
	"""PuzzleLib's source distribution (its CUDA sources, which the installed CPU package lacks), downloaded once
	into CACHE."""
	target = CACHE / ("PuzzleLib-%s.tar.gz" % VERSION)
	if target.is_file():
		return target

	CACHE.mkdir(parents=True, exist_ok=True)
	constraint = CACHE / "setuptools-constraint.txt"
	constraint.write_text("setuptools<61\n")  # pip prepares its metadata, with the flat layout of install()
	result = subprocess.run(
		[sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--no-input", "-q", "-d", str(CACHE),
		 "puzzlelib==" + VERSION], env=dict(os.environ, PIP_CONSTRAINT=str(constraint)), capture_output=True, text=True
	)
	if result.returncode != 0 or not target.is_file():
		raise OracleUnavailable("pip could not download puzzlelib==%s's sdist:\n%s" % (VERSION, result.stderr[-3000:]))
	return target


def prepareBuildEnvironment() -> None:
	"""PuzzleLib compiles its CPU kernels with gcc on first use: keep its cache inside ours, and give its
	linker the -lpython3.Xm library that Python no longer ships (an empty archive is enough)."""
	stub = CACHE / "libstub"
	stub.mkdir(parents=True, exist_ok=True)
	archive = stub / ("libpython%d.%dm.a" % sys.version_info[:2])
	if not archive.exists():
		subprocess.run(["ar", "rcs", str(archive)], check=True)

	os.environ["LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(stub), os.environ.get("LIBRARY_PATH")]))
	os.environ["HOME"] = str(CACHE / "home")


class FloatingPointMode:
	"""A thread's floating-point environment (C99 fenv_t: rounding, exception flags, and on x86 the whole MXCSR,
	FTZ and DAZ included), taken and put back through libc's fegetenv/fesetenv."""

	_libc = ctypes.CDLL(None)

	def __init__(self):
		self.buffer = ctypes.create_string_buffer(1024)  # larger than any platform's fenv_t
		if self._libc.fegetenv(self.buffer) != 0:
			raise OSError("fegetenv failed")

	def restore(self) -> None:
		if self._libc.fesetenv(self.buffer) != 0:
			raise OSError("fesetenv failed")


#: the environment PuzzleLib's kernels set up for themselves when their first library loaded (None until then)
_puzzlelibMode = None


def _inPuzzleLibMode(function):
	"""``function`` (a compiled kernel) called in PuzzleLib's floating-point mode, the caller's restored after."""
	@functools.wraps(function)
	def call(*args, **kwargs):
		ours = FloatingPointMode()
		_puzzlelibMode.restore()
		try:
			return function(*args, **kwargs)
		finally:
			ours.restore()
	return call


def isolateFloatingPointMode() -> None:
	"""Wraps PuzzleLib's CPU SourceModule.getFunction, the one way its CPU backend reaches compiled code (its
	elementwise, reduction and other kernels all go through it): building and loading a library, and every call
	of the functions it returns, leave the caller's floating-point mode as it was."""
	from PuzzleLib.CPU.SourceModule import SourceModule

	original = SourceModule.getFunction
	if getattr(original, "isolated", False):
		return

	def getFunction(self, name):
		global _puzzlelibMode
		ours = FloatingPointMode()
		if _puzzlelibMode is not None:
			_puzzlelibMode.restore()
		try:
			function = original(self, name)
		finally:
			if _puzzlelibMode is None:
				_puzzlelibMode = FloatingPointMode()  # the first load ran the library's -ffast-math startup code
			ours.restore()
		return _inPuzzleLibMode(function)

	getFunction.isolated = True
	SourceModule.getFunction = getFunction


#: PuzzleLib's backend for the reference (cpu here; cuda on a GPU where tests/gpu/build_puzzlelib_cuda.sh has built
#: its CUDA driver into the directory PUZZLELIB_ORACLE_SITE names)
BACKEND = os.environ.get("PUZZLELIB_ORACLE_BACKEND", "cpu")


def load():
	"""The PuzzleLib modules the tests use, as a namespace; raises OracleUnavailable with the reason."""
	site = Path(os.environ["PUZZLELIB_ORACLE_SITE"]) if os.environ.get("PUZZLELIB_ORACLE_SITE") else install()
	prepareBuildEnvironment()
	if str(site) not in sys.path:
		sys.path.append(str(site))

	ours = FloatingPointMode()
	try:
		from PuzzleLib import Config
		Config.backend = getattr(Config.Backend, BACKEND)
		Config.systemLog = False
		if BACKEND == "cpu":
			isolateFloatingPointMode()

		names = {
			"gpuarray": "PuzzleLib.Backend.gpuarray", "Sequential": "PuzzleLib.Containers.Sequential",
			"Graph": "PuzzleLib.Containers.Graph", "Linear": "PuzzleLib.Modules.Linear",
			"Activation": "PuzzleLib.Modules.Activation", "Add": "PuzzleLib.Modules.Add",
			"Concat": "PuzzleLib.Modules.Concat", "MSE": "PuzzleLib.Cost.MSE",
			"RMSProp": "PuzzleLib.Optimizers.RMSProp", "Hooks": "PuzzleLib.Optimizers.Hooks",
			"RMSPropGraves": "PuzzleLib.Optimizers.RMSPropGraves",
		}
		return type("PuzzleLib", (), {key: importlib.import_module(mod) for key, mod in names.items()})
	except Exception as e:
		raise OracleUnavailable("PuzzleLib %s does not import: %r" % (VERSION, e)) from e
	finally:
		ours.restore()
