"""pycuda built and importable on a machine without a GPU or driver (../shared/notes/cuda-without-gpu.md):
a stub libcuda.so.1 whose every cu* entry point returns CUDA_ERROR_STUB_LIBRARY, generated from the toolkit's
cuda.h, and pycuda compiled against it into the project's cache. Used by tests/test_cuda_backend_stub.py."""
import os
import re
import subprocess
import sys
from pathlib import Path

PYCUDA = "pycuda==2026.1"
CUDA_ROOT = Path(os.environ.get("CUDA_ROOT", "/usr/local/cuda"))
CACHE = Path(__file__).resolve().parents[2] / ".cache" / "pycuda-stub"
STUB_ERROR = 34  # CUDA_ERROR_STUB_LIBRARY

SPECIAL = {
	"cuGetErrorString": "int cuGetErrorString(int e, const char **s) { *s = \"CUDA stub library (no driver)\"; return 0; }",
	"cuGetErrorName": "int cuGetErrorName(int e, const char **s) { *s = \"CUDA_ERROR_STUB_LIBRARY\"; return 0; }",
}


class StubUnavailable(RuntimeError):
	pass


def run(command, **kwargs):
	result = subprocess.run(command, capture_output=True, text=True, **kwargs)
	if result.returncode != 0:
		raise StubUnavailable("%s failed:\n%s" % (" ".join(map(str, command[:3])), (result.stderr or result.stdout)[-3000:]))
	return result.stdout


def driverEntryPoints() -> list:
	"""Every entry point cuda.h and cudaProfiler.h declare, as linkers see them (after their _v2 renaming macros)."""
	header = "".join(
		run(["gcc", "-E", "-P", "-I", str(CUDA_ROOT / "include"), str(CUDA_ROOT / "include" / name)])
		for name in ("cuda.h", "cudaProfiler.h")
	)
	return sorted(set(re.findall(r"\bCUresult\s+(cu[A-Z]\w*)\s*\(", header)))


def buildStubLibrary(libDir: Path) -> None:
	"""libcuda.so.1 defining every driver entry point, each failing with CUDA_ERROR_STUB_LIBRARY."""
	names = sorted(set(driverEntryPoints()) | set(SPECIAL))

	source = libDir / "stub.c"
	source.write_text("\n".join(SPECIAL.get(name, "int %s(void) { return %d; }" % (name, STUB_ERROR)) for name in names) + "\n")
	run(["gcc", "-shared", "-fPIC", "-O2", "-Wl,-soname,libcuda.so.1", "-o", str(libDir / "libcuda.so.1"), str(source)])
	if not (libDir / "libcuda.so").exists():
		(libDir / "libcuda.so").symlink_to("libcuda.so.1")


def build():
	"""(site directory holding pycuda, directory of the stub libcuda): built once, then reused from the cache."""
	site, libDir, home = CACHE / "site", CACHE / "lib", CACHE / "home"
	if (site / "pycuda" / "driver.py").is_file() and (libDir / "libcuda.so.1").is_file():
		return site, libDir

	if not (CUDA_ROOT / "include" / "cuda.h").is_file():
		raise StubUnavailable("no CUDA toolkit at %s" % CUDA_ROOT)

	for directory in (libDir, home):
		directory.mkdir(parents=True, exist_ok=True)
	buildStubLibrary(libDir)

	# pycuda's build reads its configuration from $HOME/.aksetup-defaults.py
	(home / ".aksetup-defaults.py").write_text(
		"CUDA_ROOT = %r\nCUDA_ENABLE_CURAND = False\nCUDADRV_LIB_DIR = [%r]\n" % (str(CUDA_ROOT), str(libDir))
	)
	run([sys.executable, "-m", "pip", "install", "-q", "--no-cache-dir", "--no-input", "--target", str(site), PYCUDA],
		env=dict(os.environ, HOME=str(home)))
	return site, libDir


def environment(site: Path, libDir: Path) -> dict:
	"""Environment for a subprocess that imports pycuda against the stub."""
	env = dict(os.environ)
	env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
	env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(libDir), env.get("LD_LIBRARY_PATH")]))
	(CACHE / "kernel-cache").mkdir(parents=True, exist_ok=True)
	env["PYCUDA_CACHE_DIR"] = str(CACHE / "kernel-cache")
	env["PATH"] = os.pathsep.join([str(CUDA_ROOT / "bin"), env.get("PATH", "")])
	return env
