"""8-bit blockwise optimizer state (``stateBits=8``): 8-bit codes, one per element, and one float32 scale per block
of ``QUANT_BLOCK`` elements; the codes are small floats (kernels/quantize8.h): unsigned E5M3 for ms, signed E4M3
(OCP's float8_e4m3fn, saturating) for mg and mom.

A ``QuantizedState`` stands where a state array stands (``optimizer.states[name]["ms"]``): ``get()`` decodes it,
``set()`` encodes, slices and ``reshape`` give views as arrays do (a slice must start on a block), ``nbytes`` counts
codes and scales. The kernels update it in place; encoding and decoding here run the same header through the
CPU extension, on host copies.
"""
from typing import Optional, Tuple, Union

import numpy as np

from .Backend.HostArray import hostArray  # noqa: F401 (Checkpoint takes it from here)
from .Backend.TensorTable import FlavourTable, TensorList

QUANT_BLOCK = 256  # QUANT8_BLOCK in kernels/quantize8.h
#: the ``quant8`` attribute a checkpoint gives a dataset of codes: the code of unsigned (ms) and signed states
FORMATS = {False: "ue5m3", True: "e4m3"}


def blocksOf(size: int) -> int:
	return -(-int(size) // QUANT_BLOCK)


def _kernels():
	from .Backend import _cpukernels
	return _cpukernels


def _address(ary: np.ndarray) -> int:
	return ary.__array_interface__["data"][0]


def encode(values, signed: bool) -> Tuple[np.ndarray, np.ndarray]:
	"""(codes, scales) of ``values`` (any float dtype, flattened, computed in float32)."""
	values = np.ascontiguousarray(np.asarray(values, dtype=np.float32).reshape(-1))
	codes, scales = np.empty(values.size, np.uint8), np.empty(blocksOf(values.size), np.float32)
	if values.size > 0:
		_kernels().quantize(_address(values), values.size, _address(codes), _address(scales), bool(signed))
	return codes, scales


def decode(codes: np.ndarray, scales: np.ndarray, signed: bool) -> np.ndarray:
	"""The float32 values of ``codes`` (flat) in blocks of scales ``scales``."""
	codes = np.ascontiguousarray(codes, dtype=np.uint8).reshape(-1)
	scales = np.ascontiguousarray(scales, dtype=np.float32).reshape(-1)
	if scales.size != blocksOf(codes.size):
		raise ValueError("%d codes need %d scales, got %d" % (codes.size, blocksOf(codes.size), scales.size))
	values = np.empty(codes.size, np.float32)
	if codes.size > 0:
		_kernels().dequantize(_address(codes), codes.size, _address(scales), _address(values), bool(signed))
	return values


class QuantizedState:
	"""One 8-bit state tensor: ``codes`` (uint8, one per element) and ``scales`` (float32, one per block), both
	backend arrays (or NumPy arrays, for a host copy read from a checkpoint)."""

	dtype = np.dtype(np.uint8)  # what the memory holds; get() returns float32

	def __init__(self, codes, scales, shape, signed: bool):
		self.codes, self.scales, self.shape, self.signed = codes, scales, tuple(int(n) for n in shape), bool(signed)
		if int(np.prod(self.shape, dtype=np.int64)) != codes.size or scales.size != blocksOf(codes.size):
			raise ValueError("QuantizedState: %d codes and %d scales for shape %s" % (codes.size, scales.size, self.shape))

	@property
	def size(self) -> int:
		return int(self.codes.size)

	@property
	def nbytes(self) -> int:
		"""Bytes held: the codes and the scales."""
		return int(self.codes.nbytes + self.scales.nbytes)

	@property
	def ptr(self) -> int:
		"""The address of the codes (what a tensor table's state column gets)."""
		from .Backend import getBackend
		return getBackend().pointerOf(self.codes) if self.size > 0 else 0

	@property
	def format(self) -> str:
		return FORMATS[self.signed]

	def get(self) -> np.ndarray:
		"""The decoded values, float32, in ``shape``."""
		return decode(hostArray(self.codes), hostArray(self.scales), self.signed).reshape(self.shape)

	def set(self, value: Union["QuantizedState", np.ndarray]) -> None:
		"""Copies another QuantizedState's codes and scales (decoded and re-encoded if its code differs), or encodes
		an array of values of the same size."""
		if isinstance(value, QuantizedState):
			if value.size != self.size:
				raise ValueError("set: %d codes for a state of %d" % (value.size, self.size))
			if value.signed == self.signed:
				self.codes.set(hostArray(value.codes).reshape(-1))
				self.scales.set(hostArray(value.scales).reshape(-1))
				return
			value = value.get()

		value = np.asarray(value)
		if value.size != self.size:
			raise ValueError("set: %d values for a state of %d" % (value.size, self.size))
		codes, scales = encode(value, self.signed)
		self.codes.set(codes)
		self.scales.set(scales)

	def __getitem__(self, key: slice) -> "QuantizedState":
		"""A view of a flat state: ``state[a:b]`` with ``a`` on a block boundary (its blocks are its own)."""
		if len(self.shape) != 1 or not isinstance(key, slice) or key.step not in (None, 1):
			raise TypeError("QuantizedState: only flat states can be sliced, by a contiguous slice")
		start, stop, _ = key.indices(self.size)
		stop = max(start, stop)
		if start % QUANT_BLOCK != 0:
			raise ValueError("QuantizedState: a slice must start on a block of %d, not at %d" % (QUANT_BLOCK, start))
		return QuantizedState(self.codes[start:stop], self.scales[start // QUANT_BLOCK:blocksOf(stop)], (stop - start, ), self.signed)

	def reshape(self, *shape) -> "QuantizedState":
		shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
		return QuantizedState(self.codes.reshape(-1), self.scales, shape, self.signed)

	def ravel(self) -> "QuantizedState":
		return self.reshape(self.size)

	def __repr__(self) -> str:
		return "QuantizedState(%s, %s, %d bytes)" % (self.shape, self.format, self.nbytes)


def zeros(shape, signed: bool, gpuarray=None) -> QuantizedState:
	"""A state of zeros: codes 0 decode to 0 whatever the scale."""
	if gpuarray is None:
		from .Backend import gpuarray
	size = int(np.prod(tuple(shape), dtype=np.int64))
	return QuantizedState(gpuarray.zeros((size, ), dtype=np.uint8), gpuarray.zeros((blocksOf(size), ), dtype=np.float32),
						  shape, signed)


def stateZeros(shape, dtype, stateBits: Optional[int], signed: bool):
	"""A zeroed state tensor: a backend array of ``dtype``, or with stateBits=8 a QuantizedState (ms unsigned,
	the others signed)."""
	from .Backend import gpuarray
	if stateBits == 8:
		return zeros(shape, signed, gpuarray)
	return gpuarray.zeros(shape, dtype=dtype)


def assign(target, value) -> None:
	"""Copies ``value`` (an array of values or a QuantizedState) into ``target`` (a state array or a QuantizedState),
	encoding or decoding as needed; a full-width target gets the decoded values rounded to its dtype."""
	if isinstance(target, QuantizedState):
		target.set(value)
		return
	if isinstance(value, QuantizedState):
		value = value.get()
	target.set(np.asarray(value).astype(target.dtype).reshape(target.shape))


#: Must match Quant8Entry in kernels/tensor_table.h: codes and scales of ms, mg, mom (null: not used).
QUANT8_DTYPE = np.dtype([
	("param", np.uint64), ("grad", np.uint64), ("codes", np.uint64, 3), ("scales", np.uint64, 3),
	("size", np.int64), ("blocks", np.int64), ("firstUnit", np.int64), ("learnRate", np.float32), ("momentum", np.float32)
])
assert QUANT8_DTYPE.itemsize == 96


class Quant8Table(FlavourTable):
	"""The rows of an 8-bit state launch: the states are TensorLists of QuantizedStates, whose codes and scales each
	get a pointer column; one unit per block of QUANT_BLOCK elements. Tensors merge into one row as in FlavourTable,
	and only after a tensor of whole blocks (a row's every block but its last is whole)."""

	DTYPE = QUANT8_DTYPE

	def __init__(self, backend, params: TensorList, grads: TensorList, ms: TensorList, mg=None, mom=None):
		super().__init__(backend, params, grads, ms, mg, mom)
		self._follows[1:] &= self._sizes[:-1] % QUANT_BLOCK == 0

	def _fillColumns(self, backend, params, grads, ms, mg, mom):
		"""The parameters' and grads' columns as FlavourTable's, then each state's codes and scales."""
		blocks = np.array([blocksOf(n) for n in self._sizes], dtype=np.int64)
		pointers, extents = super()._fillColumns(backend, params, grads, None, None, None)
		for k, states in enumerate((ms, mg, mom)):
			if states is not None:
				used = [states.arrays[i] for i in self._used]
				self._columns["codes"][:, k] = [backend.pointerOf(state.codes) for state in used]
				self._columns["scales"][:, k] = [backend.pointerOf(state.scales) for state in used]
				pointers += [self._columns["codes"][:, k], self._columns["scales"][:, k]]
				extents += [self._sizes, blocks * 4]
		return pointers, extents

	def _units(self, rows: np.ndarray) -> np.ndarray:
		"""Fills each row's blocks, its units."""
		rows["blocks"] = [blocksOf(n) for n in rows["size"]]
		return rows["blocks"]
