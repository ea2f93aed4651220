"""PuzzleLib's Optimizer base class, with one fused launch per dtype per step in both state modes.

A subclass overrides only ``setupState(var)`` and ``updateVar(var, state, stream=None)``. Unlike PuzzleLib:
- per-variable ``learnRate`` multipliers (0 freezes), ``wc`` and hooks keep working in global state;
- states are keyed by parameter name in both modes (global-state states are views of one buffer), so a
  checkpoint saved in one mode loads in the other;
- local state also updates all variables of a dtype in one multi-tensor launch (``useStreams=True`` keeps
  PuzzleLib's per-variable launches on streams);
- with ``shardState`` (and our MPINodeInfo) each rank keeps and updates only its shard of the state (ZeRO stage 1).
"""
import logging
from collections import OrderedDict
from operator import attrgetter
from typing import Callable, Dict, List, Optional

import numpy as np

from . import Checkpoint
from .Backend import getBackend
from .Backend.PuzzleLibArrays import isContiguous
from .Backend.SharedArray import SharedArray
from . import Quantized8
from .Quantized8 import QUANT_BLOCK, QuantizedState
from .Backend.TensorTable import TensorList
from .PuzzleLibCheckpoint import GlobalLayout
from .Errors import OptimizerError, OptimizerTypeError
from .Validation import Flag, Option, Range, StateBits, checkMultiplier
from .Variable import Variable

logger = logging.getLogger("puzzlelib_rmsprop")
_learnRate, _momRate = attrgetter("learnRate"), attrgetter("momRate")


class MultiVariable:
	"""Several variables of one dtype presented to ``updateVar`` as one: ``data`` and ``grad`` are TensorLists
	and ``learnRate`` holds each variable's multiplier, so ``optimizer.learnRate * var.learnRate`` still works."""

	def __init__(self, data: TensorList, grad: TensorList, learnRate: np.ndarray, momRate: np.ndarray):
		self.data, self.grad, self.learnRate, self.momRate = data, grad, learnRate, momRate


class VariableGroup:
	"""The variables of one dtype that one launch updates, with their states. The variables are the ones the
	module had at setupOn (and PuzzleLib's load() writes into them in place)."""

	def __init__(self, names: List[str], variables: List, states: List[Dict]):
		self.names, self.variables, self.states = names, variables, states
		self._multipliers, self._momRates, self._active = None, None, None
		self._launch, self._single, self._gradList = None, None, None

	def _batch(self, backend, indices: List[int]):
		"""(MultiVariable, state of TensorLists) over the variables at ``indices``."""
		pick = lambda arrays: TensorList([arrays[i] for i in indices], backend.pointerOf)
		var = MultiVariable(pick([v.data for v in self.variables]), pick([v.grad for v in self.variables]),
							np.array([self._multipliers[i] for i in indices], dtype=np.float64),
							np.array([self._momRates[i] for i in indices], dtype=np.float64))
		return var, {key: pick([s[key] for s in self.states]) for key in (self.states[0] if self.states else {})}

	def _refresh(self) -> None:
		"""Re-reads the learnRate and momRate multipliers; a change (or the first call) invalidates the batches.
		Raises OptimizerError on a non-finite multiplier, before anything is launched."""
		multipliers, momRates = list(map(_learnRate, self.variables)), list(map(_momRate, self.variables))
		if multipliers != self._multipliers or momRates != self._momRates:
			for name, m, r in zip(self.names, multipliers, momRates):
				checkMultiplier(name, m, "learnRate")
				checkMultiplier(name, r, "momRate")
			self._multipliers, self._momRates, self._launch, self._single = multipliers, momRates, None, None
			self._active = [i for i, m in enumerate(multipliers) if m > 0.0]  # PuzzleLib skips the rest entirely

	def launch(self, backend):
		"""The one batch of all variables whose multiplier is > 0."""
		self._refresh()
		if self._launch is None:
			self._launch = self._batch(backend, self._active)
		return self._launch

	def singles(self, backend):
		"""One batch per variable whose multiplier is > 0 (the per-stream path); cached like ``launch``."""
		self._refresh()
		if self._single is None:
			self._single = [self._batch(backend, [i]) for i in self._active]
		return self._single

	def gradTable(self, backend):
		"""A table of every variable's grad (all of them, frozen included), for the non-finite check."""
		if self._gradList is None:
			self._gradList = TensorList([var.grad for var in self.variables], backend.pointerOf)
		return self._gradList.launchTable(backend, self._gradList, self._gradList, 0.0)


