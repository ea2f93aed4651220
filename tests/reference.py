"""An independent NumPy reference for the tests: PuzzleLib's RMSProp formula, written out from its documentation
and its kernel, in float32 with the kernel's operation order (so agreement is bit for bit)."""
import numpy as np


def rmspropStep(param, grad, ms, learnRate, factor=0.9, epsilon=1e-5):
	"""New (param, ms) in the storage dtype; math in float32. ``learnRate`` is the optimizer's rate times the
	variable's multiplier, multiplied in double and rounded to float32, as PuzzleLib passes it to its kernel."""
	dtype = param.dtype
	p, g, m = (np.asarray(a).astype(np.float32) for a in (param, grad, ms))
	f, lr, eps = np.float32(factor), np.float32(learnRate), np.float32(epsilon)

	m = f * m + (np.float32(1.0) - f) * g * g
	p = p + lr * g / (np.sqrt(m) + eps)

	return p.astype(dtype), m.astype(dtype)


def weightDecay(grad, param, rate):
	"""PuzzleLib's weightDecayKer: grad - rate * param in float32."""
	return (grad - np.float32(rate) * param).astype(grad.dtype)
