"""PuzzleLib's Optimizer base class, with one fused launch per dtype per step in both state modes.

A subclass overrides only ``setupState(var)`` and ``updateVar(var, state, stream=None)``. Unlike PuzzleLib:
- per-variable ``learnRate`` multipliers (0 freezes) and WeightDecay's ``wc`` keep working in global state (user
  hooks are called as PuzzleLib calls them: see ``addHook``);
- states are keyed by parameter name in both modes (global-state states are views of one buffer, and also keyed
  by dtype as in PuzzleLib), so a checkpoint saved in one mode loads in the other; ``save(layout="puzzlelib")``
  writes PuzzleLib's own layout;
- in local state every step uses the variables the module holds now, as PuzzleLib does, and refuses (changing
  nothing) arrays the kernels must not touch; see docs/drop-in.md;
- local state also updates all variables of a dtype in one multi-tensor launch (``useStreams=True`` keeps
  PuzzleLib's per-variable launches on streams);
- with ``shardState`` (and our MPINodeInfo) each rank keeps and updates only its shard of the state (ZeRO stage 1).

Where the state lives is a layout's business (StateLayouts: local and packed; ShardedState: ZeRO-1).
"""
import logging
from collections import OrderedDict
from typing import Callable, Dict, List, Optional

from . import Checkpoint, PuzzleLibSave
from .Backend import getBackend
from .Quantized8 import QUANT_BLOCK
from .ShardedState import ShardedLayout
from .StateLayouts import LocalLayout, PackedLayout, VariableGroup, checkVariable, isOurGrid
from .Errors import OptimizerError
from .Validation import Flag, Option, Range, StateBits

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
		self.layout = None

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
		"""A hook runs before each update: in local state ``hook(var, state, stream)`` for every variable, in global
		state ``hook(globalVar, state)`` once per dtype on the packed buffer, as PuzzleLib calls them (see
		``_runHooks``; WeightDecay is called per variable in both)."""
		self.hooks.append(hook)

	def setupOn(self, mod, useGlobalState: bool = False) -> None:
		"""Creates the optimizer state for every trainable variable of ``mod``.

		With ``useGlobalState`` the parameters (and grads) of each dtype are packed into one buffer and the
		module's variables are rebound to views of it (``mod.setVar``). In local state variables that share memory
		are refused (their rows would race).

		Called again (on the same module or another), as PuzzleLib: the optimizer is set up anew on ``mod`` in the
		mode asked for. The old state is dropped (every state starts again from its initial value, as from
		``setupState``), the old module is no longer updated, and ``t``, the hyperparameters and the hooks stay.
		Nothing changes if the new setup is refused."""
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

		if useGlobalState:
			kind = ShardedLayout if self.shardState else PackedLayout
			layout = kind(mod, self.setupState, self.updateVar, self._runHooks, self.nodeinfo, self.stateBlock)
		else:
			layout = LocalLayout(mod, self.setupState, self.updateVar, self._runHooks)
		layout.setup(trainable, backend)

		self.module, self.customVars, self.layout, self.globalState = mod, custom, layout, layout.globalState
		for attr in self._layoutAttrs:  # the layout's own dicts (a second setupOn: fresh ones)
			object.__setattr__(self, attr, getattr(layout, attr) if hasattr(layout, attr) else OrderedDict())

	#: raises OptimizerError if a variable cannot be updated by this optimizer (``checkVariable(name, var, backend)``)
	checkVariable = staticmethod(checkVariable)

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

		object.__setattr__(self, "t", self.t + 1)  # a checked integer plus one: no rule to run on the hot path
		self.layout.step(pending, backend, useStreams, sync)

		for name in self.customVars:
			self.module.getVar(name).update(self.learnRate)

	def _runHooks(self, group: VariableGroup, globalVar=None, globalState=None) -> None:
		"""As PuzzleLib: local state ``hook(var, state, stream)`` per variable; global state ``hook(globalVar,
		state)`` once per dtype on the packed buffer. A hook with ``eachVariable = True`` (our WeightDecay) is
		called per variable in both modes, on the variables' views of the buffer, so each one's ``wc`` applies."""
		for hook in self.hooks:
			if globalVar is None or getattr(hook, "eachVariable", False):
				for var, state in zip(group.variables, group.states):
					hook(var, state, None)
			else:
				hook(globalVar, globalState)

	def updateVar(self, var, state: Dict, stream=None) -> None:
		"""Updates ``var`` (a Variable or a MultiVariable) in place from its grad and ``state``."""
		raise NotImplementedError()

	def save(self, hdf, name: Optional[str] = None, layout: str = "default") -> None:
		"""Writes attrs and states to HDF5 (a path, written atomically, or an open h5py.File / group),
		in PuzzleLib's layout: ``<name>.attrs/<attr>`` and ``<name>.states/<param>.<state>``.

		``layout="puzzlelib"`` writes the file PuzzleLib 1.0.3's own optimizer of the same class would write in the
		same state mode on this backend, so that PuzzleLib can load it and go on: in global state its states are
		keyed by dtype (CPU ``<class 'numpy.float32'>``, CUDA ``float32``) over its packed buffer. Refused (an
		OptimizerError, nothing written) for 8-bit state, float32 state of float16 parameters, and the options
		PuzzleLib's class lacks. The default layout (by name in both modes) loads in either mode.

		With ``shardState`` every rank must call it: the state is gathered to rank 0, which alone writes ``hdf``
		(atomically, for a path); every rank returns once the file is written, or raises if rank 0 failed."""
		if layout not in ("default", "puzzlelib"):
			raise OptimizerError("save: layout must be 'default' or 'puzzlelib', got %r" % (layout, ))
		pack = None
		if layout == "puzzlelib":
			self._requireSetup("save(layout='puzzlelib')")
			if getattr(self, "stateBits", None) == 8:
				raise OptimizerError("save(layout='puzzlelib'): PuzzleLib has no 8-bit state (stateBits=8)")
			pack = PuzzleLibSave.packer(self.layout.puzzlelibLayout(), self.globalState, getBackend().name == "cuda",
										getattr(self, "puzzlelibFlavour", True), type(self).__name__)
		self._layoutOrEmpty().save(hdf, name or "", self.getAttrDict(), pack)

	def load(self, hdf, name: Optional[str] = None) -> None:
		"""Reads what save() wrote, or what PuzzleLib's save wrote in either state mode (its global-state files,
		keyed by dtype, are mapped to the variables through the module's layout); checks everything first
		(see docs/checkpoints.md). Before setupOn it raises OptimizerError: the states it would restore do not exist
		yet."""
		self._requireSetup("load")
		layout = self._layoutOrEmpty()
		attrs, states = Checkpoint.load(hdf, name or "", self.getAttrDict(), layout.stateTemplates(),
										type(self).attrRules, type(self).optionalStates, layout.puzzlelibLayout())

		for attrName, value in attrs.items():
			self.setAttr(attrName, value)
		layout.loadStates(states)

	def _layoutOrEmpty(self):
		"""The layout, or before setupOn an empty local one (no states)."""
		return self.layout or LocalLayout(self.module, self.setupState, self.updateVar, self._runHooks)
