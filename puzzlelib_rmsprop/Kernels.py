"""Kernel entry points: ``rmspropKer(dtype)(param, grad, ms, learnRate, factor, epsilon)`` in PuzzleLib's style,
memoized per dtype (and backend), and ``flavourUpdate`` for the other flavours. The tensors are either single
arrays (one tensor) or TensorLists (one launch for all of them, with one learnRate per tensor).
"""
from functools import lru_cache

import numpy as np

from .Backend import getBackend
from .Backend.TensorTable import FlavourTable, TensorList
from .Errors import OptimizerError, OptimizerTypeError
from .Quantized8 import Quant8Table, QuantizedState


def asTensorList(tensors, backend) -> TensorList:
	return tensors if isinstance(tensors, TensorList) else TensorList([tensors], backend.pointerOf)


def checkLooseArrays(entry: str, params: TensorList, others, stateDtypes) -> None:
	"""Arrays passed directly (not TensorLists from the optimizer, which setupOn checked): one size, the grad of
	the parameters' dtype, the states of one of ``stateDtypes``. Raises OptimizerTypeError before any launch."""
	grads, states = others[0], [t for t in others[1:] if t is not None]
	if not (all(t.sizes == params.sizes for t in others if t is not None) and grads.dtype == params.dtype
			and all(t.dtype in stateDtypes for t in states)):
		raise OptimizerTypeError("%s: param, grad and states must be arrays of one size (states of %s), got %s" % (
			entry, "/".join(map(str, stateDtypes)),
			", ".join("%s[%d]" % (t.dtype, sum(t.sizes)) for t in [params] + [t for t in others if t is not None])))


def _makeRmspropKer(dtype: np.dtype, backend):
	launch = backend.rmsprop

	def rmsprop(param, grad, ms, learnRate, factor, epsilon, stream=None):
		if param.__class__ is TensorList and grad.__class__ is TensorList and ms.__class__ is TensorList:
			# the optimizer's lists (checked at setup): the hot path, the cached table and one C call
			launch(param.launchTable(backend, grad, ms, learnRate), flavourOf(factor, epsilon), stream=stream)
			return
		params, grads, mss = (asTensorList(t, backend) for t in (param, grad, ms))
		oneOff = params is not param
		if oneOff:
			if params.dtype != dtype:
				raise OptimizerTypeError("rmspropKer(%s) was given %s parameters" % (dtype, params.dtype))
			checkLooseArrays("rmspropKer(%s)" % dtype, params, [grads, mss], [dtype])

		table = params.launchTable(backend, grads, mss, learnRate)
		backend.rmsprop(table, flavourOf(factor, epsilon), stream=stream)

		if oneOff:
			# a table built for this call only: its device copy must outlive the asynchronous launch
			backend.synchronize([stream])

	return rmsprop


_kernels = {}


#: Must match RMSPropFlavour in kernels/rmsprop_update.h (same fields, same order): the options of every kernel
#: family, passed whole by both backends. A new scalar option is one field here and one there.
FLAVOUR_STRUCT = np.dtype([
	("factor", np.float32), ("epsilon", np.float32), ("weightDecay", np.float32),
	("centered", np.int32), ("epsilonInSqrt", np.int32), ("momentumMode", np.int32),
	("varianceFloor", np.float32), ("plain", np.int32), ("arithmetic", np.int32),
])
#: fields no caller sets: the 8-bit policy's (kernels/quantize8.h) and the plain-PuzzleLib decision (below)
DERIVED_FIELDS = ("varianceFloor", "plain")
#: the options after factor and epsilon, in the struct's order
OPTIONS = tuple(name for name in FLAVOUR_STRUCT.names[2:] if name not in DERIVED_FIELDS)
#: the options that change the formula (``arithmetic`` changes only how it is evaluated): ``plain`` is all of them 0
FORMULA_OPTIONS = tuple(name for name in OPTIONS if name != "arithmetic")

MOMENTUM_NONE, MOMENTUM_TORCH, MOMENTUM_IN_LR = 0, 1, 2  # momentumMode: torch (param += lr * mom), TF / Graves
#: the ``arithmetic`` option's values as the flavour struct holds them: IEEE float32 (these kernels), PuzzleLib's own
ARITHMETIC = {"ieee": 0, "puzzlelib": 1}


class Flavour:
	"""The options of the kernels as one RMSPropFlavour: ``Flavour(factor, epsilon, *options, **options)``, the
	options (``OPTIONS``: weightDecay, centered, epsilonInSqrt, momentumMode, ...) in the struct's order or by name,
	0 when not given. ``plain`` (every formula option 0: PuzzleLib's RMSProp) is decided here, once; ``struct`` is the
	bytes the kernels take. Read-only; fields read as attributes."""

	__slots__ = ("record", "struct", "plain", "arithmetic")  # the two fields a step asks for, as Python values

	def __init__(self, factor: float, epsilon: float, *options, **named):
		if len(options) > len(OPTIONS):
			raise TypeError("Flavour takes at most %d options, got %d" % (len(OPTIONS), len(options)))
		values = dict(zip(OPTIONS, options))
		for name, value in named.items():
			if name not in OPTIONS or name in values:
				raise TypeError("Flavour: %r is %s" % (name, "given twice" if name in values else "no option (%s)" % ", ".join(OPTIONS)))
			values[name] = value

		record = np.zeros((), FLAVOUR_STRUCT)
		record["factor"], record["epsilon"] = factor, epsilon
		for name, value in values.items():
			record[name] = value
		record["plain"] = not any(record[name] for name in FORMULA_OPTIONS)
		object.__setattr__(self, "record", record)
		object.__setattr__(self, "struct", record.tobytes())
		object.__setattr__(self, "plain", int(record["plain"]))
		object.__setattr__(self, "arithmetic", int(record["arithmetic"]))

	def __getattr__(self, name):
		if name in FLAVOUR_STRUCT.names:
			return self.record[name].item()
		raise AttributeError("Flavour has no field %r" % name)

	def __setattr__(self, name, value):
		raise AttributeError("a Flavour is read-only")

	def __eq__(self, other) -> bool:
		return isinstance(other, Flavour) and self.struct == other.struct

	def __hash__(self) -> int:
		return hash(self.struct)

	def __repr__(self) -> str:
		return "Flavour(%s)" % ", ".join("%s=%r" % (name, getattr(self, name)) for name in FLAVOUR_STRUCT.names)


