"""RMSProp, as PuzzleLib 1.0.3 computes it, with a fused kernel per dtype."""
from .Backend import gpuarray
from .Kernels import rmspropKer
from .Optimizer import Optimizer
from .Validation import Range


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

	Hyperparameters are checked whenever they are set: ``learnRate >= 0``, ``0 <= factor < 1``, ``epsilon > 0``,
	NaN nowhere; a bad value raises OptimizerError and leaves the old one in place.
	"""

	attrRules = {**Optimizer.attrRules, "factor": Range(0, 1, highOpen=True), "epsilon": Range(0, lowOpen=True)}

	def __init__(self, learnRate: float = 1e-3, factor: float = 0.9, epsilon: float = 1e-5, nodeinfo=None, *,
				 skipNonFinite: bool = False):
		super().__init__(nodeinfo, skipNonFinite=skipNonFinite)

		self.setAttr("learnRate", learnRate)
		self.setAttr("factor", factor)
		self.setAttr("epsilon", epsilon)

	def setupState(self, var):
		return {"ms": gpuarray.zeros(var.data.shape, dtype=var.data.dtype)}

	def updateVar(self, var, state, stream=None):
		rmspropKer(var.data.dtype)(
			var.data, var.grad, state["ms"], self.learnRate * var.learnRate, self.factor, self.epsilon, stream=stream
		)

