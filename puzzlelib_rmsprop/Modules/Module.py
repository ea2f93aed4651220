"""The module protocol PuzzleLib's optimizers rely on: named Variables, getVarTable/getVar/setVar."""
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..Backend import gpuarray


class Module:
	"""A layer with named variables, ``__call__(data)`` forward and ``backward(grad)``."""

	def __init__(self, name: Optional[str] = None):
		self.name = name
		self.vars: Dict[str, object] = {}
		self.inData, self.data, self.grad = None, None, None

	def _localName(self, name: str) -> str:
		"""Accepts names as getVarTable() gives them ("<module>.<param>") as well as bare ones."""
		prefix = "%s." % self.name if self.name else ""
		return name[len(prefix):] if prefix and name.startswith(prefix) and name not in self.vars else name

	def setVar(self, name: str, var) -> None:
		name = self._localName(name)
		setattr(self, name, var.data)
		self.vars[name] = var

	def getVar(self, name: str):
		return self.vars[self._localName(name)]

	def getVarTable(self, vartable=None, name: Optional[str] = None, root: bool = True) -> Dict[object, List[str]]:
		"""{Variable: [names]}; names are "<module>.<param>" (a variable shared under two names lists both)."""
		vartable = {} if vartable is None else vartable
		prefix = ("%s." % self.name if self.name else "") if root else name

		for paramName, var in self.vars.items():
			vartable.setdefault(var, []).append(prefix + paramName)

		return vartable

	def zeroGradParams(self) -> None:
		for var in self.vars.values():
			if not var.hasUpdater:
				var.grad.fill(0)

	def node(self, *parents) -> "Node":
		"""Wires this module into a Graph after ``parents`` (PuzzleLib's ``Linear(...).node(prev)``)."""
		return Node(self, parents)

	def __call__(self, data):
		self.inData = data
		self.data = gpuarray.to_gpu(self.forward(data.get()))
		return self.data

	def backward(self, grad, updParamGrads: bool = True, momentum: float = 1.0):
		"""Computes the input gradient; adds the parameter gradients to var.grad (scaled previous by ``momentum``)."""
		hostGrad = grad.get()
		if updParamGrads:
			for name, paramGrad in self.paramGrads(self.inData.get(), hostGrad).items():
				var = self.vars[name]
				var.grad.set((momentum * var.grad.get() + paramGrad).astype(var.grad.dtype))

		self.grad = gpuarray.to_gpu(self.inputGrad(self.inData.get(), hostGrad))
		return self.grad

	def forward(self, x: np.ndarray) -> np.ndarray:
		raise NotImplementedError()

	def inputGrad(self, x: np.ndarray, grad: np.ndarray) -> np.ndarray:
		raise NotImplementedError()

	def paramGrads(self, x: np.ndarray, grad: np.ndarray) -> Dict[str, np.ndarray]:
		return {}


class Node:
	"""A module in a graph (Containers.Graph) and the nodes feeding it."""

	def __init__(self, module: Module, parents: Sequence["Node"]):
		if len(parents) > 1:
			raise ValueError("Node %r: the reference Graph supports one parent per node" % module.name)
		self.module, self.parents = module, list(parents)
