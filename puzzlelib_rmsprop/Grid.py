"""Data-parallel training on MPI, through PuzzleLib's ``nodeinfo`` protocol.

``RMSProp(nodeinfo=MPINodeInfo())`` with ``setupOn(net, useGlobalState=True)``: at setup the root's parameters
are broadcast to every rank; before every update each dtype's global gradient buffer is averaged over the ranks.
Launch with ``mpiexec -n N python train.py`` (or ``srun`` on a cluster), or from Python with ``runGrid``.

Averaging is a Reduce to rank 0 followed by a Bcast, not an Allreduce: the sum is then computed in one order,
so every rank gets bit-identical gradients and keeps bit-identical parameters. Every collective has a deadline
(``timeout``): a rank that dies or hangs makes the others raise GridError instead of waiting forever.
"""
import logging
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, List, Optional

import numpy as np

from . import Config
from .Backend import getBackend
from .Backend.PuzzleLibArrays import DeviceMemory, isPuzzleLibCudaArray
from .Errors import BackendError

logger = logging.getLogger("puzzlelib_rmsprop")

CUDA_AWARE_ENV = "PUZZLELIB_RMSPROP_CUDA_AWARE_MPI"
MPIEXEC_ENV = "PUZZLELIB_RMSPROP_MPIEXEC"
ABORT_GRACE_SECONDS = 1.0


class GridError(RuntimeError):
	"""A collective did not complete: another rank died, hung or called a different collective."""


def importMPI():
	try:
		from mpi4py import MPI
	except ImportError as e:
		raise BackendError("MPI is not available (pip install 'puzzlelib_rmsprop[mpi]'): %s" % e) from e
	return MPI


class MPINodeInfo:
	"""One rank of a data-parallel grid: ``index`` (rank), ``gridsize``, and PuzzleLib's collective calls.

	:param comm: the communicator; COMM_WORLD by default
	:param timeout: seconds any collective may take before GridError is raised
	:param abortOnError: an exception nobody catches on this rank aborts the whole MPI job (after printing it),
		as ``python -m mpi4py`` does; otherwise the other ranks would wait in their next collective, and this
		rank's own exit would wait in MPI_Finalize for a collective that never completes
	"""

	def __init__(self, comm=None, timeout: float = 600.0, abortOnError: bool = True):
		self.MPI = importMPI()
		self.comm = comm if comm is not None else self.MPI.COMM_WORLD
		self.index, self.gridsize = self.comm.Get_rank(), self.comm.Get_size()
		self.timeout = float(timeout)
		self._staging = {}

		if abortOnError:
			self._installAbortHook()

		# one GPU per rank on a node: the rank's index among the ranks sharing its node
		local = self.comm.Split_type(self.MPI.COMM_TYPE_SHARED)
		self.localIndex = local.Get_rank()
		local.Free()
		Config.deviceIdx = self.localIndex

	def _installAbortHook(self) -> None:
		previous, comm = sys.excepthook, self.comm

		def abortJob(kind, value, traceback):
			previous(kind, value, traceback)
			sys.stderr.flush()
			time.sleep(ABORT_GRACE_SECONDS)  # let the launcher forward the message before Abort kills the job
			comm.Abort(1)

		sys.excepthook = abortJob

	def _wait(self, request, what: str) -> None:
		"""Polls a non-blocking collective until done or past the deadline."""
		deadline, pause = time.monotonic() + self.timeout, 0.0
		while not request.Test():
			if time.monotonic() > deadline:
				raise GridError("rank %d of %d: %s did not complete within %g s; another rank has probably died or hung" % (
					self.index, self.gridsize, what, self.timeout))
			time.sleep(pause)
			pause = min(1e-3, pause + 1e-5)

	def _hostBuffer(self, name: str, ary):
		"""(buffer MPI can read and write, copy-back function) for ``ary``: host arrays as they are; device
		arrays directly with CUDA-aware MPI (set PUZZLELIB_RMSPROP_CUDA_AWARE_MPI=1), else via pinned staging."""
		if isinstance(ary, np.ndarray):
			return ary, None
		if isinstance(getattr(ary, "data", None), np.ndarray):  # PuzzleLib's CPUArray
			return ary.data, None
		if os.environ.get(CUDA_AWARE_ENV) == "1":
			# MPI reads the memory itself, outside the default stream: the kernels that wrote it must be done
			getBackend().synchronize([None])
			# mpi4py reads __cuda_array_interface__, which PuzzleLib's arrays lack: describe their memory for it
			return (ary if hasattr(ary, "__cuda_array_interface__") else DeviceMemory(ary)), None

		import pycuda.driver as driver
		staging = self._staging.get(name)
		if staging is None or staging.shape != tuple(ary.shape) or staging.dtype != ary.dtype:
			staging = self._staging[name] = driver.pagelocked_empty(tuple(ary.shape), ary.dtype)
			logger.info("MPINodeInfo: staging %r through pinned host memory (set %s=1 for CUDA-aware MPI)", name, CUDA_AWARE_ENV)
		if isPuzzleLibCudaArray(ary):  # its get() takes no destination
			staging[...] = ary.get()
		else:
			ary.get(staging)
		return staging, lambda: ary.set(staging)

	def broadcastBuffer(self, name: str, buffer) -> None:
		"""Overwrites ``buffer`` on every rank with rank 0's."""
		host, copyBack = self._hostBuffer(name, buffer)
		self._wait(self.comm.Ibcast(host, root=0), "the broadcast of %r" % name)
		if copyBack is not None:
			copyBack()

	def sumTensor(self, name: str, tensor) -> None:
		"""Replaces ``tensor`` on every rank by its mean over the ranks (PuzzleLib's name; it averages)."""
		host, copyBack = self._hostBuffer(name, tensor)
		if self.index == 0:
			self._wait(self.comm.Ireduce(self.MPI.IN_PLACE, host, op=self.MPI.SUM, root=0), "the reduction of %r" % name)
			if isinstance(host, np.ndarray):
				np.divide(host, host.dtype.type(self.gridsize), out=host)
			else:  # a device array under CUDA-aware MPI: divided on the device, done before MPI broadcasts it
				getBackend().divide(host, self.gridsize)
				getBackend().synchronize([None])
		else:
			self._wait(self.comm.Ireduce(host, None, op=self.MPI.SUM, root=0), "the reduction of %r" % name)
		self._wait(self.comm.Ibcast(host, root=0), "the broadcast of %r" % name)
		if copyBack is not None:
			copyBack()

	def meanValue(self, value: float) -> float:
		"""The mean of a number over the ranks."""
		buf = np.array([value], dtype=np.float64)
		self._wait(self.comm.Iallreduce(self.MPI.IN_PLACE, buf, op=self.MPI.SUM), "the mean of a value")
		return float(buf[0] / self.gridsize)


