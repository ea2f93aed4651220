"""How many blocks of a kernel fit on one SM: the driver's own answer (cuOccupancyMaxActiveBlocksPerMultiprocessor),
asked through ctypes because pycuda has no wrapper for it; where the driver library cannot be reached that way,
NVIDIA's occupancy calculator on the kernel's registers and the device's per-SM limits."""
import ctypes
import logging
from typing import Optional

logger = logging.getLogger("puzzlelib_rmsprop")

REGISTER_UNIT = 256   # registers are allocated per warp in units of 256
WARP_UNIT = 4         # and warps per SM in units of 4 (every architecture from sm_75)


def driverLibrary() -> Optional[ctypes.CDLL]:
	"""libcuda.so.1, the library pycuda loaded (the process's, or the emulator's), or None."""
	try:
		return ctypes.CDLL("libcuda.so.1")
	except OSError:
		return None


def driverBlocksPerSM(image: bytes, name: str, block: int) -> Optional[int]:
	"""The driver's answer for kernel ``name`` of module ``image`` (cubin or PTX) in the current context, or None."""
	lib = driverLibrary()
	if lib is None:
		return None
	module, function, blocks = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_int()
	if lib.cuModuleLoadData(ctypes.byref(module), ctypes.c_char_p(bytes(image))) != 0:
		return None
	try:
		if lib.cuModuleGetFunction(ctypes.byref(function), module, name.encode()) != 0:
			return None
		if lib.cuOccupancyMaxActiveBlocksPerMultiprocessor(ctypes.byref(blocks), function, block, ctypes.c_size_t(0)) != 0:
			return None
		return blocks.value
	finally:
		lib.cuModuleUnload(module)


def calculatorBlocksPerSM(registers: int, block: int, threadsPerSM: int, blocksPerSM: int, registersPerSM: int) -> int:
	"""NVIDIA's occupancy calculator for a kernel without shared memory."""
	warps = -(-block // 32)
	perWarp = -(-max(registers, 1) * 32 // REGISTER_UNIT) * REGISTER_UNIT
	byRegisters = (registersPerSM // perWarp) // WARP_UNIT * WARP_UNIT // warps
	return min(blocksPerSM, threadsPerSM // 32 // warps, byRegisters)


def blocksPerSM(driver, device, function, image: Optional[bytes], name: str, block: int) -> int:
	"""Resident blocks of ``block`` threads per SM for the kernel (at least 1)."""
	answer = driverBlocksPerSM(image, name, block) if image is not None else None
	if answer is None:
		attribute = driver.device_attribute
		answer = calculatorBlocksPerSM(
			function.get_attribute(driver.function_attribute.NUM_REGS), block,
			device.get_attribute(attribute.MAX_THREADS_PER_MULTIPROCESSOR),
			device.get_attribute(attribute.MAX_BLOCKS_PER_MULTIPROCESSOR),
			device.get_attribute(attribute.MAX_REGISTERS_PER_MULTIPROCESSOR))
		logger.debug("occupancy of %s from the calculator: %d blocks per SM", name, answer)
	return max(1, answer)
