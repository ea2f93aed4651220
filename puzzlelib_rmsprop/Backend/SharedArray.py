"""PuzzleLib's SharedArray: many named tensors of one dtype packed into one contiguous buffer."""
from typing import Callable, Dict, Optional, Tuple

import numpy as np


class SharedArray:
	"""Register shapes, ``build()`` once, then ``sh[name]`` is a view of the flat buffer ``sh.ary``."""

	def __init__(self, dtype, empty: Optional[Callable] = None):
		self.dtype = np.dtype(dtype).type
		self._empty = empty  # the allocator; None means the current backend's
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
		self.size += int(np.prod(shape, dtype=np.int64))

	def build(self) -> None:
		"""Allocates the flat buffer (zeroed) and the named views."""
		if self._empty is None:
			from .Selector import getBackend
			self._empty = getBackend().empty

		self.ary = self._empty((self.size, ), dtype=self.dtype)
		self.ary.fill(0)

		for name in self.regs:
			self.blocks[name] = self.view(self.ary, name)

	def view(self, flat, name: str):
		"""The part of ``flat`` (an array laid out like ``ary``) that belongs to ``name``."""
		shape, offset = self.regs[name]
		return flat[offset:offset + int(np.prod(shape, dtype=np.int64))].reshape(shape)

	def __getitem__(self, name: str):
		return self.blocks[name]
