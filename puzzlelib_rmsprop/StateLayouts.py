"""Where the optimizer state lives: per variable (local state) or packed into one buffer per dtype (global state).

A layout is given the optimizer's ``setupState``, ``updateVar`` and hook runner; it builds the states and the
launch tables, and runs one step's launches. Optimizer chooses the layout and drives it.
"""
from collections import OrderedDict
from operator import attrgetter
from typing import Callable, Dict, List, Optional

import numpy as np

from . import Checkpoint
from .Backend.SharedArray import SharedArray
from .Backend.TensorTable import TensorList
from .Errors import OptimizerError, OptimizerTypeError
from .PuzzleLibCheckpoint import GlobalLayout
from .MultiplierWatch import MultiplierWatch, watch, watchedClass
from .VariableChecks import checkNoSharing, checkVariable
from .Validation import checkMultiplier
from .Variable import Variable

_learnRate, _momRate = attrgetter("learnRate"), attrgetter("momRate")

def isOurGrid(nodeinfo) -> bool:
	"""Whether ``nodeinfo`` is our MPINodeInfo (or like it): reduce-scatter, all-gather and shard plans."""
	return all(hasattr(nodeinfo, attr) for attr in ("shardPlan", "reduceScatter", "allGather", "finishGathers"))


def broadcastable(nodeinfo, data):
	"""What ``broadcastBuffer`` gets: the array for ours (MPINodeInfo); for PuzzleLib's own nodeinfo
	(PuzzleLib.Grid) what PuzzleLib's optimizer passes it, the array's buffer ``data.gpudata``."""
	puzzlelibs = any(kind.__module__.split(".")[0] == "PuzzleLib" for kind in type(nodeinfo).__mro__)
	return data.gpudata if puzzlelibs else data


class StateTable(dict):
	"""Global state's ``states``: by parameter name, and by dtype as PuzzleLib keys it (``states[np.float32]`` is
	the state of the whole packed buffer of that dtype, ``globalStates[np.float32]``)."""

	def __init__(self, globalStates: Dict):
		super().__init__()
		self.globalStates = globalStates

	def _dtypeOf(self, key):
		if isinstance(key, (type, np.dtype)):
			try:
				dtype = np.dtype(key).type
			except TypeError:
				return None
			return dtype if dtype in self.globalStates else None
		return None

	def __missing__(self, key):
		dtype = self._dtypeOf(key)
		if dtype is None:
			raise KeyError(key)
		return self.globalStates[dtype]

	def __contains__(self, key) -> bool:
		return dict.__contains__(self, key) or self._dtypeOf(key) is not None


class HostState:
	"""A host array as Checkpoint reads and writes states: ``get()``, ``shape``, ``dtype``."""

	def __init__(self, ary: np.ndarray):
		self.ary, self.shape, self.dtype = ary, ary.shape, ary.dtype

	def get(self) -> np.ndarray:
		return self.ary


class BufferPart:
	"""A part of a packed buffer that a launch updates: our views ``data`` and ``grad`` (never what the module's
	variable holds now, which the user may replace), the multipliers read through from the variable ``var``."""

	def __init__(self, var, data, grad):
		self.var, self.data, self.grad = var, data, grad

	@property
	def learnRate(self) -> float:
		return self.var.learnRate

	@property
	def momRate(self) -> float:
		return self.var.momRate

	@property
	def wc(self) -> float:
		return self.var.wc


class MultiVariable:
	"""Several variables of one dtype presented to ``updateVar`` as one: ``data`` and ``grad`` are TensorLists
	and ``learnRate`` holds each variable's multiplier, so ``optimizer.learnRate * var.learnRate`` still works."""

	def __init__(self, data: TensorList, grad: TensorList, learnRate: np.ndarray, momRate: np.ndarray):
		self.data, self.grad, self.learnRate, self.momRate = data, grad, learnRate, momRate


