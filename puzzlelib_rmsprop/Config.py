"""Process-wide settings, read when the backend is first used.

Like PuzzleLib's Config: set ``Config.backend = Config.Backend.cpu`` before the first use of an array or
an optimizer. The environment variable ``PUZZLELIB_RMSPROP_BACKEND`` (``cuda`` or ``cpu``) sets the default.
"""
import os
from typing import Optional


class Backend:
	"""The backend names ``Config.backend`` accepts."""
	cuda = "cuda"
	cpu = "cpu"


BACKEND_ENV = "PUZZLELIB_RMSPROP_BACKEND"

#: "cuda", "cpu" or None (CUDA when pycuda imports and a device exists, else CPU).
backend: Optional[str] = os.environ.get(BACKEND_ENV) or None

#: CUDA device ordinal used by the CUDA backend; None: PuzzleLib's Config.deviceIdx where PuzzleLib is imported (its
#: runGrid sets it in every child process), else 0.
deviceIdx: Optional[int] = None

#: The MPI rank's index among the ranks of its node, set by Grid.MPINodeInfo; with deviceIdx None, the CUDA device is
#: this modulo the visible devices (one device per rank). None outside a grid.
localRank: Optional[int] = None

#: Threads for the CPU kernels; 0 means OMP_NUM_THREADS where set, else every core this process may run on.
cpuThreads: int = 0
