"""PuzzleLib's Optimizer base class, with one fused launch per dtype per step in both state modes.

A subclass overrides only ``setupState(var)`` and ``updateVar(var, state, stream=None)``. Unlike PuzzleLib:
- per-variable ``learnRate`` multipliers (0 freezes), ``wc`` and hooks keep working in global state;
- states are keyed by parameter name in both modes (global-state states are views of one buffer), so a
  checkpoint saved in one mode loads in the other;
- local state also updates all variables of a dtype in one multi-tensor launch (``useStreams=True`` keeps
  PuzzleLib's per-variable launches on streams);
- with ``shardState`` (and our MPINodeInfo) each rank keeps and updates only its shard of the state (ZeRO stage 1).

Where the state lives is a layout's business (StateLayouts: local and packed; ShardedState: ZeRO-1).
"""
import logging
from collections import OrderedDict
from typing import Callable, Dict, List, Optional

import numpy as np

from . import Checkpoint
from .Backend import getBackend
from .Backend.PuzzleLibArrays import isContiguous
from .Quantized8 import QUANT_BLOCK
from .ShardedState import ShardedLayout
from .StateLayouts import LocalLayout, PackedLayout, VariableGroup, isOurGrid
from .Errors import OptimizerError, OptimizerTypeError
from .Validation import Range

logger = logging.getLogger("puzzlelib_rmsprop")


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
	attrRules: Dict[str, Range] = {"t": Range(0), "learnRate": Range(0)}
	#: states a checkpoint may lack (saved before the option that needs them existed): they keep their start values
	optionalStates = frozenset()

	#: elements a block of the optimizer state spans (256 for 8-bit state, whose blocks share one scale); in global
	#: state every variable, and every shard of sharded state, starts on a multiple of it
	stateBlock = 1

	def __init__(self, nodeinfo=None, *, skipNonFinite: bool = False, shardState: bool = False):
		self.t = 0
		self.learnRate = 0.0
		self.skipNonFinite = bool(skipNonFinite)
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
		self.shardState = bool(shardState)
		self.groups: Dict[type, VariableGroup] = OrderedDict()
		self.plans = OrderedDict()        # dtype -> the nodeinfo's ShardPlan of the flat buffers (our MPINodeInfo)
		self.shardGroups = OrderedDict()  # dtype -> one VariableGroup of ShardParts per bucket (shardState)
		self.layout = None

	def setStateBits(self, stateBits: Optional[int]) -> None:
		"""None keeps the states in their arrays' dtype; 8 stores them as 8-bit codes with one float32 scale per
		block of ``QUANT_BLOCK`` elements (see Quantized8). Called by the subclasses' constructors."""
		if stateBits is not None and (isinstance(stateBits, bool) or stateBits != 8):
			raise OptimizerError("%s.stateBits must be None (full-width state) or 8, got %r" % (type(self).__name__, stateBits))
		self.stateBits = None if stateBits is None else 8
		self.stateBlock = QUANT_BLOCK if self.stateBits == 8 else 1

	@property
	def stateNbytes(self) -> int:
		"""The bytes of optimizer state this process holds: every state array (8-bit state: its codes and its
		scales), padding between global-state variables included; with ``shardState`` only this rank's shard."""
		arrays = self.globalStates.values() if self.globalState else self.states.values()
		return sum(int(ary.nbytes) for state in arrays for ary in state.values())

	def __setattr__(self, name: str, value) -> None:
		rule = type(self).attrRules.get(name)
		if rule is not None:
			rule.check(type(self).__name__, name, value)
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
		if self.shardState and not isOurGrid(self.nodeinfo):
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
		if useGlobalState:
			kind = ShardedLayout if self.shardState else PackedLayout
			layout = kind(mod, self.setupState, self.updateVar, self._runHooks, self.nodeinfo, self.stateBlock)
		else:
			layout = LocalLayout(mod, self.setupState, self.updateVar, self._runHooks)
		self.layout, self.globalState = layout, layout.globalState
		for attr in self._layoutAttrs:  # the layout's own dicts, filled by its setup
			if hasattr(layout, attr):
				object.__setattr__(self, attr, getattr(layout, attr))
		layout.setup(trainable, backend)

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


	_layoutAttrs = ("states", "groups", "shParams", "shGrads", "globalVar", "globalStates", "plans", "shardGroups")

	def _requireSetup(self, method: str) -> None:
		if self.module is None:
			raise OptimizerError("%s() before setupOn(): call optimizer.setupOn(net) first" % method)

	def zeroGradParams(self) -> None:
		"""Fills every trainable variable's grad with 0 (one fill per dtype in global state)."""
		self._requireSetup("zeroGradParams")
		self.layout.zeroGrads(getBackend())

	def setupState(self, var) -> Dict:
		"""The state arrays (same shape as ``var.data``) the update needs for ``var``."""
		return {}

	def update(self, useStreams: bool = False, sync: bool = True) -> None:
		"""One optimizer step: hooks, gradient averaging across nodes (nodeinfo), the fused update per dtype,
		then the custom-updater variables. Everything is checked before anything changes."""
		self._requireSetup("update")
		backend = getBackend()
		pending = self.layout.prepare(backend, self.skipNonFinite)

		if self.skipNonFinite and self.layout.anyNonFinite(backend):
			self.skippedSteps += 1
			logger.warning("update %d skipped: a gradient holds inf or NaN (%d skipped so far)", self.t + 1, self.skippedSteps)
			return

		self.t += 1
		self.layout.step(pending, backend, useStreams, sync)

		for name in self.customVars:
			self.module.getVar(name).update(self.learnRate)

	def _runHooks(self, group: VariableGroup) -> None:
		for hook in self.hooks:
			for var, state in zip(group.variables, group.states):
				hook(var, state, None)

	def updateVar(self, var, state: Dict, stream=None) -> None:
		"""Updates ``var`` (a Variable or a MultiVariable) in place from its grad and ``state``."""
		raise NotImplementedError()

	def save(self, hdf, name: Optional[str] = None) -> None:
		"""Writes attrs and states to HDF5 (a path, written atomically, or an open h5py.File / group),
		in PuzzleLib's layout: ``<name>.attrs/<attr>`` and ``<name>.states/<param>.<state>``.

		With ``shardState`` every rank must call it: the state is gathered to rank 0, which alone writes ``hdf``
		(atomically, for a path); every rank returns once the file is written, or raises if rank 0 failed."""
		self._layoutOrEmpty().save(hdf, name or "", self.getAttrDict())

	def load(self, hdf, name: Optional[str] = None) -> None:
		"""Reads what save() wrote, or what PuzzleLib's save wrote in either state mode (its global-state files,
		keyed by dtype, are mapped to the variables through the module's layout); checks everything first."""
		layout = self._layoutOrEmpty()
		attrs, states = Checkpoint.load(hdf, name or "", self.getAttrDict(), layout.stateTemplates(),
										type(self).attrRules, type(self).optionalStates, layout.puzzlelibLayout())

		for attrName, value in attrs.items():
			self.setAttr(attrName, value)
		layout.loadStates(states)

	def _layoutOrEmpty(self):
		"""The layout, or before setupOn an empty local one (no states)."""
		return self.layout or LocalLayout(self.module, self.setupState, self.updateVar, self._runHooks)
