"""RMSProp, as PuzzleLib 1.0.3 computes it, with a fused kernel per dtype."""
from typing import Optional

import numpy as np

from .Errors import OptimizerError, OptimizerTypeError
from .Kernels import MOMENTUM_NONE, MOMENTUM_TORCH, ARITHMETIC, ArithmeticRule, Flavour, checkArithmetic, flavourOf, flavourUpdate, quant8Update, rmspropKer
from .Optimizer import Optimizer
from .Quantized8 import stateZeros
from .Validation import Flag, Option, Range


class _StateDtype:
	"""None (the parameters' dtype) or float32."""

	def check(self, owner: str, name: str, value) -> None:
		try:
			ok = value is None or np.dtype(value) == np.float32
		except TypeError:
			ok = False
		if not ok:
			raise OptimizerTypeError("%s.%s must be None (the parameters' dtype) or np.float32, got %s" % (owner, name, _name(value)))

	@staticmethod
	def coerce(value):
		return None if value is None else np.dtype(value)


def _name(value) -> str:
	try:
		return str(np.dtype(value))
	except TypeError:
		return repr(value)


#: RMSProp's options PuzzleLib's kernel has no counterpart of: refused with arithmetic="puzzlelib"
PUZZLELIB_LACKS = ("momentum", "centered", "epsilonInSqrt", "initialMs", "weightDecay", "stateDtype")
#: the attributes flavour() is made of: assigning one forgets the cached Flavour
FLAVOUR_INPUTS = frozenset(("factor", "epsilon", "weightDecay", "centered", "epsilonInSqrt", "momentum", "arithmetic"))


