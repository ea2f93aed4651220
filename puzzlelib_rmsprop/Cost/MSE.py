"""Mean squared error, PuzzleLib's: error = |target - pred|^2 / (2 size), grad = (target - pred) / size."""
import numpy as np

from ..Backend import gpuarray


class MSE:
	"""``error, grad = mse(pred, target)``; grad is MINUS the loss gradient, as in PuzzleLib."""

	def __call__(self, pred, target):
		p, t = pred.get().astype(np.float32), target.get().astype(np.float32)
		if p.shape != t.shape:
			raise ValueError("MSE: pred is %s but target is %s" % (p.shape, t.shape))

		diff = t - p
		self.error = float(np.dot(diff.ravel(), diff.ravel()) / (2.0 * diff.size))
		self.grad = gpuarray.to_gpu((diff / diff.size).astype(pred.dtype))
		return self.error, self.grad
