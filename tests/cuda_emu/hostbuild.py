"""The emulator's nvcc route: after the real nvcc has built a cubin (or PTX), the same source is compiled by the
host compiler (through tests/cuda_on_host/cuda_host_shim.h and driver/kernel_host.h) into a shared library named by
the image's hash, which the emulated driver loads in place of the image; beside it, ``<hash>.regs`` records each
kernel's register count from the cubin's .nv.info (for PTX, from ptxas compiling it for its .target), which the
driver's cuFuncGetAttribute and occupancy calculator answer from. Used by tests/cuda_emu/bin/nvcc."""
import os
import re
import struct
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CUDA_INCLUDE = Path(os.environ.get("CUDA_ROOT", "/usr/local/cuda")) / "include"
SHT_NOBITS = 8
EIATTR_REGCOUNT = 0x2f
EIFMT_SVAL = 4


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


def isPtx(image: bytes) -> bool:
	return image[:4] != b"\x7fELF"


def cubinKey(image: bytes) -> str:
	"""FNV-1a (64 bits) of the cubin's ELF bytes (PTX: its text), as hex: driver/module.cpp's imageHash."""
	h = 0xcbf29ce484222325
	for byte in (image.split(b"\0")[0] if isPtx(image) else image[:elfLength(image)]):
		h = ((h ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
	return "%016x" % h


def sections(image: bytes) -> dict:
	"""A cubin's sections by name: (type, link, info, bytes)."""
	shoff, = struct.unpack_from("<Q", image, 0x28)
	shentsize, shnum, shstrndx = struct.unpack_from("<HHH", image, 0x3a)
	headers = [struct.unpack_from("<IIQQQQII", image, shoff + i * shentsize) for i in range(shnum)]
	names = headers[shstrndx][4]
	name = lambda offset: image[names + offset:image.index(b"\0", names + offset)].decode()
	return {name(h[0]): (h[1], h[6], h[7], image[h[4]:h[4] + h[5]]) for h in headers}


def registerCounts(image: bytes) -> dict:
	"""{kernel: registers} from a cubin's EIATTR_REGCOUNT attributes (.nv.info: symbol index, count), as ptxas -v
	reports them."""
	found = sections(image)
	symtab, strtab = found[".symtab"][3], found[".strtab"][3]
	symbolName = lambda index: strtab[struct.unpack_from("<I", symtab, index * 24)[0]:].split(b"\0")[0].decode()
	info, counts, i = found[".nv.info"][3], {}, 0
	while i + 2 <= len(info):
		form, attribute = info[i], info[i + 1]
		if form == EIFMT_SVAL:
			size, = struct.unpack_from("<H", info, i + 2)
			if attribute == EIATTR_REGCOUNT:
				symbol, count = struct.unpack_from("<II", info, i + 4)
				counts[symbolName(symbol)] = count
			i += 4 + size
		else:  # EIFMT_NVAL (no value) or EIFMT_HVAL (a 16-bit one)
			i += 4 if form == 3 else 2
	return counts


def ptxCubin(ptx: Path, work: Path) -> Path:
	"""The PTX compiled by ptxas for its own .target (what the driver's JIT would do, for the register counts)."""
	target = re.search(r"^\s*\.target\s+(sm_\w+)", ptx.read_text(), re.M)
	if target is None:
		raise ValueError("%s has no .target directive" % ptx)
	ptxas = Path(os.environ.get("CUDA_EMU_REAL_NVCC", "nvcc")).with_name("ptxas")
	cubin = work / "jit.cubin"
	result = subprocess.run([str(ptxas), "-arch", target.group(1), "-o", str(cubin), str(ptx)], capture_output=True, text=True)
	if result.returncode != 0:
		raise RuntimeError("ptxas on %s failed:\n%s" % (ptx, result.stderr[-4000:]))
	return cubin


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


def buildHost(source: Path, image: Path, includeDirs: list, defines: list, hosts: Path) -> Path:
	"""Compiles ``source`` for the host into ``hosts/<image key>.so`` (and its register counts into ``.regs``)
	unless it is there already. ``image``: the cubin or PTX nvcc made of it."""
	key = cubinKey(image.read_bytes())
	target = hosts / (key + ".so")
	if target.is_file():
		return target

	hosts.mkdir(parents=True, exist_ok=True)
	with tempfile.TemporaryDirectory(prefix="hostbuild-", dir=hosts) as work:
		cubin = ptxCubin(image, Path(work)) if isPtx(image.read_bytes()) else image
		registers = Path(work) / "kernels.regs"
		registers.write_text("".join("%s %d\n" % item for item in sorted(registerCounts(cubin.read_bytes()).items())))
		os.replace(registers, hosts / (key + ".regs"))
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
