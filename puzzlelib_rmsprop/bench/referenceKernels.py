"""The benchmark's reference kernels, no part of the optimizer and built only when the benchmark asks for them: the
update's memory traffic without its math (the bandwidth limit), the same for 8-bit state, and STREAM's triad.
On the CPU, kernels/bench_host.c and rmsprop_host.c are compiled on first use into a shared library under the cache
(``PUZZLELIB_RMSPROP_BENCH_CACHE``, else ``$XDG_CACHE_HOME/puzzlelib_rmsprop`` or ``~/.cache/puzzlelib_rmsprop``),
named by a hash of the sources; on CUDA, kernels/bench_traffic.cu goes through pycuda (which caches the cubin)."""
import ctypes
import hashlib
import os
import shutil
import subprocess
import sysconfig
import tempfile
from functools import lru_cache
from pathlib import Path

from .. import Config
from ..Backend.kernelSource import kernelDir
from ..Errors import BackendError

CACHE_ENV = "PUZZLELIB_RMSPROP_BENCH_CACHE"
HOST_SOURCES = ("bench_host.c", "rmsprop_host.c", "host_pool.c")
# as setup.py builds the host kernels (the references need no more than the same threads and vectorization)
HOST_FLAGS = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off", "-std=c11", "-pthread", "-shared", "-fPIC"]
TRAFFIC_LIMIT, TRAFFIC_TRIAD = 0, 1


def cacheDir() -> Path:
	if os.environ.get(CACHE_ENV):
		return Path(os.environ[CACHE_ENV])
	return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "puzzlelib_rmsprop"


def _compiler() -> str:
	found = shutil.which((sysconfig.get_config_var("CC") or "cc").split()[0]) or shutil.which("cc") or shutil.which("gcc")
	if found is None:
		raise BackendError("the benchmark's host references need a C compiler (cc or gcc on PATH)")
	return found


@lru_cache(maxsize=None)
def hostLibrary() -> ctypes.CDLL:
	"""The host references, built once per set of sources."""
	directory = kernelDir()
	digest = hashlib.sha256(" ".join(HOST_FLAGS).encode())
	for path in [directory / name for name in HOST_SOURCES] + sorted(directory.glob("*.h")):
		digest.update(path.name.encode() + path.read_bytes())
	target = cacheDir() / ("bench_host-%s.so" % digest.hexdigest()[:16])

	if not target.is_file():
		target.parent.mkdir(parents=True, exist_ok=True)
		with tempfile.TemporaryDirectory(dir=target.parent) as work:
			library = Path(work) / target.name
			command = [_compiler(), *HOST_FLAGS, "-I", str(directory), "-o", str(library),
					   *[str(directory / name) for name in HOST_SOURCES]]
			result = subprocess.run(command, capture_output=True, text=True)
			if result.returncode != 0:
				raise BackendError("building the benchmark's host references failed:\n%s" % result.stderr[-2000:])
			os.replace(library, target)

	lib = ctypes.CDLL(str(target))
	lib.benchTraffic.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]
	lib.benchQuant8Traffic.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
	return lib


def _cudaLaunch(backend, name: str, grid: int, table, stream) -> None:
	if len(table.rows) > 0:
		backend.contexts.ensure()
		kernel = backend.kernel(name, "Pi", source="bench_traffic.cu")
		kernel.prepared_async_call((grid, 1, 1), (256, 1, 1), stream, table.address, len(table.rows))


def traffic(backend, table, kind: int = TRAFFIC_LIMIT, stream=None) -> None:
	"""Over a launch table of the backend (float32; CUDA: float16 too): the update's traffic without its math
	(``kind`` 0: param <- ms, ms <- param + grad) or, on the CPU, STREAM's triad (kind 1: param <- grad + 1.0001 ms)."""
	if backend.name == "cpu":
		hostLibrary().benchTraffic(table.address, len(table.rows), int(kind), int(Config.cpuThreads))
		return
	if kind != TRAFFIC_LIMIT:
		raise ValueError("the CUDA backend has only the same-traffic reference (kind 0)")
	from ..Backend.CudaBackend import plainKernel
	_cudaLaunch(backend, plainKernel("trafficLimit", len(table.rows), table.dtype), table.grid, table, stream)


def quant8Traffic(backend, table, stream=None) -> None:
	"""Over a Quant8Table's launch table (float32 parameters, ms only): the 8-bit update's traffic without its math."""
	if backend.name == "cpu":
		hostLibrary().benchQuant8Traffic(table.address, len(table.rows), int(Config.cpuThreads))
		return
	_cudaLaunch(backend, "quant8TrafficFloat32", backend.quant8Grid(table), table, stream)
