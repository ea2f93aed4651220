"""PuzzleLib's SharedArray: many named tensors of one dtype packed into one contiguous buffer."""
from typing import Callable, Dict, Optional, Tuple

import numpy as np

#: every block starts on a 16-byte boundary, as in PuzzleLib's CUDA SharedArray: 128-bit packets, half2 and cuBLAS
#: want it, and a block that starts off it takes the kernels' scalar path
ALIGNMENT = 16


def alignmentStep(dtype, block: int = 1) -> int:
	"""The elements a block starts on a multiple of: 16 bytes of ``dtype`` and ``block`` elements (their lcm)."""
	step = max(1, ALIGNMENT // np.dtype(dtype).itemsize)
	return step * int(block) // int(np.gcd(step, int(block)))


class SharedArray:
	"""Register shapes, ``build()`` once, then ``sh[name]`` is a view of the flat buffer ``sh.ary``."""

	def __init__(self, dtype, zeros: Optional[Callable] = None, block: int = 1):
		self.dtype = np.dtype(dtype).type
		self._zeros = zeros  # the allocator of zeroed arrays; None means the current backend's
		self.block = int(block)  # every tensor also starts on a multiple of this many elements (8-bit state's blocks)
		self.regs: Dict[str, Tuple[tuple, int]] = {}
		self.size = 0
		self.ary = None
		self.blocks = {}

	def register(self, shape, dtype, name: str) -> None:
		"""Reserves room for a tensor of ``shape`` under ``name``."""
		if self.ary is not None:
			raise RuntimeError("SharedArray: register(%r) after build()" % name)
		if np.dtype(dtype) != np.dtype(self.dtype):
			raise TypeError("SharedArray of %s: tensor %r has dtype %s" % (np.dtype(self.dtype), name, np.dtype(dtype)))
		if name in self.regs:
			raise KeyError("SharedArray: %r is already registered" % name)

		shape = tuple(shape)
		self.regs[name] = (shape, self.size)
		self.size = self._aligned(self.size + int(np.prod(shape, dtype=np.int64)))

	def _aligned(self, elements: int) -> int:
		step = alignmentStep(self.dtype, self.block)
		return -(-elements // step) * step

	def build(self) -> None:
		"""Allocates the flat buffer (zeroed, padding included) and the named views."""
		if self._zeros is None:
			from .Selector import getBackend
			self._zeros = getBackend().zeros

		self.ary = self._zeros((self.size, ), dtype=self.dtype)

		for name in self.regs:
			self.blocks[name] = self.view(self.ary, name)

	def view(self, flat, name: str):
		"""The part of ``flat`` (an array laid out like ``ary``) that belongs to ``name``."""
		shape, offset = self.regs[name]
		return flat[offset:offset + int(np.prod(shape, dtype=np.int64))].reshape(shape)

	def __getitem__(self, name: str):
		return self.blocks[name]
