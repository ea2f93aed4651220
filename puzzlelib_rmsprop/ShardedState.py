"""ZeRO stage 1 over the packed layout: each rank keeps and updates only its pieces of each dtype's flat state.

The grads are reduce-scattered bucket by bucket, each bucket's piece updated as soon as its mean is there, then
the parameters all-gathered. ``save`` gathers the state to rank 0, which writes the file; ``load`` scatters what
a file holds (of either mode, any number of ranks) to each rank's pieces.
"""
from collections import OrderedDict
from typing import Callable, Dict, Optional

import numpy as np

from . import Checkpoint, Quantized8
from .Backend.TensorTable import TensorList
from .Quantized8 import QUANT_BLOCK, QuantizedState
from .StateLayouts import BufferPart as ShardPart, HostState, PackedLayout, VariableGroup
from .Variable import Variable


class ShardedLayout(PackedLayout):
	"""The packed layout with this rank's shard of the state only: ``globalStates[dtype]`` holds its pieces end to
	end, ``states[name]`` is empty, ``shardGroups[dtype]`` has one VariableGroup of ShardParts per bucket."""

	def __init__(self, *args, **kwargs):
		super().__init__(*args, **kwargs)
		self.shardGroups = OrderedDict()
		self._shardGradTables = None

	def setupDtype(self, dtype, members) -> None:
		"""This rank's state (its pieces end to end) and one group of ShardParts per bucket."""
		plan, rank = self.plans[dtype], self.nodeinfo.index
		params, grads = self.globalVar[dtype].data, self.globalVar[dtype].grad
		# setupState sees a variable of the shard's length (views: nothing is allocated for it)
		flatState = self.setupState(Variable(params[:plan.shardLen], name="shard", grad=grads[:plan.shardLen]))
		self.globalStates[dtype] = flatState
		for name, _ in members:
			self.states[name] = {}

		buckets = []
		for a, s, p in plan.pieces(rank):
			names, parts, states = [], [], []
			for name, var, offset, size in self.spans(dtype, members):
				x, y = max(a, offset), min(a + p, offset + size)
				if x < y:
					names.append(name)
					parts.append(ShardPart(var.var, params[x:y], grads[x:y]))
					states.append({key: ary[x - a + s:y - a + s] for key, ary in flatState.items()})
			buckets.append(VariableGroup(names, parts, states, self.watch))
		self.shardGroups[dtype] = buckets

	def prepare(self, backend, skipNonFinite: bool):
		"""Hooks on the full grads, then the reduce-scatter per dtype: lazily (overlapping the updates of ``step``),
		or, with ``skipNonFinite``, every bucket first so that the ranks can vote on the step."""
		info = self.nodeinfo
		for group in self.groups.values():
			group._refresh()  # every variable's multipliers checked on every rank, before anything changes
		for dtype, group in self.groups.items():
			self.runHooks(group, self.globalVar[dtype], self.globalStates[dtype])

		if skipNonFinite:
			for dtype, plan in self.plans.items():
				for _ in info.reduceScatter("grad", self.globalVar[dtype].grad, plan):
					pass
			return {dtype: range(len(plan.buckets)) for dtype, plan in self.plans.items()}
		return {dtype: info.reduceScatter("grad", self.globalVar[dtype].grad, plan) for dtype, plan in self.plans.items()}

	def anyNonFinite(self, backend) -> bool:
		"""One decision for all ranks, over this rank's pieces of every grad buffer."""
		return bool(self.nodeinfo.anyTrue(backend.anyNonFinite(self._shardGradTableList(backend))))

	def step(self, reduced, backend, useStreams: bool, sync: bool) -> None:
		info = self.nodeinfo
		for dtype, buckets in reduced.items():
			for k in buckets:
				self._launch(*self.shardGroups[dtype][k].launch(backend))
				info.allGather("data", self.globalVar[dtype].data, self.plans[dtype], k)
		info.finishGathers()

	def _shardGradTableList(self, backend):
		"""Tables of this rank's pieces of every grad buffer, for the non-finite check."""
		if self._shardGradTables is None:
			self._shardGradTables = []
			for dtype, plan in self.plans.items():
				grads = self.globalVar[dtype].grad
				pieces = TensorList([grads[a:a + p] for a, _, p in plan.pieces(self.nodeinfo.index)], backend.pointerOf)
				if len(pieces):
					self._shardGradTables.append(pieces.launchTable(backend, pieces, pieces, 0.0))
		return self._shardGradTables

	def save(self, hdf, name: str, attrs: Dict, pack: Optional[Callable] = None) -> None:
		"""Every rank calls it: the state is gathered to rank 0, which alone writes ``hdf`` (atomically, for a path);
		every rank returns once the file is written, or raises if rank 0 failed."""
		from .Grid import GridError
		states, failure = self.gatherStates(), None
		if self.nodeinfo.index == 0:
			try:
				Checkpoint.save(hdf, name, attrs, states if pack is None else pack(states))
			except BaseException as e:  # noqa: BLE001 (re-raised below, once the other ranks know)
				failure = e
		if not self.nodeinfo.broadcastValue("the checkpoint's status", int(failure is None)):
			if failure is not None:
				raise failure
			raise GridError("rank %d of %d: rank 0 could not write the checkpoint %s (see its error)" % (
				self.nodeinfo.index, self.nodeinfo.gridsize, getattr(hdf, "filename", hdf)))

	def _fullStates(self, dtype, gathered: np.ndarray, unit: int = 1) -> np.ndarray:
		"""The flat buffer's state from every rank's shard (``gathered``, by rank); ``unit`` elements per value."""
		plan = self.plans[dtype]
		full = np.zeros(plan.padded // unit, dtype=gathered.dtype)
		for rank in range(plan.gridsize):
			for a, s, p in plan.pieces(rank):
				full[a // unit:(a + p) // unit] = gathered[rank, s // unit:(s + p) // unit]
		return full

	def gatherStates(self) -> Optional[Dict]:
		"""Rank 0: every variable's states, by name, from all the ranks' shards (host arrays); others: None."""
		info, states = self.nodeinfo, {}
		for dtype, flatState in self.globalStates.items():
			spans = self.spans(dtype, zip(self.groups[dtype].names, self.groups[dtype].variables))
			for key, ary in flatState.items():
				if isinstance(ary, QuantizedState):  # 8-bit state: its codes and its scales, each gathered
					codes = info.gatherToRoot("state %r" % key, ary.codes.get())
					scales = info.gatherToRoot("state %r" % key, ary.scales.get())
					if codes is None:
						continue
					codes, scales = self._fullStates(dtype, codes), self._fullStates(dtype, scales, QUANT_BLOCK)
					full = QuantizedState(codes, scales, codes.shape, ary.signed)
					for name, var, offset, size in spans:  # variables start on a block: their slices own their scales
						states.setdefault(name, {})[key] = full[offset:offset + size].reshape(var.data.shape)
					continue
				gathered = info.gatherToRoot("state %r" % key, ary.get())
				if gathered is None:
					continue
				full = self._fullStates(dtype, gathered)
				for name, var, offset, size in spans:
					states.setdefault(name, {})[key] = HostState(full[offset:offset + size].reshape(var.data.shape))
		return states if info.index == 0 else None

	def stateTemplates(self) -> Dict:
		"""Each variable's full-size states, for Checkpoint to check a file against."""
		templates = {}
		for dtype, flatState in self.globalStates.items():
			for name, var in zip(self.groups[dtype].names, self.groups[dtype].variables):
				templates[name] = {key: self._template(ary, tuple(var.data.shape)) for key, ary in flatState.items()}
		return templates

	@staticmethod
	def _template(ary, shape):
		if isinstance(ary, QuantizedState):  # 8-bit state: a host QuantizedState of the variable's shape
			return Quantized8.zeros(shape, ary.signed, np)
		return HostState(np.zeros(shape, dtype=ary.dtype))

	def loadStates(self, states: Dict) -> None:
		"""Gives each piece of this rank's shard its part of the states read (the others keep their values)."""
		rank = self.nodeinfo.index
		for dtype, flatState in self.globalStates.items():
			spans = self.spans(dtype, zip(self.groups[dtype].names, self.groups[dtype].variables))
			for key, ary in flatState.items():
				quantized = isinstance(ary, QuantizedState)
				host = ary.get() if not quantized else None
				for name, var, offset, size in spans:
					value = states.get(name, {}).get(key)
					if value is None:
						continue
					for a, s, p in self.plans[dtype].pieces(rank):
						x, y = max(a, offset), min(a + p, offset + size)
						if x >= y:
							continue
						if quantized:
							Quantized8.assign(ary[x - a + s:y - a + s], self._slice(value, x - offset, y - offset))
						else:
							host[x - a + s:y - a + s] = np.asarray(value).reshape(-1)[x - offset:y - offset]
				if not quantized:
					ary.set(host)

	@staticmethod
	def _slice(value, a: int, b: int):
		"""Elements [a, b) of a variable's state read from a file (an ndarray or a host QuantizedState)."""
		if isinstance(value, QuantizedState):
			return value.ravel()[a:b]
		return np.asarray(value).reshape(-1)[a:b]
