"""A Graph of modules wired with ``module.node(parents...)``, as PuzzleLib's Graph (single-input nodes)."""
from typing import List, Optional, Union

from ..Modules.Module import Module, Node

__all__ = ["Graph", "Node"]


class Graph(Module):
	"""Runs its nodes in topological order forward and in reverse order backward."""

	def __init__(self, inputs: Union[Node, List[Node]], outputs: Union[Node, List[Node]], name: Optional[str] = None):
		super().__init__(name)
		inputs = inputs if isinstance(inputs, list) else [inputs]
		outputs = outputs if isinstance(outputs, list) else [outputs]
		if len(inputs) != 1 or len(outputs) != 1:
			raise ValueError("the reference Graph has one input and one output")

		self.order: List[Node] = []
		node = outputs[0]
		while True:
			self.order.insert(0, node)
			if not node.parents:
				break
			node = node.parents[0]

		if self.order[0] is not inputs[0]:
			raise ValueError("Graph: the output is not reachable from the input")
		self.modules = {node.module.name: node.module for node in self.order}

	def getVarTable(self, vartable=None, name: Optional[str] = None, root: bool = True):
		vartable = {} if vartable is None else vartable
		prefix = "" if root else name
		for mod in self.modules.values():
			mod.getVarTable(vartable, "%s%s." % (prefix, mod.name), root=False)
		return vartable

	def _split(self, name: str):
		modName, _, varName = name.partition(".")
		return self.modules[modName], varName

	def getVar(self, name: str):
		mod, varName = self._split(name)
		return mod.getVar(varName)

	def setVar(self, name: str, var) -> None:
		mod, varName = self._split(name)
		mod.setVar(varName, var)

	def zeroGradParams(self) -> None:
		for mod in self.modules.values():
			mod.zeroGradParams()

	def __call__(self, data):
		for node in self.order:
			data = node.module(data)
		self.data = data
		return data

	def backward(self, grad, updParamGrads: bool = True, momentum: float = 1.0):
		for node in reversed(self.order):
			grad = node.module.backward(grad, updParamGrads=updParamGrads, momentum=momentum)
		self.grad = grad
		return grad
