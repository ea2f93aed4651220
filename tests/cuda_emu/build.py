"""Builds what tests/cuda_emu/run needs, once, under .cache/cuda-emu/ (a lock keeps parallel runs from racing):
pycuda 2026.1 compiled against the stub libcuda (tests/cuda_stub), and the emulated driver, a libcuda.so.1 made
of driver/*.cpp plus a generated function for every other entry point cuda.h declares, which fails loudly with
its name. ``environment()`` is the environment a command runs in. The host builds of kernels, and pycuda's cubins
beside them, live under kernels/<key of the headers they are built with>, so a change to the shim rebuilds them."""
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CACHE = ROOT / ".cache" / "cuda-emu"

sys.path.insert(0, str(HERE.parent / "cuda_stub"))
import stub_pycuda  # noqa: E402

DRIVER_SOURCES = sorted((HERE / "driver").glob("*.cpp"))
DRIVER_HEADERS = sorted((HERE / "driver").glob("*.h"))
#: what a host build of a kernel is made of besides its source (tests/cuda_emu/hostbuild.py)
KERNEL_BUILD_INPUTS = [HERE.parent / "cuda_on_host" / "cuda_host_shim.h", HERE / "driver" / "kernel_host.h",
					   HERE / "driver" / "emu_abi.h", HERE / "hostbuild.py"] + sorted((HERE / "include").glob("*"))


class EmulatorUnavailable(RuntimeError):
	pass


def log(message: str) -> None:
	sys.stderr.write("cuda_emu: %s\n" % message)
	sys.stderr.flush()


def runCompiler(command) -> None:
	result = subprocess.run(command, capture_output=True, text=True)
	if result.returncode != 0:
		raise EmulatorUnavailable("%s failed:\n%s" % (" ".join(map(str, command[:4])), result.stderr[-4000:]))


def sourceKey() -> str:
	"""Changes whenever a source of the driver (or this builder) changes."""
	digest = hashlib.sha256()
	for path in DRIVER_SOURCES + DRIVER_HEADERS + [Path(__file__)]:
		digest.update(path.name.encode() + path.read_bytes())
	return digest.hexdigest()[:16]


def kernelCache() -> Path:
	"""Host builds (hosts/) and pycuda's cubins (pycuda-cache/), keyed by KERNEL_BUILD_INPUTS: a host build made
	with an older shim is never loaded (pycuda would find its cubin cached and not run the nvcc route again)."""
	digest = hashlib.sha256()
	for path in KERNEL_BUILD_INPUTS:
		digest.update(path.name.encode() + path.read_bytes())
	return CACHE / "kernels" / digest.hexdigest()[:16]


def buildDriver(libDir: Path) -> None:
	"""libcuda.so.1: the implemented entry points, and one that fails loudly for each of the others."""
	work = libDir.parent / ("build-%d" % os.getpid())
	shutil.rmtree(work, ignore_errors=True)
	work.mkdir(parents=True)
	include = ["-I", str(stub_pycuda.CUDA_ROOT / "include"), "-I", str(HERE / "driver")]

	objects = []
	for source in DRIVER_SOURCES:
		obj = work / (source.stem + ".o")
		runCompiler(["g++", "-std=c++17", "-O2", "-fPIC", "-Wall", "-c", *include, "-o", str(obj), str(source)])
		objects.append(obj)

	defined = subprocess.run(["nm", "-g", "--defined-only", *map(str, objects)], capture_output=True, text=True, check=True).stdout
	implemented = {line.split()[-1] for line in defined.splitlines() if " T " in line}
	missing = [name for name in stub_pycuda.driverEntryPoints() if name not in implemented]

	generated = work / "unimplemented.c"
	generated.write_text("int cudaEmuUnimplemented(const char *name);\n" + "".join(
		'int %s(void) { return cudaEmuUnimplemented("%s"); }\n' % (name, name) for name in missing))
	obj = work / "unimplemented.o"
	runCompiler(["gcc", "-O2", "-fPIC", "-c", "-o", str(obj), str(generated)])

	library = work / "libcuda.so.1"
	runCompiler(["g++", "-shared", "-Wl,-soname,libcuda.so.1", "-o", str(library), *map(str, objects), str(obj), "-ldl"])
	libDir.mkdir(parents=True, exist_ok=True)
	os.replace(library, libDir / "libcuda.so.1")
	shutil.rmtree(work, ignore_errors=True)
	log("built the emulated driver (%d entry points implemented, %d failing loudly)" % (len(implemented), len(missing)))


def build():
	"""(pycuda's site directory, the emulated driver's directory), building what is missing or out of date."""
	CACHE.mkdir(parents=True, exist_ok=True)
	with open(CACHE / ".lock", "w") as lock:
		fcntl.flock(lock, fcntl.LOCK_EX)
		try:
			site, _ = stub_pycuda.build()
		except stub_pycuda.StubUnavailable as e:
			raise EmulatorUnavailable(str(e)) from e

		libDir = CACHE / "lib" / sourceKey()
		if not (libDir / "libcuda.so.1").is_file():
			buildDriver(libDir)
		(kernelCache() / "hosts").mkdir(parents=True, exist_ok=True)
		(kernelCache() / "pycuda-cache").mkdir(exist_ok=True)
	return site, libDir


def environment(base=None) -> dict:
	"""The environment of a command run on the emulated driver: its libcuda.so.1 first on the loader's path, the
	stub-built pycuda importable, tests/cuda_emu/bin's nvcc first on PATH, pycuda's kernel cache beside the host
	builds (so a cached cubin always has its host build)."""
	site, libDir = build()
	env = dict(os.environ if base is None else base)
	ownBin = str(HERE / "bin")
	searchPath = os.pathsep.join([str(stub_pycuda.CUDA_ROOT / "bin")] + [p for p in env.get("PATH", "").split(os.pathsep) if p != ownBin])
	realNvcc = env.get("CUDA_EMU_REAL_NVCC") or shutil.which("nvcc", path=searchPath)
	if realNvcc is None:
		raise EmulatorUnavailable("no nvcc (the emulator compiles kernels with the real one)")

	env["CUDA_EMU_REAL_NVCC"] = realNvcc
	env["CUDA_EMU_CACHE"] = str(kernelCache())
	env["PYCUDA_CACHE_DIR"] = str(kernelCache() / "pycuda-cache")
	env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(libDir), env.get("LD_LIBRARY_PATH")]))
	if env.get("CUDA_EMU_NO_PYCUDA") != "1":  # =1: the command brings its own pycuda (tests/gpu/device_check.sh)
		env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
	env["PATH"] = os.pathsep.join([ownBin, str(stub_pycuda.CUDA_ROOT / "bin"), env.get("PATH", "")])
	return env


if __name__ == "__main__":
	build()
