"""A fully connected layer, y = x W + b, with PuzzleLib's shapes (W is insize x outsize)."""
from typing import Optional

import numpy as np

from ..Backend import gpuarray
from ..Variable import Variable
from .Module import Module


class Linear(Module):
	def __init__(self, insize: int, outsize: int, useBias: bool = True, name: Optional[str] = None, dtype=np.float32):
		super().__init__(name)
		self.useBias = useBias

		limit = np.sqrt(6.0 / (insize + outsize))  # Xavier uniform, PuzzleLib's default scheme
		self.setVar("W", Variable(gpuarray.to_gpu(np.random.uniform(-limit, limit, (insize, outsize)).astype(dtype))))
		if useBias:
			self.setVar("b", Variable(gpuarray.zeros((outsize, ), dtype=dtype)))

	def forward(self, x):
		y = x @ self.vars["W"].data.get()
		return y + self.vars["b"].data.get() if self.useBias else y

	def inputGrad(self, x, grad):
		return grad @ self.vars["W"].data.get().T

	def paramGrads(self, x, grad):
		grads = {"W": x.T @ grad}
		if self.useBias:
			grads["b"] = grad.sum(axis=0)
		return grads
