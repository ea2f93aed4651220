"""Backend/TensorTable.py and Quantized8's table: rows merge where their tensors follow each other in memory with
equal rates, in every kernel family; firstUnit counts the units before each row; a changed rate splits a row and an
equal one joins it again, with the results still those of the reference."""
import numpy as np
import pytest

from conftest import ParamBag, randomGrads, snapshot
from reference import flavourStep
from puzzlelib_rmsprop import RMSProp
from puzzlelib_rmsprop.Backend.CpuBackend import pointerOf
from puzzlelib_rmsprop.Backend.TensorTable import FlavourTable, LaunchTable, TensorList, packetRowUnits
from puzzlelib_rmsprop.Quantized8 import Quant8Table, QuantizedState, blocksOf


class RowsOnly:
	"""A backend for building tables only: the rows stay where NumPy put them."""

	pointerOf = staticmethod(pointerOf)

	def prepareTable(self, rows, dtype):
		return LaunchTable(rows, dtype, rows.__array_interface__["data"][0])

	def refreshTable(self, table):
		pass


def views(buffer, sizes):
	"""Consecutive views of ``buffer``, one per size: tensors that follow each other in memory."""
	ends = np.cumsum(sizes)
	return [buffer[end - n:end] for n, end in zip(sizes, ends)]


def flavourLists(sizes, packed):
	"""param, grad, ms, mg TensorLists over float32 tensors: packed into one buffer each, or each its own array."""
	make = (lambda: views(np.zeros(sum(sizes), np.float32), sizes)) if packed else (lambda: [np.zeros(n, np.float32) for n in sizes])
	return [TensorList(make(), pointerOf) for _ in range(4)]


def test_packed_flavour_tensors_with_equal_rates_are_one_row():
	sizes = [5, 0, 64, 7]
	table = FlavourTable(RowsOnly(), *flavourLists(sizes, packed=True)).launchTable(1e-3, 0.9)
	assert len(table.rows) == 1
	assert table.rows["size"][0] == sum(sizes) and table.rows["firstUnit"][0] == 0


def test_separate_flavour_tensors_are_a_row_each_of_4_elements_a_unit():
	sizes = [5, 64, 7]
	table = FlavourTable(RowsOnly(), *flavourLists(sizes, packed=False)).launchTable(1e-3, 0.9)
	assert list(table.rows["size"]) == sizes
	assert list(table.rows["firstUnit"]) == [0, 2, 18]


def test_a_changed_rate_splits_a_row_and_an_equal_one_joins_it_again():
	sizes = [5, 64, 7, 9]
	table = FlavourTable(RowsOnly(), *flavourLists(sizes, packed=True))
	assert len(table.launchTable([1e-3] * 4, 0.9).rows) == 1

	split = table.launchTable([1e-3, 5e-4, 1e-3, 1e-3], 0.9).rows
	assert list(split["size"]) == [5, 64, 16] and list(split["firstUnit"]) == [0, 2, 18]
	assert list(split["learnRate"]) == [np.float32(1e-3), np.float32(5e-4), np.float32(1e-3)]
	assert len(table.launchTable([1e-3] * 4, [0.9, 0.9, 0.5, 0.5]).rows) == 2  # momenta split rows too
	assert len(table.launchTable([1e-3] * 4, 0.9).rows) == 1


def test_plain_rows_count_their_packets_head_and_tail():
	"""firstUnit of TensorEntry rows: ceil(size / packet width) + 1 units a row (rowUnits in multi_tensor_apply.cuh)."""
	sizes = [1, 4, 5, 1000]
	arrays = [[np.zeros(n, np.float32) for n in sizes] for _ in range(3)]
	lists = [TensorList(a, pointerOf) for a in arrays]
	table = lists[0].launchTable(RowsOnly(), lists[1], lists[2], 1e-3)
	assert list(packetRowUnits(sizes, 4)) == [2, 2, 3, 251]
	assert list(table.rows["firstUnit"]) == [0, 2, 4, 7]
	assert list(packetRowUnits([1, 8, 9], 2)) == [2, 2, 3]  # 16-bit: 8 to a packet