class ShardPart:
	"""The part of a variable inside one piece of this rank's shard: views of its data and grad, its multipliers
	read through from the variable (so a changed ``learnRate`` takes effect as for the whole variable)."""

	def __init__(self, var, data, grad):
		self.var, self.data, self.grad = var, data, grad

	@property
	def learnRate(self) -> float:
		return self.var.learnRate

	@property
	def momRate(self) -> float:
		return self.var.momRate


class _HostState:
	"""A host array as Checkpoint reads and writes states: ``get()``, ``shape``, ``dtype``."""

	def __init__(self, ary: np.ndarray):
		self.ary, self.shape, self.dtype = ary, ary.shape, ary.dtype

	def get(self) -> np.ndarray:
		return self.ary


class Optimizer:
	"""Base class: set up on a module, then ``zeroGradParams()``, ``net.backward(grad)``, ``update()`` each step.

	``skipNonFinite=True`` skips a step whose gradients hold inf or NaN (params and states untouched, ``t``
	unchanged) and counts it in ``skippedSteps``; the default keeps PuzzleLib's behaviour (no check).

	``shardState=True`` (with ``nodeinfo=MPINodeInfo(...)`` and global state): each rank keeps the state of its
	pieces of each dtype's flat buffer only (``globalStates[dtype]``, the pieces end to end; ``states[name]`` is
	then empty) and updates only those pieces, between the reduce-scatter of the grads and the all-gather of the
	parameters, bucket by bucket. ``save`` gathers the state to rank 0, which writes the file; ``load`` reads it on
	any number of ranks, in either mode. Outside this rank's pieces the grad buffer keeps this rank's own grads
	after ``update`` (only the owned pieces are averaged)."""

	#: hyperparameter -> allowed range, checked on every assignment (subclasses extend it)
	attrRules: Dict[str, Range] = {"t": Range(0, integer=True), "learnRate": Range(0)}
	#: option -> its rule, checked on every assignment, the constructor's included (subclasses extend it)
	optionRules: Dict[str, Option] = {"skipNonFinite": Option(Flag()), "shardState": Option(Flag(), fixed=True),
									  "stateBits": Option(StateBits(), fixed=True)}
	#: states a checkpoint may lack (saved before the option that needs them existed): they keep their start values
	optionalStates = frozenset()

	#: elements a block of the optimizer state spans (256 for 8-bit state, whose blocks share one scale); in global
	#: state every variable, and every shard of sharded state, starts on a multiple of it
	stateBlock = 1

	def __init__(self, nodeinfo=None, *, skipNonFinite: bool = False, shardState: bool = False):
		self.t = 0
		self.learnRate = 0.0
		self.skipNonFinite = skipNonFinite
		self.skippedSteps = 0

		self.attrs = {"t", "learnRate"}

		self.module = None
		self.states: Dict[str, Dict] = {}
		self.hooks: List[Callable] = []

		self.shParams, self.shGrads = {}, {}

		self.globalState = False
		self.globalVar = OrderedDict()
		self.globalStates = OrderedDict()

		self.customVars: List[str] = []
		self.nodeinfo = nodeinfo
		self.shardState = shardState
		self.groups: Dict[type, VariableGroup] = OrderedDict()
		self.plans = OrderedDict()        # dtype -> the nodeinfo's ShardPlan of the flat buffers (our MPINodeInfo)
		self.shardGroups = OrderedDict()  # dtype -> one VariableGroup of ShardParts per bucket (shardState)
		self._shardGradTables = None

	def setStateBits(self, stateBits: Optional[int]) -> None:
		"""None keeps the states in their arrays' dtype; 8 stores them as 8-bit codes with one float32 scale per
		block of ``QUANT_BLOCK`` elements (see Quantized8). Called by the subclasses' constructors."""
		self.stateBits = stateBits
		self.stateBlock = QUANT_BLOCK if self.stateBits == 8 else 1

	@property
	def stateNbytes(self) -> int:
		"""The bytes of optimizer state this process holds: every state array (8-bit state: its codes and its
		scales), padding between global-state variables included; with ``shardState`` only this rank's shard."""
		arrays = self.globalStates.values() if self.globalState else self.states.values()
		return sum(int(ary.nbytes) for state in arrays for ary in state.values())

	def __setattr__(self, name: str, value) -> None:
		"""Hyperparameters and options go through their rules (``attrRules``, ``optionRules``) on every assignment;
		a refused value raises OptimizerError and leaves the old one."""
		rule = type(self).attrRules.get(name)
		if rule is not None:
			rule.check(type(self).__name__, name, value)
		option = type(self).optionRules.get(name)
		if option is not None:
			value = option.apply(self, name, value)
		object.__setattr__(self, name, value)

	def setAttr(self, name: str, attr) -> None:
		"""Sets a hyperparameter that save()/load() carry (checked against ``attrRules``)."""
		setattr(self, name, attr)
		self.attrs.add(name)

	def getAttrDict(self) -> Dict:
		return {attrName: getattr(self, attrName) for attrName in self.attrs}

	def addHook(self, hook: Callable) -> None:
		"""``hook(var, state, stream=None)`` runs for every variable before each update (e.g. WeightDecay)."""
		self.hooks.append(hook)

	def setupOn(self, mod, useGlobalState: bool = False) -> None:
		"""Creates the optimizer state for every trainable variable of ``mod``.

		With ``useGlobalState`` the parameters (and grads) of each dtype are packed into one buffer and the
		module's variables are rebound to views of it (``mod.setVar``)."""
		if self.module is not None:
			raise OptimizerError("setupOn: this optimizer is already set up on a module; create a new one")
		if self.nodeinfo is not None and not useGlobalState:
			raise OptimizerError("setupOn: nodeinfo needs useGlobalState=True")
		if self.shardState and not self._ourGrid():
			raise OptimizerError("setupOn: shardState=True needs nodeinfo=puzzlelib_rmsprop.Grid.MPINodeInfo(...) (got %s)" % (
				"no nodeinfo" if self.nodeinfo is None else type(self.nodeinfo).__name__))

		backend = getBackend()
		variables = sorted(((names, var) for var, names in mod.getVarTable().items()), key=lambda item: item[0][0])

		trainable = [(names, var) for names, var in variables if not var.hasUpdater]
		custom = [names[0] for names, var in variables if var.hasUpdater]

		if len(trainable) + len(custom) == 0:
			raise OptimizerError("setupOn: module %r has no trainable variables" % getattr(mod, "name", mod))
		if self.nodeinfo is not None and custom:
			raise OptimizerError("setupOn: variables with their own updater (%s) cannot be used with nodeinfo" % custom)

		for names, var in trainable:
			self.checkVariable(names[0], var, backend)

		self.module, self.customVars = mod, custom
		self.setupGlobalState(trainable, backend) if useGlobalState else self.setupLocalStates(trainable)

	@staticmethod
	def checkVariable(name: str, var, backend) -> None:
		"""Raises OptimizerError if ``var`` cannot be updated by this optimizer."""
		data, grad = var.data, var.grad
		supported = [np.dtype(d) for d, _ in backend.dtypesSupported()]

		if grad is None:
			raise OptimizerError("variable %r has no grad" % name)
		if not backend.isOwnArray(data) or not backend.isOwnArray(grad):
			raise OptimizerTypeError("variable %r: data and grad must be %s backend arrays, got %s and %s" % (
				name, backend.name, type(data).__name__, type(grad).__name__
			))
		if np.dtype(data.dtype) not in supported:
			raise OptimizerTypeError("variable %r has dtype %s; supported: %s" % (name, data.dtype, [str(d) for d in supported]))
		if tuple(grad.shape) != tuple(data.shape) or grad.dtype != data.dtype:
			raise OptimizerError("variable %r: grad is %s %s but data is %s %s" % (
				name, tuple(grad.shape), grad.dtype, tuple(data.shape), data.dtype
			))
		for role, ary in (("data", data), ("grad", grad)):
			if not isContiguous(ary):
				raise OptimizerError("variable %r: %s is not contiguous" % (name, role))
			backend.checkPlacement(name, ary)

	def setupGlobalState(self, trainable, backend) -> None:
		self.globalState = True

		for names, var in trainable:
			dtype = np.dtype(var.data.dtype).type
			if dtype not in self.shParams:  # the buffers are of the first variable's kind (PuzzleLib's arrays: its own)
				self.shParams[dtype] = SharedArray(dtype, backend.zerosLike(var.data), self.stateBlock)
				self.shGrads[dtype] = SharedArray(dtype, backend.zerosLike(var.grad), self.stateBlock)
			self.shParams[dtype].register(var.data.shape, dtype, names[0])
			self.shGrads[dtype].register(var.grad.shape, dtype, names[0])

		for dtype in self.shParams:
			if self._ourGrid():
				# padded so that every rank's piece of every bucket is equal and aligned (see Grid.ShardPlan)
				plan = self.plans[dtype] = self.nodeinfo.shardPlan(self.shParams[dtype].size, dtype)
				assert plan.step % self.stateBlock == 0
				self.shParams[dtype].size = self.shGrads[dtype].size = plan.padded
			self.shParams[dtype].build()
			self.shGrads[dtype].build()
			self.globalVar[dtype] = Variable(self.shParams[dtype].ary, grad=self.shGrads[dtype].ary)

		groups = OrderedDict()
		for names, var in trainable:
			dtype = np.dtype(var.data.dtype).type
			data = backend.viewLike(var.data, self.shParams[dtype][names[0]])
			grad = backend.viewLike(var.grad, self.shGrads[dtype][names[0]])
			data.set(var.data.get())
			grad.set(var.grad.get())

			rebound = type(var)(data, grad=grad)  # the module's own Variable class
			rebound.learnRate, rebound.momRate, rebound.wc = var.learnRate, var.momRate, var.wc
			for name in names:
				self.module.setVar(name, rebound)

			groups.setdefault(dtype, []).append((names[0], rebound))

		for dtype, globalVar in self.globalVar.items():
			if self.nodeinfo is not None:
				self.nodeinfo.broadcastBuffer("data", self._broadcastable(globalVar.data))

			if self.shardState:
				self._setupShard(dtype, groups[dtype])
				continue

			flatState = self.setupState(globalVar)
			self.globalStates[dtype] = flatState

			for name, _ in groups[dtype]:
				self.states[name] = {key: self.shParams[dtype].view(ary, name) for key, ary in flatState.items()}

		self._makeGroups(groups)

	def _ourGrid(self) -> bool:
		"""Whether the nodeinfo is our MPINodeInfo (or like it): reduce-scatter, all-gather and shard plans."""
		return all(hasattr(self.nodeinfo, attr) for attr in ("shardPlan", "reduceScatter", "allGather", "finishGathers"))

	def _varSpans(self, dtype, members):
		"""(name, variable, offset, size) of each variable in the flat buffer of ``dtype``."""
		spans = []
		for name, var in members:
			shape, offset = self.shParams[dtype].regs[name]
			spans.append((name, var, offset, int(np.prod(shape, dtype=np.int64))))
		return spans

	def _setupShard(self, dtype, members) -> None:
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
			for name, var, offset, size in self._varSpans(dtype, members):
				x, y = max(a, offset), min(a + p, offset + size)
				if x < y:
					names.append(name)
					parts.append(ShardPart(var, params[x:y], grads[x:y]))
					states.append({key: ary[x - a + s:y - a + s] for key, ary in flatState.items()})
			buckets.append(VariableGroup(names, parts, states))
		self.shardGroups[dtype] = buckets

	def _broadcastable(self, data):
		"""What ``broadcastBuffer`` gets: the array for ours (MPINodeInfo); for PuzzleLib's own nodeinfo
		(PuzzleLib.Grid) what PuzzleLib's optimizer passes it, the array's buffer ``data.gpudata``."""
		puzzlelibs = any(kind.__module__.split(".")[0] == "PuzzleLib" for kind in type(self.nodeinfo).__mro__)
		return data.gpudata if puzzlelibs else data

	def setupLocalStates(self, trainable) -> None:
		groups = OrderedDict()
		for names, var in trainable:
			self.states[names[0]] = self.setupState(var)
			groups.setdefault(np.dtype(var.data.dtype).type, []).append((names[0], var))

		self._makeGroups(groups)

	def _makeGroups(self, groups) -> None:
		for dtype, members in groups.items():
			names = [name for name, _ in members]
			self.groups[dtype] = VariableGroup(names, [var for _, var in members], [self.states[n] for n in names])

	def _requireSetup(self, method: str) -> None:
		if self.module is None:
			raise OptimizerError("%s() before setupOn(): call optimizer.setupOn(net) first" % method)

	def zeroGradParams(self) -> None:
		"""Fills every trainable variable's grad with 0 (one fill per dtype in global state)."""
		self._requireSetup("zeroGradParams")

		backend = getBackend()
		if self.globalState:
			for globalVar in self.globalVar.values():
				backend.fill(globalVar.grad, 0)
		else:
			for group in self.groups.values():
				for var in group.variables:
					backend.fill(var.grad, 0)

	def setupState(self, var) -> Dict:
		"""The state arrays (same shape as ``var.data``) the update needs for ``var``."""
		return {}

	def update(self, useStreams: bool = False, sync: bool = True) -> None:
		"""One optimizer step: hooks, gradient averaging across nodes (nodeinfo), the fused update per dtype,
		then the custom-updater variables. Everything is checked before anything changes."""
		self._requireSetup("update")
		backend = getBackend()
		if self.shardState:
			self._updateSharded(backend)
			return
		launches = {dtype: group.launch(backend) for dtype, group in self.groups.items()}

		for dtype, group in self.groups.items():
			self._runHooks(group)
			if self.nodeinfo is not None:
				self.nodeinfo.sumTensor("grad", self.globalVar[dtype].grad)  # ours: padded to its plan at setup

		if self.skipNonFinite and backend.anyNonFinite([group.gradTable(backend) for group in self.groups.values()]):
			self.skippedSteps += 1
			logger.warning("update %d skipped: a gradient holds inf or NaN (%d skipped so far)", self.t + 1, self.skippedSteps)
			return

		self.t += 1
		for dtype, group in self.groups.items():
			if useStreams and not self.globalState:
				self._updateOnStreams(group, backend, sync)
			else:
				var, state = launches[dtype]
				if len(var.data) > 0:
					self.updateVar(var, state)

		for name in self.customVars:
			self.module.getVar(name).update(self.learnRate)

	def _updateSharded(self, backend) -> None:
		"""Hooks on the full grads; per dtype, the reduce-scatter of the grads bucket by bucket, each bucket's piece
		updated as soon as its mean is there and then all-gathered (while the next buckets are reduced). With
		``skipNonFinite`` every bucket is reduced first, and the ranks vote: one decision for all."""
		info = self.nodeinfo
		for group in self.groups.values():
			group._refresh()  # every variable's multipliers checked on every rank, before anything changes
		for dtype, group in self.groups.items():
			self._runHooks(group)

		if self.skipNonFinite:
			for dtype, plan in self.plans.items():
				for _ in info.reduceScatter("grad", self.globalVar[dtype].grad, plan):
					pass
			if info.anyTrue(backend.anyNonFinite(self._shardGradTableList(backend))):
				self.skippedSteps += 1
				logger.warning("update %d skipped: a gradient holds inf or NaN (%d skipped so far)", self.t + 1, self.skippedSteps)
				return
			reduced = {dtype: range(len(plan.buckets)) for dtype, plan in self.plans.items()}
		else:
			reduced = {dtype: info.reduceScatter("grad", self.globalVar[dtype].grad, plan) for dtype, plan in self.plans.items()}

		self.t += 1
		for dtype, buckets in reduced.items():
			for k in buckets:
				var, state = self.shardGroups[dtype][k].launch(backend)
				if len(var.data) > 0:
					self.updateVar(var, state)
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

	def _runHooks(self, group: VariableGroup) -> None:
		for hook in self.hooks:
			for var, state in zip(group.variables, group.states):
				hook(var, state, None)

	def _updateOnStreams(self, group: VariableGroup, backend, sync: bool) -> None:
		"""PuzzleLib's per-variable path: each variable on its own stream (its table cached like the batch's)."""
		singles = group.singles(backend)
		streams = backend.streams(len(singles))

		for (var, state), stream in zip(singles, streams):
			self.updateVar(var, state, stream)

		if sync:
			backend.synchronize(streams)

	def updateVar(self, var, state: Dict, stream=None) -> None:
		"""Updates ``var`` (a Variable or a MultiVariable) in place from its grad and ``state``."""
		raise NotImplementedError()

	def save(self, hdf, name: Optional[str] = None) -> None:
		"""Writes attrs and states to HDF5 (a path, written atomically, or an open h5py.File / group),
		in PuzzleLib's layout: ``<name>.attrs/<attr>`` and ``<name>.states/<param>.<state>``.

		With ``shardState`` every rank must call it: the state is gathered to rank 0, which alone writes ``hdf``
		(atomically, for a path); every rank returns once the file is written, or raises if rank 0 failed."""
		if not self.shardState:
			Checkpoint.save(hdf, name or "", self.getAttrDict(), self.states)
			return

		from .Grid import GridError
		states, failure = self._gatherShardStates(), None
		if self.nodeinfo.index == 0:
			try:
				Checkpoint.save(hdf, name or "", self.getAttrDict(), states)
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

	def _gatherShardStates(self) -> Optional[Dict]:
		"""Rank 0: every variable's states, by name, from all the ranks' shards (host arrays); others: None."""
		info, states = self.nodeinfo, {}
		for dtype, flatState in self.globalStates.items():
			spans = self._varSpans(dtype, zip(self.groups[dtype].names, self.groups[dtype].variables))
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
					states.setdefault(name, {})[key] = _HostState(full[offset:offset + size].reshape(var.data.shape))
		return states if info.index == 0 else None

	def load(self, hdf, name: Optional[str] = None) -> None:
		"""Reads what save() wrote, or what PuzzleLib's save wrote in either state mode (its global-state files,
		keyed by dtype, are mapped to the variables through the module's layout); checks everything first
		(see docs/checkpoints.md). Before setupOn it raises OptimizerError: the states it would restore do not exist
		yet."""
		self._requireSetup("load")
		layout = GlobalLayout([(np.dtype(dtype), [(n, tuple(v.data.shape)) for n, v in zip(group.names, group.variables)])
							   for dtype, group in self.groups.items()])
		attrs, states = Checkpoint.load(hdf, name or "", self.getAttrDict(), self._stateTemplates(), type(self).attrRules,
										type(self).optionalStates, layout)

		for attrName, value in attrs.items():
			self.setAttr(attrName, value)
		if self.shardState:
			self._loadShards(states)
			return
		for stateName, entities in states.items():
			for entityName, value in entities.items():
				self.states[stateName][entityName].set(value)

	def _stateTemplates(self) -> Dict:
		"""What Checkpoint checks a file against: the states, or with shardState each variable's full-size states."""
		if not self.shardState:
			return self.states
		templates = {}
		for dtype, flatState in self.globalStates.items():
			for name, var in zip(self.groups[dtype].names, self.groups[dtype].variables):
				templates[name] = {key: self._template(ary, tuple(var.data.shape)) for key, ary in flatState.items()}
		return templates

	@staticmethod
	def _template(ary, shape):
		if isinstance(ary, QuantizedState):  # 8-bit state: a host QuantizedState of the variable's shape
			return Quantized8.zeros(shape, ary.signed, np)
		return _HostState(np.zeros(shape, dtype=ary.dtype))

	def _loadShards(self, states: Dict) -> None:
		"""Gives each piece of this rank's shard its part of the states read (the others keep their values)."""
		rank = self.nodeinfo.index
		for dtype, flatState in self.globalStates.items():
			spans = self._varSpans(dtype, zip(self.groups[dtype].names, self.groups[dtype].variables))
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
