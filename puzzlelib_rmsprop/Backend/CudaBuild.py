"""What the CUDA backend compiles for the device that is there, and the compiled-kernel cache.

SASS (a cubin) for the device's own architecture where nvcc targets it; where the device is newer than nvcc, PTX
for the newest architecture nvcc has, which the driver compiles when it loads it; otherwise a BackendError that
says what to do. Compiled images are cached by a key of the kernel sources, the options, the target and nvcc's
version, each written to a temporary file and renamed, so processes starting together (MPI ranks) never read a
half-written one (pycuda's own cache writes in place).
"""
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import List, NamedTuple, Optional

from ..Errors import BackendError
from .kernelSource import kernelDir

NVCC_ENV_HINT = "install a CUDA toolkit whose nvcc supports this GPU (see docs/gpu-support.md), or use the CPU backend (PUZZLELIB_RMSPROP_BACKEND=cpu)"


class UnusableDevice(BackendError):
	"""There is a CUDA device, but the backend cannot compile its kernels for it (automatic selection warns)."""


class Nvcc(NamedTuple):
	path: str
	version: str            #: e.g. "13.0"
	sass: List[int]         #: architectures it emits SASS for, e.g. [75, 80, ...] (sm_XY as XY)
	ptx: List[int]          #: virtual architectures it emits PTX for (compute_XY)


class Target(NamedTuple):
	kind: str               #: "cubin" or "ptx"
	arch: str               #: nvcc's -arch: "sm_90" or "compute_121"


def architectures(listing: str, prefix: str) -> List[int]:
	"""[75, 80, ...] from nvcc's --list-gpu-code / --list-gpu-arch output (arch-specific 'a'/'f' variants left out)."""
	return sorted({int(m) for m in re.findall(r"\b%s_(\d+)\b" % prefix, listing)})


@lru_cache(maxsize=None)
def findNvcc(path: Optional[str] = None) -> Nvcc:
	"""nvcc on PATH (as pycuda runs it): its version and architectures, or a BackendError."""
	path = path or shutil.which("nvcc")
	if path is None:
		raise BackendError("nvcc is not on PATH (the CUDA backend compiles its kernels with it)")

	def ask(flag):
		result = subprocess.run([path, flag], capture_output=True, text=True)
		if result.returncode != 0:
			raise BackendError("%s %s failed: %s" % (path, flag, result.stderr.strip()[-500:]))
		return result.stdout

	version = re.search(r"release (\d+\.\d+)", ask("--version"))
	return Nvcc(path, version.group(1) if version else "unknown", architectures(ask("--list-gpu-code"), "sm"),
				architectures(ask("--list-gpu-arch"), "compute"))


def chooseTarget(capability, nvcc: Nvcc, device: str) -> Target:
	"""The image to build for a device of ``capability`` (major, minor): SASS for it where nvcc has it (or for an
	older minor of the same major, which runs on it); else PTX for the newest architecture nvcc has that is not
	newer than the device (the driver compiles PTX for any newer GPU); else (the device is older than every
	architecture nvcc has) UnusableDevice naming the device, its capability, nvcc's version and what to do."""
	cc = capability[0] * 10 + capability[1]
	sameMajor = [a for a in nvcc.sass if a // 10 == capability[0] and a <= cc]
	if sameMajor:
		return Target("cubin", "sm_%d" % max(sameMajor))
	older = [a for a in nvcc.ptx if a <= cc]
	if older:
		return Target("ptx", "compute_%d" % max(older))
	supported = "sm_%d to sm_%d" % (min(nvcc.sass), max(nvcc.sass)) if nvcc.sass else "no architecture"
	raise UnusableDevice("%s has compute capability %d.%d, which nvcc %s (%s) cannot compile for (it supports %s): %s" % (
		device, capability[0], capability[1], nvcc.version, nvcc.path, supported, NVCC_ENV_HINT))


def cacheDir() -> Path:
	"""Beside pycuda's compiler cache (PYCUDA_CACHE_DIR, else pycuda's default), in a folder of our own."""
	base = os.environ.get("PYCUDA_CACHE_DIR")
	if base is None:
		import platformdirs
		base = platformdirs.user_cache_dir("pycuda", "pycuda")
	return Path(base) / "puzzlelib_rmsprop"


def cacheKey(source: str, options: List[str], target: Target, nvcc: Nvcc) -> str:
	digest = hashlib.sha256()
	for path in sorted(kernelDir().iterdir()):
		if path.is_file():
			digest.update(path.name.encode() + b"\0" + path.read_bytes())
	digest.update(repr((source, options, target, nvcc.version)).encode())
	return digest.hexdigest()[:32]


def buildImage(source: str, options: List[str], target: Target, nvcc: Nvcc) -> bytes:
	"""The cubin or PTX of ``source``, from the cache or compiled (then cached atomically)."""
	from pycuda import compiler

	path = cacheDir() / ("%s.%s" % (cacheKey(source, options, target, nvcc), target.kind))
	if path.is_file():
		return path.read_bytes()

	try:
		image = compiler.compile(source, nvcc=nvcc.path, options=list(options), no_extern_c=True, arch=target.arch,
								 include_dirs=[str(kernelDir())], target=target.kind, cache_dir=False)
	except compiler.CompileError as e:
		raise BackendError("nvcc %s could not compile the kernels for %s: %s" % (nvcc.version, target.arch, e)) from e

	path.parent.mkdir(parents=True, exist_ok=True)
	with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name + ".", suffix=".tmp", delete=False) as f:
		f.write(image)
	os.replace(f.name, path)
	return image


def deviceImage(capability, where: str, source: str, options: List[str]):
	"""(Target, Nvcc, image) of ``source`` for the device ``where`` of ``capability``; UnusableDevice where no nvcc
	is found or it cannot target the device (chooseTarget)."""
	try:
		nvcc = findNvcc()
	except BackendError as e:
		raise UnusableDevice("%s has compute capability %d.%d, but %s: %s" % (where, capability[0], capability[1], e,
																		   NVCC_ENV_HINT)) from e
	target = chooseTarget(capability, nvcc, where)
	return target, nvcc, buildImage(source, options, target, nvcc)