class RMSProp(Optimizer):
	r"""RMSProp (Tieleman & Hinton), PuzzleLib's flavour.

	For every element, in float32 whatever the storage dtype, with ``g`` the variable's grad::

	    ms    <- factor * ms + (1 - factor) * g * g
	    param <- param + learnRate * var.learnRate * g / (sqrt(ms) + epsilon)

	``g`` is the descent direction: PuzzleLib's costs return ``target - pred`` (minus the loss gradient), so the
	step is *added*. ``ms`` starts at 0. A variable whose ``learnRate`` multiplier is 0 is frozen (its ``ms``
	is not updated either, as in PuzzleLib).

	Where frameworks differ (see pytorch/pytorch#23796 and google-deepmind/optax#532):

	- epsilon is added *outside* the square root, as in PuzzleLib and torch.optim.RMSprop; TensorFlow and the
	  formula on PuzzleLib's documentation page put it inside, ``sqrt(ms + epsilon)``;
	- ``ms`` starts at 0, as in PuzzleLib, torch and Keras; TF1's RMSPropOptimizer starts it at 1;
	- ``factor`` defaults to 0.9. The parameter table of PuzzleLib's documentation says 0.1, but that is a slip:
	  PuzzleLib's code, the same page's example and the recommended gamma are all 0.9.

	:param learnRate: step size (eta), default 1e-3
	:param factor: decay rate of the running mean of g^2 (gamma), default 0.9
	:param epsilon: added to the RMS to avoid division by zero, default 1e-5
	:param nodeinfo: an object for data-parallel training (``broadcastBuffer``, ``sumTensor``), or None
	:param skipNonFinite: keyword-only; skip (and count in ``skippedSteps``) a step whose grads hold inf or NaN

	Keyword-only options for the other frameworks' flavours (issue 7; the defaults are PuzzleLib's, keep its
	kernel and add no state):

	- ``momentum=0.0``: a ``mom`` buffer, torch's: ``mom = momentum * var.momRate * mom + g / denom``,
	  ``param += learnRate * mom``;
	- ``centered=False``: an ``mg`` buffer (running mean of g); the denominator uses ``ms - mg^2``;
	- ``epsilonInSqrt=False``: ``sqrt(ms + epsilon)`` (TF, Keras, the documentation page's formula) instead of
	  ``sqrt(ms) + epsilon`` (PuzzleLib, torch);
	- ``initialMs=0.0``: TF1's RMSPropOptimizer starts ms at 1;
	- ``weightDecay=0.0``: L2 folded into the gradient as torch does: ``g = grad - weightDecay * param``;
	- ``stateDtype=None``: ``np.float32`` keeps ms, mg and mom in float32 for float16 (or bfloat16) parameters;
	- ``stateBits=None``: 8 stores ms, mg and mom as 8-bit codes with one float32 scale per 256 elements, decoded,
	  updated in float32 and re-encoded in the same pass (about 0.26x the bytes of float32 state; ``stateNbytes``
	  tells). ms is an unsigned E5M3 float relative to its block's largest value, mg and mom E4M3: see Quantized8.
	  Unlike bitsandbytes' 8-bit RMSprop, every option works (bitsandbytes refuses centered and ignores momentum).
	  Where it differs from full-width state: with ``centered`` the variance ms - mg^2 is floored at ms / 32,
	  which 8-bit ms and mg cannot resolve below (issue 12);
	- ``shardState=False``: with an MPINodeInfo ``nodeinfo``, each rank keeps and updates only its shard of the
	  state, between the reduce-scatter of the grads and the all-gather of the parameters (issue 13);
	- ``arithmetic="ieee"``: each update in strict IEEE float32, equal bit for bit to the formula above evaluated in
	  NumPy float32. ``arithmetic="puzzlelib"`` evaluates it as PuzzleLib 1.0.3's own compiled kernel does (on the
	  CPU its expression built with its gcc flags, -ffast-math included, here at first use; on CUDA with
	  -use_fast_math), so that a run reproduces a PuzzleLib run on the same machine bit for bit: about 1 ulp from the
	  IEEE result per step, which a chaotic training run amplifies. This option changes only the arithmetic: where
	  PuzzleLib's semantics differ beyond it (multipliers and hooks in global state are lost in PuzzleLib, kept here)
	  ours stay. PuzzleLib has this kernel only for float32 and the default flavour: the other options above are
	  refused with it (docs/puzzlelib-arithmetic.md).

	To reproduce ``torch.optim.RMSprop(lr, alpha, eps, weight_decay, momentum, centered)``: ``RMSProp(learnRate=lr,
	factor=alpha, epsilon=eps, weightDecay=weight_decay, momentum=momentum, centered=centered)`` with our grad =
	minus torch's (tested bit-close over 50 steps for every combination). TF1 ``RMSPropOptimizer(lr, decay,
	momentum, epsilon, centered)``: add ``epsilonInSqrt=True, initialMs=1.0``; Keras ``RMSprop``: add
	``epsilonInSqrt=True``. TF and Keras keep lr inside their momentum buffer, which equals torch's form for a
	constant learning rate (up to rounding).

	Hyperparameters are checked whenever they are set: ``learnRate >= 0``, ``0 <= factor <= 1``, ``epsilon >= 0``
	(``factor=1`` and ``epsilon=0`` are accepted, as PuzzleLib and torch.optim accept them), all finite and within
	float32; a bad value raises OptimizerError and leaves the old one in place. Options set after construction go
	through the same rules: ``momentum > 0`` or ``centered=True`` after setupOn work where their state exists and are
	refused (pass them to the constructor) where it does not; ``stateBits``, ``stateDtype`` and ``shardState``
	cannot change after construction, nor ``initialMs`` after setupOn.
	"""

	attrRules = {**Optimizer.attrRules, "factor": Range(0, 1), "epsilon": Range(0)}
	optionRules = {**Optimizer.optionRules, "momentum": Option(Range(0), needsState="mom"),
				   "centered": Option(Flag(), needsState="mg"), "epsilonInSqrt": Option(Flag()),
				   "initialMs": Option(Range(0), fixedAfterSetup=True), "weightDecay": Option(Range(0)),
				   "stateDtype": Option(_StateDtype(), fixed=True), "arithmetic": Option(ArithmeticRule(), fixed=True)}

	optionalStates = frozenset({"mg", "mom"})

	def __init__(self, learnRate: float = 1e-3, factor: float = 0.9, epsilon: float = 1e-5, nodeinfo=None, *,
				 skipNonFinite: bool = False, momentum: float = 0.0, centered: bool = False,
				 epsilonInSqrt: bool = False, initialMs: float = 0.0, weightDecay: float = 0.0, stateDtype=None,
				 stateBits: Optional[int] = None, shardState: bool = False, arithmetic: str = "ieee"):
		super().__init__(nodeinfo, skipNonFinite=skipNonFinite, shardState=shardState)
		self.setStateBits(stateBits)

		self.setAttr("learnRate", learnRate)
		self.setAttr("factor", factor)
		self.setAttr("epsilon", epsilon)

		# every option through its rule (optionRules), as a later assignment would be
		for name, value in (("momentum", momentum), ("centered", centered), ("epsilonInSqrt", epsilonInSqrt),
							("initialMs", initialMs), ("weightDecay", weightDecay), ("stateDtype", stateDtype)):
			type(self).optionRules[name].rule.check(type(self).__name__, name, value)

		if stateDtype is not None and self.stateBits is not None:
			raise OptimizerError("RMSProp: give stateDtype or stateBits, not both (stateBits=8 stores 8-bit codes)")

		self.momentum, self.centered, self.epsilonInSqrt = momentum, centered, epsilonInSqrt
		self.initialMs, self.weightDecay, self.stateDtype = initialMs, weightDecay, stateDtype
		self.arithmetic = checkArithmetic("RMSProp", arithmetic, {
			"momentum": momentum, "centered": centered, "epsilonInSqrt": epsilonInSqrt, "initialMs": initialMs,
			"weightDecay": weightDecay, "stateDtype": stateDtype, "stateBits": stateBits, "shardState": shardState})

	def __setattr__(self, name: str, value) -> None:
		if self.__dict__.get("arithmetic") == "puzzlelib" and name in PUZZLELIB_LACKS:  # later, as at construction
			checkArithmetic(type(self).__name__, "puzzlelib", {name: value})
		super().__setattr__(name, value)
		if name in FLAVOUR_INPUTS:
			self.__dict__.pop("_flavour", None)

	@property
	def puzzlelibFlavour(self) -> bool:
		"""True with every option at its default: PuzzleLib's RMSProp, on the default kernel."""
		return bool(self.flavour().plain)

	def setupState(self, var):
		dtype, shape = self.stateDtype or var.data.dtype, var.data.shape
		state = {"ms": stateZeros(shape, dtype, self.stateBits, signed=False)}
		if self.initialMs:
			state["ms"].set(np.full(shape, self.initialMs, dtype=np.float32)) if self.stateBits else state["ms"].fill(self.initialMs)
		if self.centered:
			state["mg"] = stateZeros(shape, dtype, self.stateBits, signed=True)
		if self.momentum > 0.0:
			state["mom"] = stateZeros(shape, dtype, self.stateBits, signed=True)
		return state

	def updateVar(self, var, state, stream=None):
		if self.stateBits == 8:
			quant8Update(var.data, var.grad, state["ms"], state.get("mg"), state.get("mom"), self.learnRate * var.learnRate,
						 self.momentum * var.momRate, self.flavour(), stream=stream)
			return

		if self.arithmetic == "puzzlelib":
			flavourUpdate(var.data, var.grad, state["ms"], None, None, self.learnRate * var.learnRate, 0.0, self.flavour(),
						  stream=stream, joined=self.globalState)
			return

		if self.puzzlelibFlavour and state["ms"].dtype == var.data.dtype:
			rmspropKer(var.data.dtype)(
				var.data, var.grad, state["ms"], self.learnRate * var.learnRate, self.factor, self.epsilon, stream=stream
			)
			return

		flavourUpdate(var.data, var.grad, state["ms"], state.get("mg"), state.get("mom"), self.learnRate * var.learnRate,
					  self.momentum * var.momRate, self.flavour(), stream=stream)

	def flavour(self) -> Flavour:
		"""The options as the flavour kernels take them (built once per change of an option: this runs every step)."""
		flavour = self.__dict__.get("_flavour")
		if flavour is None:
			flavour = flavourOf(self.factor, self.epsilon, self.weightDecay, self.centered, self.epsilonInSqrt,
								MOMENTUM_TORCH if self.momentum > 0.0 else MOMENTUM_NONE, ARITHMETIC[self.arithmetic])
			object.__setattr__(self, "_flavour", flavour)
		return flavour

