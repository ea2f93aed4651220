"""Multi-tensor tables: the rows one kernel launch updates (kernels/tensor_table.h, as NumPy).

Rows whose tensors directly follow the previous row's in memory and share its step size (and momentum) are
merged, so a global-state buffer with uniform multipliers is one row however many variables it holds, in every
kernel family. The rows are built once and reused; a new learning rate only rewrites their learnRate column.
Each row's firstUnit is the units of the rows before it: CUDA threads find their rows by it
(kernels/multi_tensor_apply.cuh, visitRows).
"""
from typing import Any, Sequence

import numpy as np

#: Must match TensorEntry in kernels/tensor_table.h.
TABLE_DTYPE = np.dtype([
	("param", np.uint64), ("grad", np.uint64), ("ms", np.uint64),
	("size", np.int64), ("firstUnit", np.int64), ("learnRate", np.float32), ("unused", np.int32)
])
assert TABLE_DTYPE.itemsize == 48

#: Must match FlavourEntry in kernels/tensor_table.h; a null mg or mom pointer means "not used".
FLAVOUR_DTYPE = np.dtype([
	("param", np.uint64), ("grad", np.uint64), ("ms", np.uint64), ("mg", np.uint64), ("mom", np.uint64),
	("size", np.int64), ("firstUnit", np.int64), ("learnRate", np.float32), ("momentum", np.float32)
])
assert FLAVOUR_DTYPE.itemsize == 64

#: bytes of the CUDA kernels' packets (multi_tensor_apply.cuh)
PACKET_BYTES = 16
#: elements a unit of the CUDA flavour kernels takes (FLAVOUR_SPAN in kernels/rmsprop.cu)
FLAVOUR_SPAN = 4


def packetRowUnits(sizes: np.ndarray, itemsize: int) -> np.ndarray:
	"""A TensorEntry row's units (rowUnits in kernels/multi_tensor_apply.cuh): its packets rounded up, plus one."""
	width = PACKET_BYTES // itemsize
	return (np.asarray(sizes, dtype=np.int64) + width - 1) // width + 1


def firstUnits(units: np.ndarray) -> np.ndarray:
	"""Each row's firstUnit: the units of the rows before it."""
	units = np.asarray(units, dtype=np.int64)
	return np.cumsum(units, dtype=np.int64) - units


