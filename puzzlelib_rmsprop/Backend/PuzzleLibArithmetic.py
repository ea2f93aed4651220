"""arithmetic="puzzlelib" on the CPU: PuzzleLib 1.0.3's kernels (kernels/rmsprop_puzzlelib.c) compiled with its gcc
flags on the machine that runs them, as PuzzleLib compiles its own, and cached.

The installed extension never holds this code: -march=native output is only valid on the CPU that built it. The
library is built once per (source, flags, compiler, CPU) into ``$XDG_CACHE_HOME/puzzlelib_rmsprop`` (default
``~/.cache/puzzlelib_rmsprop``), written under a temporary name and renamed, so concurrent processes never load half a
file. It is linked without ``-ffast-math``: gcc would add crtfastmath.o, whose constructor switches flush-to-zero on
for the whole process; the kernel sets it around its own loops instead (kernels/rmsprop_puzzlelib.c says why).
"""
import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from ..Errors import OptimizerError
from .kernelSource import kernelDir

logger = logging.getLogger("puzzlelib_rmsprop")

SOURCE = "rmsprop_puzzlelib.c"
HEADERS = ("rmsprop_update.h", "tensor_table.h")
#: PuzzleLib 1.0.3's compile flags for its CPU kernels (Compiler/Compilers/GCC.py at optimization level 4);
#: its -flto only moves the code generation of this one translation unit to the link step
CFLAGS = ["-Wall", "-Wextra", "-fPIC", "-std=gnu99", "-O3", "-march=native", "-mtune=native", "-ffast-math"]
LDFLAGS = ["--shared"]


def cacheDir() -> Path:
	base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
	return Path(base) / "puzzlelib_rmsprop"


def compiler() -> str:
	"""gcc, as PuzzleLib uses; OptimizerError where there is none."""
	cc = shutil.which("gcc")
	if cc is None:
		raise OptimizerError("arithmetic='puzzlelib' compiles PuzzleLib's kernel at run time, as PuzzleLib does, and "
							 "needs gcc: none found on PATH (install gcc, or use the default arithmetic='ieee')")
	return cc


def _run(command, what: str) -> str:
	result = subprocess.run(command, capture_output=True, text=True)
	if result.returncode != 0:
		raise OptimizerError("arithmetic='puzzlelib': %s failed (%s):\n%s" % (what, " ".join(command), result.stderr[-2000:]))
	return result.stdout


def buildKey(cc: str) -> str:
	"""The cache key: the sources, the flags, the compiler's version and what -march=native means on this CPU."""
	digest = hashlib.sha256()
	for name in (SOURCE, ) + HEADERS:
		digest.update((kernelDir() / name).read_bytes())
	digest.update(" ".join(CFLAGS + LDFLAGS).encode())
	digest.update(_run([cc, "--version"], "asking the compiler's version").encode())
	digest.update(_run([cc, "-march=native", "-mtune=native", "-Q", "--help=target"], "asking what -march=native means").encode())
	return digest.hexdigest()[:24]


def build() -> Path:
	"""The compiled library's path, built now unless the cache has it."""
	cc = compiler()
	target = cacheDir() / ("rmsprop_puzzlelib-%s.so" % buildKey(cc))
	if target.is_file():
		return target

	target.parent.mkdir(parents=True, exist_ok=True)
	with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as work:
		obj, lib = os.path.join(work, "kernel.o"), os.path.join(work, "kernel.so")
		_run([cc] + CFLAGS + ["-I", str(kernelDir()), "-c", str(kernelDir() / SOURCE), "-o", obj], "compiling PuzzleLib's kernel")
		_run([cc] + LDFLAGS + ["-o", lib, obj, "-lm"], "linking PuzzleLib's kernel")
		os.replace(lib, target)

	logger.info("built PuzzleLib's CPU kernels with %s into %s", " ".join(CFLAGS), target)
	return target


_library, _lock = None, threading.Lock()


def library() -> ctypes.CDLL:
	"""The loaded library (built on first use), memoized."""
	global _library
	with _lock:
		if _library is None:
			lib = ctypes.CDLL(str(build()))
			lib.puzzlelibRows.argtypes = [ctypes.c_void_p, ctypes.c_longlong, ctypes.c_char_p, ctypes.c_int]
			lib.puzzlelibRows.restype = ctypes.c_int
			_library = lib
	return _library


def puzzlelibRows(address: int, count: int, f, joined: bool) -> None:
	"""Runs PuzzleLib's kernel over ``count`` FlavourEntry rows at ``address``: one call per row, or with ``joined``
	one call per run of rows with equal step sizes, as if packed end to end (PuzzleLib's global state)."""
	# f.struct: the RMSPropFlavour's bytes (Kernels.FLAVOUR_STRUCT mirrors the header)
	if library().puzzlelibRows(address, count, f.struct, int(bool(joined))) != 0:
		raise MemoryError("arithmetic='puzzlelib': no memory for the packed copy of the global-state buffer")
