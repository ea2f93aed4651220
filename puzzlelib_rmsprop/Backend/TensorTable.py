"""Multi-tensor tables: the rows one kernel launch updates (kernels/tensor_table.h, as NumPy).

Rows whose three tensors directly follow the previous row's in memory and share its step size are
merged, so a global-state buffer with uniform multipliers is one row however many variables it holds.
The rows are built once and reused; a new learning rate only rewrites their learnRate column.
"""
from typing import Any, Sequence

import numpy as np

#: Must match TensorEntry in kernels/tensor_table.h.
TABLE_DTYPE = np.dtype([
	("param", np.uint64), ("grad", np.uint64), ("ms", np.uint64),
	("size", np.int64), ("learnRate", np.float32), ("blockOffset", np.int32)
])
assert TABLE_DTYPE.itemsize == 40

#: Must match FlavourEntry in kernels/tensor_table.h; a null mg or mom pointer means "not used".
FLAVOUR_DTYPE = np.dtype([
	("param", np.uint64), ("grad", np.uint64), ("ms", np.uint64), ("mg", np.uint64), ("mom", np.uint64),
	("size", np.int64), ("learnRate", np.float32), ("momentum", np.float32)
])
assert FLAVOUR_DTYPE.itemsize == 56

def spreadBlocks(rows: np.ndarray, elementsPerBlock: int, gridSize: int) -> None:
	"""Sets each row's first block so that consecutive small rows land on different blocks of the grid."""
	starts = np.concatenate(([0], np.cumsum(rows["size"])[:-1])).astype(np.int64)
	rows["blockOffset"] = (starts // elementsPerBlock) % max(gridSize, 1)


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
		rows, starts, itemsize = [], [], self.dtype.itemsize

		for i, (p, g, m, n) in enumerate(zip(self.pointers, grads.pointers, mss.pointers, self.sizes)):
			if n == 0:
				continue

			if rows:
				last = rows[-1]
				end = last[3] * itemsize
				if (p, g, m) == (last[0] + end, last[1] + end, last[2] + end) and learnRates[i] == learnRates[starts[-1]]:
					last[3] += n
					continue

			rows.append([p, g, m, n, 0.0, 0])
			starts.append(i)

		table = np.zeros(len(rows), dtype=TABLE_DTYPE)
		for i, row in enumerate(rows):
			table[i] = tuple(row)

		self._rowStarts = np.array(starts, dtype=np.int64)
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
	"""The rows of a flavour launch (one per non-empty tensor, no merging), built once per set of TensorLists and
	reused; new learning rates or momenta rewrite their columns."""

	def __init__(self, backend, params: TensorList, grads: TensorList, ms: TensorList, mg=None, mom=None):
		self._used = np.flatnonzero(np.asarray(params.sizes, dtype=np.int64) > 0)
		rows = np.zeros(len(self._used), dtype=FLAVOUR_DTYPE)
		for field, tensors in (("param", params), ("grad", grads), ("ms", ms), ("mg", mg), ("mom", mom)):
			if tensors is not None:
				rows[field] = np.asarray(tensors.pointers, dtype=np.uint64)[self._used]
		rows["size"] = np.asarray(params.sizes, dtype=np.int64)[self._used]
		self._prepare(backend, rows, params.dtype)

	def _prepare(self, backend, rows: np.ndarray, dtype) -> None:
		"""Hands ``rows`` to the backend; subclasses (Quantized8.Quant8Table) build other rows over the same columns."""
		self.backend, self.table, self._key = backend, backend.prepareTable(rows, dtype), None

	def launchTable(self, learnRates, momenta) -> LaunchTable:
		rates = np.asarray(learnRates, dtype=np.float64)
		moms = np.asarray(momenta, dtype=np.float64)
		key = rates.tobytes() + moms.tobytes()
		if key != self._key:
			self.table.rows["learnRate"] = self._perRow(rates)
			self.table.rows["momentum"] = self._perRow(moms)
			self.backend.refreshTable(self.table)
			self._key = key
		return self.table

	def _perRow(self, values: np.ndarray) -> np.ndarray:
		"""One value per row from a scalar or from one value per tensor (empty tensors have no row)."""
		values = values.astype(np.float32)
		return np.broadcast_to(values.reshape(-1)[:1], (len(self._used), )) if values.size == 1 else values[self._used]
