"""What a backend is, declared once: the members the optimizer, the layouts, Grid and the kernels' Python side use.
CpuBackend and CudaBackend both satisfy it (tests/Backend/test_interface.py checks their members and signatures)."""
from typing import Callable, List, Optional, Protocol, Sequence, runtime_checkable

import numpy as np

from .TensorTable import LaunchTable


@runtime_checkable
class BackendInterface(Protocol):
	"""A backend: where the arrays live and the kernels run. ``f`` below is a Kernels.Flavour (its ``struct`` is the
	RMSPropFlavour every kernel family takes); ``stream`` is None or one of ``streams()``."""

	name: str         #: "cpu" or "cuda"
	deviceName: str   #: the device in words, for logs and benchmark reports
	GPUArray: type    #: the backend's array class (pycuda's GPUArray surface)

	def to_gpu(self, ary): """A new backend array holding a copy of ``ary``."""
	def empty(self, shape, dtype=np.float32): """An uninitialised backend array."""
	def zeros(self, shape, dtype=np.float32): """A zeroed backend array."""
	def fill(self, ary, value, stream=None) -> None: """Fills ``ary`` (any supported dtype) with ``value``."""
	def divide(self, ary, divisor: int, stream=None) -> None: """``ary /= divisor`` in place, in ``ary``'s dtype."""
	def dtypesSupported(self) -> List: """(dtype, atol) pairs, as PuzzleLib's gpuarray.dtypesSupported()."""
	def pointerOf(self, ary) -> int: """The address the kernels use for ``ary``."""
	def viewLike(self, template, view): """``view`` of a global-state buffer dressed as ``template``'s kind."""
	def zerosLike(self, template) -> Callable: """The allocator of global-state buffers for variables like ``template``."""
	def isOwnArray(self, ary) -> bool: """Whether ``ary`` lives where this backend computes."""
	def checkPlacement(self, name: str, ary) -> None: """Raises OptimizerError if the kernels cannot reach ``ary``."""
	def prepareTable(self, rows: np.ndarray, dtype) -> LaunchTable: """The rows where the kernels read them."""
	def refreshTable(self, table: LaunchTable) -> None: """Makes the kernels see rows rewritten in place."""
	def rmsprop(self, table: LaunchTable, f, stream=None) -> None: """PuzzleLib's RMSProp over TensorEntry rows."""
	def flavour(self, table: LaunchTable, stateDtype, f, stream=None) -> None: """Any flavour over FlavourEntry rows."""
	def quant8(self, table: LaunchTable, f, stream=None) -> None: """8-bit state, any flavour, over Quant8Entry rows."""
	def puzzlelib(self, table: LaunchTable, f, joined: bool, stream=None) -> None: """PuzzleLib's own kernels (arithmetic="puzzlelib")."""
	def anyNonFinite(self, tables: Sequence[LaunchTable]) -> bool: """Whether any grad of the tables is inf or NaN."""
	def decayGrad(self, grad, param, rate: float, stream=None) -> None: """grad -= rate * param (PuzzleLib's WeightDecay hook)."""
	def streams(self, count: int) -> List[Optional[object]]: """``count`` streams (None on the CPU)."""
	def synchronize(self, streams) -> None: """Waits for the streams (None: all the backend's work)."""