def quant8Lists(sizes):
	"""param, grad, ms TensorLists of 8-bit state packed into one buffer each (codes and scales too)."""
	params = [TensorList(views(np.zeros(sum(sizes), np.float32), sizes), pointerOf) for _ in range(2)]
	codes = views(np.zeros(sum(sizes), np.uint8), sizes)
	scales = views(np.zeros(sum(blocksOf(n) for n in sizes), np.float32), [blocksOf(n) for n in sizes])
	states = [QuantizedState(c, s, c.shape, False) for c, s in zip(codes, scales)]
	return params + [TensorList(states, codesPointer)]


def codesPointer(state) -> int:
	"""A host QuantizedState's address, whatever the process's backend (QuantizedState.ptr asks the backend)."""
	return pointerOf(state.codes)


def hostState(size: int) -> QuantizedState:
	return QuantizedState(np.zeros(size, np.uint8), np.zeros(blocksOf(size), np.float32), (size, ), False)


def test_8_bit_rows_join_only_after_whole_blocks():
	table = Quant8Table(RowsOnly(), *quant8Lists([256, 512, 300, 100, 256])).launchTable(1e-3, 0.0)
	assert list(table.rows["size"]) == [1068, 100, 256]
	assert list(table.rows["blocks"]) == [5, 1, 1]
	assert list(table.rows["firstUnit"]) == [0, 5, 6]


def test_8_bit_rows_of_separate_states_stay_apart():
	sizes = [256, 256]
	params = [TensorList([np.zeros(n, np.float32) for n in sizes], pointerOf) for _ in range(2)]
	states = TensorList([hostState(n) for n in sizes], codesPointer)
	assert len(Quant8Table(RowsOnly(), *params, states).launchTable(1e-3, 0.0).rows) == 2


@pytest.mark.parametrize("stateBits", [None, 8])
def test_regrouped_rows_train_as_the_reference(stateBits):
	"""Global state, centered: a multiplier set on one variable splits the merged row, set back it joins it again;
	every step equal to the NumPy transcription (stateBits=8: equal to the same steps taken with every row apart)."""
	specs = {"a": ((256, ), np.float32), "b": ((512, ), np.float32), "c": ((256, ), np.float32)}
	bag = ParamBag(specs, rng=np.random.default_rng(1))
	opt = RMSProp(learnRate=1e-2, centered=True, stateBits=stateBits)
	opt.setupOn(bag, useGlobalState=True)
	twins = {}
	if stateBits:  # the same steps with every variable in its own state: rows never merge
		twin = ParamBag(specs, rng=np.random.default_rng(1))
		twinOpt = RMSProp(learnRate=1e-2, centered=True, stateBits=stateBits)
		twinOpt.setupOn(twin, useGlobalState=False)
		twins = {"bag": twin, "opt": twinOpt}
	want = {n: (w, np.zeros_like(w), np.zeros_like(w), None) for n, w in snapshot(bag).items()}
	rng = np.random.default_rng(2)

	for multiplier in (1.0, 0.25, 1.0):
		bag.getVar("b").learnRate = multiplier
		if twins:
			twins["bag"].getVar("b").learnRate = multiplier
		grads = randomGrads(bag, rng)
		opt.update()
		if twins:
			for n, g in grads.items():
				twins["bag"].getVar(n).grad.set(g)
			twins["opt"].update()
			for n in specs:
				np.testing.assert_array_equal(bag.getVar(n).data.get(), twins["bag"].getVar(n).data.get(), err_msg=n)
			continue
		for n, (p, ms, mg, mom) in want.items():
			want[n] = flavourStep(p, grads[n], ms, mg, mom, 1e-2 * bag.getVar(n).learnRate, 0.0, 0.9, 1e-5, centered=True)
			np.testing.assert_array_equal(bag.getVar(n).data.get(), want[n][0], err_msg=n)
