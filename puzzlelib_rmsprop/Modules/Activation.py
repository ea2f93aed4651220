"""Element-wise activations (relu here, as in PuzzleLib's ``Activation(relu)``)."""
from typing import Optional

import numpy as np

from .Module import Module

relu = "relu"


class Activation(Module):
	def __init__(self, activation: str = relu, name: Optional[str] = None):
		super().__init__(name)
		if activation != relu:
			raise ValueError("Activation: only relu is provided, got %r" % activation)
		self.activation = activation

	def forward(self, x):
		return np.maximum(x, 0).astype(x.dtype)

	def inputGrad(self, x, grad):
		return (grad * (x > 0)).astype(grad.dtype)