#: Flavours by their arguments, so a step builds none (the optimizers ask for theirs every step)
flavourOf = lru_cache(maxsize=256)(Flavour)




class ArithmeticRule:
	"""The ``arithmetic`` option's rule (Validation.Option): one of ``ARITHMETIC``'s names."""

	def check(self, owner: str, name: str, value) -> None:
		if not isinstance(value, str) or value not in ARITHMETIC:
			raise OptimizerError("%s.%s must be one of %s, got %r" % (owner, name, ", ".join(map(repr, ARITHMETIC)), value))

	@staticmethod
	def coerce(value):
		return value


def checkArithmetic(optimizer: str, arithmetic: str, options: dict) -> str:
	"""``arithmetic`` checked: "ieee" or "puzzlelib", the latter only with every option in ``options`` at its default
	(PuzzleLib has no kernel for the others). Raises OptimizerError naming the option."""
	ArithmeticRule().check(optimizer, "arithmetic", arithmetic)
	changed = [name for name, value in options.items() if value is not None and not (isinstance(value, (bool, int, float)) and value == 0)]
	if arithmetic == "puzzlelib" and changed:
		raise OptimizerError("%s: arithmetic='puzzlelib' reproduces PuzzleLib's own kernel, which has no %s: leave %s "
							 "at the default" % (optimizer, " or ".join(changed), ", ".join(changed)))
	return arithmetic


def flavourUpdate(param, grad, ms, mg, mom, learnRate, momentum, flavour: Flavour, stream=None, joined: bool = False) -> None:
	"""The flavour update: ``param``, ``grad`` and the states (``mg``, ``mom`` may be None) as TensorLists from the
	optimizer (their table is built once and cached on ``param``) or as single arrays. The states may be float32
	for 16-bit parameters (stateDtype). With ``flavour.arithmetic`` PuzzleLib's kernels run instead (float32 only),
	one call per tensor, or with ``joined`` one call over the tensors as one packed buffer (its global state)."""
	backend = getBackend()
	params = asTensorList(param, backend)
	lists = [asTensorList(t, backend) if t is not None else None for t in (grad, ms, mg, mom)]
	if params is not param:
		checkLooseArrays("flavourUpdate", params, lists, [params.dtype, np.dtype(np.float32)])

	table = params.flavourTable
	if table is None:
		table = params.flavourTable = FlavourTable(backend, params, *lists)

	stateDtype = lists[1].dtype
	if flavour.arithmetic:
		if params.dtype != np.float32 or stateDtype != np.float32:
			raise OptimizerTypeError("arithmetic='puzzlelib' runs PuzzleLib's kernels, which are float32 only: got %s "
									 "parameters with %s state" % (params.dtype, stateDtype))
		backend.puzzlelib(table.launchTable(learnRate, momentum), flavour, joined, stream=stream)
	else:
		backend.flavour(table.launchTable(learnRate, momentum), stateDtype, flavour, stream=stream)
	if params is not param:
		backend.synchronize([stream])  # the one-off table's device copy must outlive the launch


def quant8Update(param, grad, ms, mg, mom, learnRate, momentum, flavour: Flavour, stream=None) -> None:
	"""The update with 8-bit state (stateBits=8), any flavour: ``ms``, ``mg``, ``mom`` are QuantizedStates (mg, mom
	may be None), or TensorLists of them from the optimizer (the table is then built once and cached)."""
	backend = getBackend()
	params = asTensorList(param, backend)
	lists = [asTensorList(t, backend) if t is not None else None for t in (grad, ms, mg, mom)]
	if params is not param:
		if not all(isinstance(t, QuantizedState) for t in (ms, mg, mom) if t is not None):
			raise OptimizerTypeError("quant8Update: the states must be QuantizedStates (stateBits=8)")
		checkLooseArrays("quant8Update", params, lists, [QuantizedState.dtype])

	table = params.quant8Table
	if table is None:
		table = params.quant8Table = Quant8Table(backend, params, *lists)

	backend.quant8(table.launchTable(learnRate, momentum), flavour, stream=stream)
	if params is not param:
		backend.synchronize([stream])  # the one-off table's device copy must outlive the launch


def rmspropKer(dtype):
	"""The fused RMSProp update for ``dtype`` (float32 or float16) on the current backend, memoized."""
	backend = getBackend()
	kernel = _kernels.get((dtype, backend))

	if kernel is None:
		normalized = np.dtype(dtype)
		if normalized not in [np.dtype(d) for d, _ in backend.dtypesSupported()]:
			raise OptimizerTypeError("RMSProp supports %s tensors, not %s" % (
				", ".join(str(np.dtype(d)) for d, _ in backend.dtypesSupported()), normalized))
		kernel = _kernels[(dtype, backend)] = _makeRmspropKer(normalized, backend)

	return kernel