def _perTensor(values: List[float]):
	"""One multiplier per tensor, as the kernels take them: a float where they are all equal (the table then merges
	the tensors' rows and a step compares one float), else an array."""
	if values and all(v == values[0] for v in values) and type(values[0]) in (float, int):
		return float(values[0])
	return np.array(values, dtype=np.float64)


class VariableGroup:
	"""The variables of one dtype that one launch updates, with their states."""

	def __init__(self, names: List[str], variables: List, states: List[Dict], watch: Optional[MultiplierWatch] = None):
		self.names, self.variables, self.states = names, variables, states
		self.watch, self._seen = watch, None  # with a watch, multipliers are re-read only after one was assigned
		self.held = [(var, var.data, var.grad) for var in variables]  # what the tables point into, kept alive
		self._multipliers, self._momRates, self._active = None, None, None
		self._launch, self._single, self._gradList = None, None, None

	def _batch(self, backend, indices: List[int]):
		"""(MultiVariable, state of TensorLists) over the variables at ``indices``."""
		pick = lambda arrays: TensorList([arrays[i] for i in indices], backend.pointerOf)
		var = MultiVariable(pick([v.data for v in self.variables]), pick([v.grad for v in self.variables]),
							_perTensor([self._multipliers[i] for i in indices]), _perTensor([self._momRates[i] for i in indices]))
		return var, {key: pick([s[key] for s in self.states]) for key in (self.states[0] if self.states else {})}

	def invalidate(self) -> None:
		"""Forgets every table (the variables or their arrays changed)."""
		self._multipliers = self._momRates = self._launch = self._single = self._gradList = None
		self.held = [(var, var.data, var.grad) for var in self.variables]

	def changed(self, getVar) -> bool:
		"""Whether the module now holds another variable, or another data or grad array, for any name
		(identity checks only: this runs every step)."""
		for name, (var, data, grad) in zip(self.names, self.held):
			now = getVar(name)
			if now is not var or now.data is not data or now.grad is not grad:
				return True
		return False

	def _refresh(self) -> None:
		"""Re-reads the learnRate and momRate multipliers; a change (or the first call) invalidates the batches.
		Raises OptimizerError on a non-finite multiplier, before anything is launched. With a watch, nothing is read
		unless a multiplier was assigned since the last call (one integer comparison per step)."""
		if self.watch is not None:
			if self._seen == self.watch.version and self._multipliers is not None:
				return
			self._seen = self.watch.version
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


