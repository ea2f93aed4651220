"""The emulated driver's own calls (cudaEmu* in driver/*.cpp), for tests that run on it through tests/cuda_emu/run:
whether the loaded libcuda is the emulator, its launch log (grid, block, 128-bit packet and scalar iterations, rows read),
deferred mode, block order, live allocations and the last failure's detail."""
import contextlib
import ctypes
from typing import List, NamedTuple, Tuple

BLOCK_ORDERS = {"forward": 0, "reverse": 1, "shuffle": 2}


class Launch(NamedTuple):
	kernel: str
	grid: Tuple[int, int, int]
	block: Tuple[int, int, int]
	packets: int
	scalars: int
	rows: int  # table rows the kernel read, binary-search probes included
	hostSeconds: float  # how long the host build ran the grid (the emulator's own cost, never a GPU figure)


def driver():
	"""The loaded libcuda.so.1 (the process's own, when pycuda has loaded it)."""
	return ctypes.CDLL("libcuda.so.1")


def isEmulated() -> bool:
	try:
		return hasattr(driver(), "cudaEmuLaunchCount")
	except OSError:
		return False


def launches() -> List[Launch]:
	"""Every launch since the last clearLaunches(), in order (deferred ones count their iterations once run)."""
	lib, out = driver(), []
	name, grid, block = ctypes.create_string_buffer(256), (ctypes.c_uint * 3)(), (ctypes.c_uint * 3)()
	counts, seconds = (ctypes.c_ulonglong * 3)(), ctypes.c_double()
	for i in range(lib.cudaEmuLaunchCount()):
		lib.cudaEmuLaunchInfo(i, name, len(name), grid, block, counts, ctypes.byref(seconds))
		out.append(Launch(name.value.decode(), tuple(grid), tuple(block), counts[0], counts[1], counts[2], seconds.value))
	return out


def clearLaunches() -> None:
	driver().cudaEmuClearLaunches()


def launchesOf(prefix: str) -> List[Launch]:
	return [launch for launch in launches() if launch.kernel.startswith(prefix)]


@contextlib.contextmanager
def deferred(on: bool = True):
	"""Inside the block, stream work waits until a synchronizing call needs it (or, with ``on=False``, runs at once)."""
	lib = driver()
	previous = lib.cudaEmuSetDeferred(int(on))
	try:
		yield
	finally:
		lib.cudaEmuSetDeferred(previous)


@contextlib.contextmanager
def blockOrder(name: str, seed: int = 1):
	lib = driver()
	previous = lib.cudaEmuSetBlockOrder(BLOCK_ORDERS[name], ctypes.c_ulonglong(seed))
	try:
		yield
	finally:
		lib.cudaEmuSetBlockOrder(previous, ctypes.c_ulonglong(seed))


def pendingWork() -> int:
	return driver().cudaEmuPendingWork()


def liveAllocations() -> Tuple[int, int]:
	"""(count, bytes) of live device allocations."""
	size = ctypes.c_size_t()
	count = driver().cudaEmuLiveAllocations(ctypes.byref(size))
	return count, size.value


def lastError() -> str:
	lib = driver()
	lib.cudaEmuLastError.restype = ctypes.c_char_p
	return lib.cudaEmuLastError().decode()