def mpiexec() -> str:
	"""The launcher: $PUZZLELIB_RMSPROP_MPIEXEC, the one installed beside this Python (the mpich wheel), or PATH's."""
	candidates = [os.environ.get(MPIEXEC_ENV), os.path.join(os.path.dirname(sys.executable), "mpiexec"), shutil.which("mpiexec")]
	for candidate in candidates:
		if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
			return candidate
	raise BackendError("no mpiexec found (pip install 'puzzlelib_rmsprop[mpi]', or set %s)" % MPIEXEC_ENV)


def runGrid(target: Callable, size: int, *args, timeout: Optional[float] = None, **kwargs) -> List[Any]:
	"""Runs ``target(nodeinfo, *args, **kwargs)`` on ``size`` MPI processes of this machine (PuzzleLib's runGrid,
	on MPI) and returns their return values by rank. ``target`` and the arguments must be picklable; an
	exception on any rank raises GridError here with that rank's output. The ranks get this process's sys.path,
	so a target importable here is importable there."""
	with tempfile.TemporaryDirectory(prefix="runGrid-") as directory:
		job = os.path.join(directory, "job.pickle")
		with open(job, "wb") as f:
			pickle.dump((target, args, kwargs), f)

		# the ranks import the target as this process would
		env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
		result = subprocess.run([mpiexec(), "-n", str(size), sys.executable, "-m", "puzzlelib_rmsprop.Grid", job],
								capture_output=True, text=True, timeout=timeout, env=env)
		if result.returncode != 0:
			raise GridError("runGrid: %d processes failed (exit %d):\n%s" % (size, result.returncode, (result.stderr or result.stdout)[-4000:]))

		with open(job + ".results", "rb") as f:
			return pickle.load(f)


def _runRank(job: str) -> None:
	with open(job, "rb") as f:
		target, args, kwargs = pickle.load(f)

	nodeinfo = MPINodeInfo()
	value = target(nodeinfo, *args, **kwargs)
	values = nodeinfo.comm.gather(value, root=0)
	if nodeinfo.index == 0:
		with open(job + ".results", "wb") as f:
			pickle.dump(values, f)


if __name__ == "__main__":
	_runRank(sys.argv[1])