class LocalLayout:
	"""One state per variable (``states[name]``), one launch per dtype over all of them (or one per variable on
	streams, PuzzleLib's path). As PuzzleLib, every step uses the variables the module holds now: a replaced
	variable, or replaced data or grad arrays, are checked and the tables rebuilt (identity checks otherwise)."""

	globalState = False

	def __init__(self, module, setupState: Callable, updateVar: Callable, runHooks: Callable):
		self.module, self.setupState, self.updateVar, self.runHooks = module, setupState, updateVar, runHooks
		self.states: Dict[str, Dict] = {}
		self.groups: Dict[type, VariableGroup] = OrderedDict()

	def setup(self, trainable, backend) -> None:
		checkNoSharing([(names[0], role, ary) for names, var in trainable for role, ary in (("data", var.data), ("grad", var.grad))], backend)
		groups = OrderedDict()
		for names, var in trainable:
			self.states[names[0]] = self.setupState(var)
			groups.setdefault(np.dtype(var.data.dtype).type, []).append((names[0], var))
		self.makeGroups(groups)

	def follow(self, backend) -> None:
		"""Takes the module's current variables; on any change checks every array of every variable (size, dtype,
		contiguity, backend, no sharing) before anything changes, then rebuilds the tables."""
		getVar = self.module.getVar
		if not any(group.changed(getVar) for group in self.groups.values()):
			return
		current = {dtype: [getVar(name) for name in group.names] for dtype, group in self.groups.items()}
		named = []
		for dtype, group in self.groups.items():
			for name, var, state in zip(group.names, current[dtype], group.states):
				checkVariable(name, var, backend)
				if np.dtype(var.data.dtype) != np.dtype(dtype):
					raise OptimizerTypeError("variable %r: its data is now %s, but it was set up as %s" % (
						name, np.dtype(var.data.dtype), np.dtype(dtype)))
				for key, ary in state.items():
					if tuple(ary.shape) != tuple(var.data.shape):
						raise OptimizerError("variable %r: its data is now %s, but its state %r is %s" % (
							name, tuple(var.data.shape), key, tuple(ary.shape)))
				named += [(name, "data", var.data), (name, "grad", var.grad)]
		checkNoSharing(named, backend)
		for dtype, group in self.groups.items():
			group.variables[:] = current[dtype]
			group.invalidate()

	def makeGroups(self, groups, watch: Optional[MultiplierWatch] = None) -> None:
		for dtype, members in groups.items():
			names = [name for name, _ in members]
			self.groups[dtype] = VariableGroup(names, [var for _, var in members], [self.states[n] for n in names], watch)

	def zeroGrads(self, backend) -> None:
		self.follow(backend)
		for group in self.groups.values():
			for var in group.variables:
				backend.fill(var.grad, 0)

	def prepare(self, backend, skipNonFinite: bool):
		"""Checks and tables first (nothing changed yet), then the hooks; what ``step`` launches."""
		self.follow(backend)
		launches = {dtype: group.launch(backend) for dtype, group in self.groups.items()}
		for group in self.groups.values():
			self.runHooks(group)
		return launches

	def anyNonFinite(self, backend) -> bool:
		return backend.anyNonFinite([group.gradTable(backend) for group in self.groups.values()])

	def step(self, launches, backend, useStreams: bool, sync: bool) -> None:
		for dtype, group in self.groups.items():
			if useStreams:
				self._updateOnStreams(group, backend, sync)
			else:
				self._launch(*launches[dtype])

	def _launch(self, var, state) -> None:
		if len(var.data) > 0:
			self.updateVar(var, state)

	def _updateOnStreams(self, group: VariableGroup, backend, sync: bool) -> None:
		"""PuzzleLib's per-variable path: each variable on its own stream (its table cached like the batch's)."""
		singles = group.singles(backend)
		streams = backend.streams(len(singles))

		for (var, state), stream in zip(singles, streams):
			self.updateVar(var, state, stream)

		if sync:
			backend.synchronize(streams)

	def puzzlelibLayout(self) -> GlobalLayout:
		"""Where PuzzleLib's global state would put each variable (to read PuzzleLib's global-state files)."""
		return GlobalLayout([(np.dtype(dtype), [(n, tuple(v.data.shape)) for n, v in zip(group.names, group.variables)])
							 for dtype, group in self.groups.items()])

	def save(self, hdf, name: str, attrs: Dict, pack: Optional[Callable] = None) -> None:
		"""Writes attrs and the states by name, or what ``pack`` makes of them (another file layout)."""
		Checkpoint.save(hdf, name, attrs, self.states if pack is None else pack(self.states))

	def stateTemplates(self) -> Dict:
		"""What Checkpoint checks a file against."""
		return self.states

	def loadStates(self, states: Dict) -> None:
		for stateName, entities in states.items():
			for entityName, value in entities.items():
				self.states[stateName][entityName].set(value)


