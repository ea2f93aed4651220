"""The emulator's nvcc route: after the real nvcc has built a cubin, the same source is compiled by the host
compiler (through tests/cuda_on_host/cuda_host_shim.h and driver/kernel_host.h) into a shared library named by
the cubin's hash, which the emulated driver loads in place of the cubin. Used by tests/cuda_emu/bin/nvcc."""
import os
import struct
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CUDA_INCLUDE = Path(os.environ.get("CUDA_ROOT", "/usr/local/cuda")) / "include"
SHT_NOBITS = 8


def elfLength(image: bytes) -> int:
	"""A cubin's length from its ELF headers, computed as driver/module.cpp computes it (the driver sees only a
	pointer), so both hash the same bytes."""
	if image[:4] != b"\x7fELF" or image[4] != 2:
		raise ValueError("not a 64-bit ELF cubin")
	phoff, shoff = struct.unpack_from("<QQ", image, 0x20)
	phentsize, phnum, shentsize, shnum = struct.unpack_from("<HHHH", image, 0x36)
	end = max(shoff + shnum * shentsize, phoff + phnum * phentsize)
	for i in range(shnum):
		kind, = struct.unpack_from("<I", image, shoff + i * shentsize + 4)
		offset, size = struct.unpack_from("<QQ", image, shoff + i * shentsize + 0x18)
		if kind != SHT_NOBITS:
			end = max(end, offset + size)
	return end


def cubinKey(image: bytes) -> str:
	"""FNV-1a (64 bits) of the cubin's ELF bytes, as hex: driver/module.cpp's imageHash."""
	h = 0xcbf29ce484222325
	for byte in image[:elfLength(image)]:
		h = ((h ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
	return "%016x" % h


def kernelNames(cubin: Path) -> list:
	"""The kernels a cubin defines (extern "C" ones; mangled C++ names cannot be named from the host build)."""
	listing = subprocess.run(["nm", "-g", "--defined-only", str(cubin)], capture_output=True, text=True, check=True).stdout
	names = [line.split()[-1] for line in listing.splitlines() if len(line.split()) == 3 and line.split()[1] == "T"]
	return [name for name in names if not name.startswith("_Z")]


def launcherSource(source: Path, kernels: list) -> str:
	entries = ", ".join("EMU_KERNEL(%s)" % name for name in kernels)
	table = "static const EmuKernel table[] = {%s};" % entries if kernels else "static const EmuKernel *table = nullptr;"
	return (
		'#include "kernel_host.h"\n'
		'#include "%s"\n'
		'extern "C" const EmuKernel *cudaEmuKernelTable(int *count, int *abi)\n'
		"{\n\t%s\n\t*count = %d;\n\t*abi = EMU_ABI_VERSION;\n\treturn table;\n}\n"
	) % (source.resolve(), table, len(kernels))


def buildHost(source: Path, cubin: Path, includeDirs: list, defines: list, hosts: Path) -> Path:
	"""Compiles ``source`` for the host into ``hosts/<cubin key>.so`` unless it is there already."""
	target = hosts / (cubinKey(cubin.read_bytes()) + ".so")
	if target.is_file():
		return target

	hosts.mkdir(parents=True, exist_ok=True)
	with tempfile.TemporaryDirectory(prefix="hostbuild-", dir=hosts) as work:
		launcher = Path(work) / "launcher.cpp"
		launcher.write_text(launcherSource(source, kernelNames(cubin)))
		library = Path(work) / "kernels.so"
		# the stand-in headers first (pycuda-complex.hpp does not compile with g++); -ffp-contract=off mirrors
		# --fmad=false, so results are bit-exact against a float32 NumPy reference
		includes = [HERE / "include", HERE / "driver", HERE.parent / "cuda_on_host", CUDA_INCLUDE] + list(includeDirs)
		command = ["g++", "-std=c++17", "-O2", "-ffp-contract=off", "-fPIC", "-shared", "-w",
				   *["-I%s" % d for d in includes], *["-D%s" % d for d in defines], "-o", str(library), str(launcher)]
		result = subprocess.run(command, capture_output=True, text=True)
		if result.returncode != 0:
			raise RuntimeError("host build of %s failed:\n%s\n%s" % (source, " ".join(command), result.stderr[-4000:]))
		os.replace(library, target)
	return target
