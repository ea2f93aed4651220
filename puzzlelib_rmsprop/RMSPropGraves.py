"""RMSPropGraves, as PuzzleLib 1.0.3 computes it (Graves 2013, arXiv:1308.0850, eq. 38-41)."""
from typing import Optional

from .Kernels import ARITHMETIC, MOMENTUM_IN_LR, ArithmeticRule, checkArithmetic, flavourOf, flavourUpdate, quant8Update
from .Optimizer import Optimizer
from .Quantized8 import stateZeros
from .Validation import Option, Range


class RMSPropGraves(Optimizer):
	r"""Centered RMSProp with momentum, epsilon inside the square root, PuzzleLib's RMSPropGraves exactly.

	Per element, in float32, with ``g`` the descent direction (PuzzleLib's sign convention)::

	    ms    <- alpha * ms + (1 - alpha) * g * g
	    mg    <- alpha * mg + (1 - alpha) * g
	    delta <- momRate * var.momRate * delta + learnRate * var.learnRate * g / sqrt(ms - mg * mg + epsilon)
	    param <- param + delta

	States ``mg``, ``ms``, ``delta`` start at 0 and are saved under those names, as PuzzleLib saves them.
	``stateBits=8`` and ``shardState=True`` (keyword-only) work as in RMSProp: 8-bit state (ms unsigned E5M3, mg and
	delta E4M3, centered variance floored at ms / 32), and each rank's shard of the state under MPI.

	``arithmetic="puzzlelib"`` (keyword-only; default ``"ieee"``, strict IEEE float32) evaluates the update as
	PuzzleLib 1.0.3's compiled rmspropGravesKer does (its gcc flags with -ffast-math on the CPU, -use_fast_math on
	CUDA), so that a run reproduces PuzzleLib's bit for bit on the same machine; float32 only, and not with
	``stateBits`` or ``shardState``. It changes only the arithmetic: PuzzleLib's other semantics (multipliers and
	hooks lost in global state) stay ours (docs/puzzlelib-arithmetic.md).
	"""

	attrRules = {**Optimizer.attrRules, "alpha": Range(0, 1, highOpen=True), "momRate": Range(0, 1, highOpen=True),
				 "epsilon": Range(0, lowOpen=True)}
	optionRules = {**Optimizer.optionRules, "arithmetic": Option(ArithmeticRule(), fixed=True)}

	def __init__(self, learnRate: float = 1e-4, alpha: float = 0.95, momRate: float = 0.9, epsilon: float = 1e-4,
				 nodeinfo=None, *, skipNonFinite: bool = False, stateBits: Optional[int] = None, shardState: bool = False,
				 arithmetic: str = "ieee"):
		super().__init__(nodeinfo, skipNonFinite=skipNonFinite, shardState=shardState)
		self.setStateBits(stateBits)

		self.setAttr("learnRate", learnRate)
		self.setAttr("alpha", alpha)
		self.setAttr("momRate", momRate)
		self.setAttr("epsilon", epsilon)
		self.arithmetic = checkArithmetic("RMSPropGraves", arithmetic, {"stateBits": stateBits, "shardState": shardState})

	def setupState(self, var):
		return {key: stateZeros(var.data.shape, var.data.dtype, self.stateBits, signed=key != "ms")
				for key in ("mg", "ms", "delta")}

	def updateVar(self, var, state, stream=None):
		flavour = flavourOf(self.alpha, self.epsilon, centered=True, epsilonInSqrt=True, momentumMode=MOMENTUM_IN_LR,
							 arithmetic=ARITHMETIC[self.arithmetic])
		update = quant8Update if self.stateBits == 8 else flavourUpdate
		extra = {"joined": self.globalState} if flavour.arithmetic else {}
		update(var.data, var.grad, state["ms"], state["mg"], state["delta"], self.learnRate * var.learnRate,
					  self.momRate * var.momRate, flavour, stream=stream, **extra)