class PackedLayout(LocalLayout):
	"""Global state: the parameters (and grads) of each dtype packed into one buffer (``globalVar[dtype]``), the
	module's variables rebound to views of it, one state per dtype over the whole buffer (``globalStates``) and
	``states[name]`` views of it. Every variable starts on a multiple of ``stateBlock`` elements."""

	globalState = True

	def follow(self, backend) -> None:
		"""PuzzleLib's global state updates its packed buffers whatever the module holds now: so does this."""

	def __init__(self, module, setupState: Callable, updateVar: Callable, runHooks: Callable, nodeinfo, stateBlock: int):
		super().__init__(module, setupState, updateVar, runHooks)
		self.nodeinfo, self.stateBlock = nodeinfo, stateBlock
		self.shParams, self.shGrads = {}, {}
		self.globalVar, self.globalStates = OrderedDict(), OrderedDict()
		self.states = StateTable(self.globalStates)
		self.plans = OrderedDict()  # dtype -> the nodeinfo's ShardPlan of the flat buffers (our MPINodeInfo)

	def setup(self, trainable, backend) -> None:
		for names, var in trainable:
			dtype = np.dtype(var.data.dtype).type
			if dtype not in self.shParams:  # the buffers are of the first variable's kind (PuzzleLib's arrays: its own)
				self.shParams[dtype] = SharedArray(dtype, backend.zerosLike(var.data), self.stateBlock)
				self.shGrads[dtype] = SharedArray(dtype, backend.zerosLike(var.grad), self.stateBlock)
			self.shParams[dtype].register(var.data.shape, dtype, names[0])
			self.shGrads[dtype].register(var.grad.shape, dtype, names[0])

		for dtype in self.shParams:
			if isOurGrid(self.nodeinfo):
				# padded so that every rank's piece of every bucket is equal and aligned (see Grid.ShardPlan)
				plan = self.plans[dtype] = self.nodeinfo.shardPlan(self.shParams[dtype].size, dtype)
				assert plan.step % self.stateBlock == 0
				self.shParams[dtype].size = self.shGrads[dtype].size = plan.padded
			self.shParams[dtype].build()
			self.shGrads[dtype].build()
			self.globalVar[dtype] = Variable(self.shParams[dtype].ary, grad=self.shGrads[dtype].ary)

		groups, self.watch = OrderedDict(), MultiplierWatch()
		for names, var in trainable:
			dtype = np.dtype(var.data.dtype).type
			data = backend.viewLike(var.data, self.shParams[dtype][names[0]])
			grad = backend.viewLike(var.grad, self.shGrads[dtype][names[0]])
			data.set(var.data.get())
			grad.set(var.grad.get())

			# the module's own Variable class (a subclass of it that reports multipliers assigned to self.watch)
			rebound = watch(watchedClass(type(var))(data, grad=grad), self.watch)
			rebound.learnRate, rebound.momRate, rebound.wc = var.learnRate, var.momRate, var.wc
			for name in names:
				self.module.setVar(name, rebound)

			part = BufferPart(rebound, self.shParams[dtype][names[0]], self.shGrads[dtype][names[0]])
			groups.setdefault(dtype, []).append((names[0], part))

		for dtype, globalVar in self.globalVar.items():
			if self.nodeinfo is not None:
				self.nodeinfo.broadcastBuffer("data", broadcastable(self.nodeinfo, globalVar.data))
			self.setupDtype(dtype, groups[dtype])

		self.makeGroups(groups, self.watch)

	def setupDtype(self, dtype, members) -> None:
		"""The state of one dtype's buffer, and its variables' views of it."""
		flatState = self.setupState(self.globalVar[dtype])
		self.globalStates[dtype] = flatState
		for name, _ in members:
			self.states[name] = {key: self.shParams[dtype].view(ary, name) for key, ary in flatState.items()}

	def zeroGrads(self, backend) -> None:
		for globalVar in self.globalVar.values():
			backend.fill(globalVar.grad, 0)

	def prepare(self, backend, skipNonFinite: bool):
		launches = {dtype: group.launch(backend) for dtype, group in self.groups.items()}
		for dtype, group in self.groups.items():
			self.runHooks(group, self.globalVar[dtype], self.globalStates[dtype])
			if self.nodeinfo is not None:
				self.nodeinfo.sumTensor("grad", self.globalVar[dtype].grad)  # ours: padded to its plan at setup
		return launches

	def step(self, launches, backend, useStreams: bool, sync: bool) -> None:
		for dtype in self.groups:
			self._launch(*launches[dtype])

	def spans(self, dtype, members):
		"""(name, variable, offset, size) of each variable in the flat buffer of ``dtype``."""
		spans = []
		for name, var in members:
			shape, offset = self.shParams[dtype].regs[name]
			spans.append((name, var, offset, int(np.prod(shape, dtype=np.int64))))
		return spans