def runSums(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
	"""The sums of ``values`` over each run that begins at one of ``starts`` (empty for no runs)."""
	return np.add.reduceat(values, starts) if len(starts) else np.zeros(0, dtype=values.dtype)


def followsPrevious(pointers: Sequence[np.ndarray], extents: Sequence[np.ndarray]) -> np.ndarray:
	"""Per tensor, whether each of its pointers is the previous tensor's plus that tensor's extent in bytes (a null
	pointer with extent 0 follows a null one). The first tensor follows nothing."""
	follows = np.zeros(len(pointers[0]), dtype=bool)
	follows[1:] = True
	for pointer, extent in zip(pointers, extents):
		pointer, extent = np.asarray(pointer, dtype=np.uint64), np.asarray(extent, dtype=np.uint64)
		follows[1:] &= pointer[1:] == pointer[:-1] + extent[:-1]
	return follows


def rowStarts(follows: np.ndarray, values: Sequence[np.ndarray]) -> np.ndarray:
	"""The tensors that begin a row: every tensor that does not follow the previous one in memory or differs from it
	in one of ``values`` (float32 step sizes, momenta)."""
	starts = ~follows
	for value in values:
		starts[1:] |= value[1:] != value[:-1]
	starts[:1] = True
	return np.flatnonzero(starts)


class LaunchTable:
	"""Rows ready for a launch: ``address`` is where the kernel reads them (host or device memory);
	``keepAlive`` holds that memory; ``grid`` is the CUDA grid size (1 on the CPU)."""

	def __init__(self, rows: np.ndarray, dtype, address: int, keepAlive: Any = None, grid: int = 1, code: int = 0):
		self.rows, self.dtype, self.address, self.keepAlive, self.grid = rows, np.dtype(dtype), address, keepAlive, grid
		self.code = code  # the backend's dtype code, looked up once


class TensorList:
	"""Same-dtype tensors that one kernel launch updates together (apex's tensor lists).

	Built once per group of variables; ``launchTable`` pairs it with the grads' and states' lists."""

	def __init__(self, arrays: Sequence, pointerOf):
		self.arrays = list(arrays)
		self.dtype = np.dtype(self.arrays[0].dtype) if self.arrays else np.dtype(np.float32)
		self.pointers = [pointerOf(ary) for ary in self.arrays]
		self.sizes = [int(ary.size) for ary in self.arrays]
		self._table, self._rowStarts, self._sameAsPrevious, self._key = None, None, None, None
		self._scalar = None  # the float rate the table holds, when it was given one
		self.flavourTable = None  # set by Kernels.flavourUpdate: the flavour rows over these tensors
		self.quant8Table = None   # set by Kernels.quant8Update: the 8-bit state rows (Quantized8.Quant8Table)

	def __len__(self) -> int:
		return len(self.arrays)

	def _rows(self, grads: "TensorList", mss: "TensorList", learnRates: np.ndarray) -> np.ndarray:
		"""The rows, merged where contiguous with an equal step; records each row's first tensor index."""
		used = np.flatnonzero(np.asarray(self.sizes, dtype=np.int64) > 0)
		sizes = np.asarray(self.sizes, dtype=np.int64)[used]
		pointers = [np.asarray(t.pointers, dtype=np.uint64)[used] for t in (self, grads, mss)]
		extents = [sizes * self.dtype.itemsize] * 3
		starts = rowStarts(followsPrevious(pointers, extents), [np.asarray(learnRates)[used]])

		table = np.zeros(len(starts), dtype=TABLE_DTYPE)
		for field, pointer in zip(("param", "grad", "ms"), pointers):
			table[field] = pointer[starts]
		table["size"] = runSums(sizes, starts)
		table["firstUnit"] = firstUnits(packetRowUnits(table["size"], self.dtype.itemsize))
		self._rowStarts = used[starts]
		return table

	def launchTable(self, backend, grads: "TensorList", mss: "TensorList", learnRates) -> LaunchTable:
		"""The launch table for these tensors with per-tensor step sizes ``learnRates`` (scalar or one per tensor,
		rounded to float32 as PuzzleLib passes them). An unchanged float rate costs one comparison (the hot path: no
		NumPy work, nothing allocated); unchanged per-tensor rates one bytes comparison."""
		if learnRates.__class__ is float and learnRates == self._scalar:
			return self._table
		rates = np.asarray(learnRates, dtype=np.float64)
		key = rates.tobytes()
		if key == self._key:
			return self._table

		rates32 = np.broadcast_to(rates.astype(np.float32), (len(self), ))
		same = rates32[1:] == rates32[:-1]

		if self._table is None or not np.array_equal(same, self._sameAsPrevious):
			rows = self._rows(grads, mss, rates32)
			rows["learnRate"] = rates32[self._rowStarts]
			self._table, self._sameAsPrevious = backend.prepareTable(rows, self.dtype), same
		else:
			# a new learning rate (a schedule) with the same grouping: rewrite the column in place
			self._table.rows["learnRate"] = rates32[self._rowStarts]
			backend.refreshTable(self._table)

		self._key = key
		self._scalar = learnRates if learnRates.__class__ is float else None
		return self._table


class FlavourTable:
	"""The rows of a flavour launch, one per run of tensors that follow each other in memory in every column and share
	their step size and momentum (global state: usually one row), one unit per FLAVOUR_SPAN elements. Built once per
	set of TensorLists; new learning rates or momenta rewrite their columns, or regroup the rows where they split or
	join a run. Subclasses (Quantized8.Quant8Table) have other columns and units."""

	DTYPE = FLAVOUR_DTYPE

	def __init__(self, backend, params: TensorList, grads: TensorList, ms: TensorList, mg=None, mom=None):
		self._used = np.flatnonzero(np.asarray(params.sizes, dtype=np.int64) > 0)
		self._sizes = np.asarray(params.sizes, dtype=np.int64)[self._used]
		self._columns = np.zeros(len(self._used), dtype=self.DTYPE)
		self._follows = followsPrevious(*self._fillColumns(backend, params, grads, ms, mg, mom))
		self.backend, self.dtype, self.table, self._key, self._starts = backend, params.dtype, None, None, None

	def _fillColumns(self, backend, params, grads, ms, mg, mom):
		"""Fills the pointer columns of ``self._columns``; returns their pointers and the tensors' extents in bytes."""
		pointers, extents = [], []
		for field, tensors in (("param", params), ("grad", grads), ("ms", ms), ("mg", mg), ("mom", mom)):
			if tensors is not None:
				self._columns[field] = np.asarray(tensors.pointers, dtype=np.uint64)[self._used]
				pointers.append(self._columns[field])
				extents.append(self._sizes * tensors.dtype.itemsize)
		return pointers, extents

	def _rows(self, starts: np.ndarray) -> np.ndarray:
		"""The merged rows beginning at tensors ``starts``, without their learnRate and momentum."""
		rows = self._columns[starts]
		rows["size"] = runSums(self._sizes, starts)
		rows["firstUnit"] = firstUnits(self._units(rows))
		return rows

	def _units(self, rows: np.ndarray) -> np.ndarray:
		"""Each row's units: FLAVOUR_SPAN elements a unit."""
		return -(-rows["size"] // FLAVOUR_SPAN)

	def launchTable(self, learnRates, momenta) -> LaunchTable:
		rates = np.asarray(learnRates, dtype=np.float64)
		moms = np.asarray(momenta, dtype=np.float64)
		key = rates.tobytes() + moms.tobytes()
		if key != self._key:
			rates32, moms32 = self._perTensor(rates), self._perTensor(moms)
			starts = rowStarts(self._follows, [rates32, moms32])
			if self.table is None or not np.array_equal(starts, self._starts):
				rows = self._rows(starts)
				rows["learnRate"], rows["momentum"] = rates32[starts], moms32[starts]
				self.table, self._starts = self.backend.prepareTable(rows, self.dtype), starts
			else:
				self.table.rows["learnRate"], self.table.rows["momentum"] = rates32[starts], moms32[starts]
				self.backend.refreshTable(self.table)
			self._key = key
		return self.table

	def _perTensor(self, values: np.ndarray) -> np.ndarray:
		"""One float32 value per non-empty tensor from a scalar or from one value per tensor."""
		values = values.astype(np.float32)
		return np.broadcast_to(values.reshape(-1)[:1], (len(self._used), )) if values.size == 1 else values[self._used]
