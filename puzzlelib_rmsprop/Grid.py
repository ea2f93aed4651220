"""Data-parallel training on MPI, through PuzzleLib's ``nodeinfo`` protocol.

``RMSProp(nodeinfo=MPINodeInfo())`` with ``setupOn(net, useGlobalState=True)``: at setup the root's parameters
are broadcast to every rank; before every update each dtype's global gradient buffer is averaged over the ranks.
Launch with ``mpiexec -n N python train.py`` (or ``srun`` on a cluster), or from Python with ``runGrid``.

Averaging is a reduce-scatter followed by an all-gather, in buckets (``ShardPlan``): every element is summed once,
by the one rank that owns it, and then copied to the others, so every rank gets bit-identical gradients and keeps
bit-identical parameters, at all-reduce traffic. 16-bit gradients are summed in float32 and rounded once. With
``shardState`` the optimizer updates only this rank's pieces between the two collectives (ZeRO stage 1). Every
collective has a deadline (``timeout``): a rank that dies or hangs makes the others raise GridError instead of
waiting forever.
"""
import logging
import os
import pickle
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from . import Config
from .Backend import Selector, getBackend
from .Backend.HostArray import hostArray
from .Backend.PuzzleLibArrays import DeviceMemory, isPuzzleLibCudaArray
from .Backend.SharedArray import alignmentStep
from .Errors import BackendError, OptimizerError
from .MPILauncher import MPIEXEC_ENV, importMPI, mpiexec  # noqa: F401 (Grid's public names)
from .Quantized8 import QUANT_BLOCK

logger = logging.getLogger("puzzlelib_rmsprop")

CUDA_AWARE_ENV = "PUZZLELIB_RMSPROP_CUDA_AWARE_MPI"
ABORT_GRACE_SECONDS = 1.0
#: how long a wait polls a collective without sleeping (see MPINodeInfo._wait)
SPIN_SECONDS = 1.0
#: the reduce-scatter and the all-gather run in buckets of this many bytes of the buffer (DDP's bucket_cap_mb)
DEFAULT_BUCKET_BYTES = 25 * 2 ** 20
#: every piece of a bucket is a multiple of this many elements: 8-bit state's blocks (256 elements per scale)
#: never straddle two ranks, whatever the optimizer's state, and one buffer has one plan
PIECE_UNIT = QUANT_BLOCK


class GridError(RuntimeError):
	"""A collective did not complete: another rank died, hung or called a different collective."""


class ShardPlan:
	"""How a flat buffer of ``size`` elements is cut for the collectives: buckets of about ``bucketBytes``, each cut
	into ``gridsize`` equal pieces; rank r owns piece r of every bucket. Pieces are multiples of ``unit`` elements and
	of 16 bytes (so 8-bit state blocks never straddle two ranks and every piece is 16-byte aligned); the last bucket
	is shorter, and the buffer is padded to ``padded`` elements so its pieces are equal too.

	``buckets[k] = (start, shardStart, pieceLen)``: bucket k covers ``[start, start + gridsize * pieceLen)`` of the
	buffer, rank r's piece starts at ``start + r * pieceLen``, and sits at ``shardStart`` in that rank's shard (its
	pieces, end to end: ``shardLen`` elements)."""

	def __init__(self, size: int, dtype, gridsize: int, unit: int = PIECE_UNIT, bucketBytes: int = DEFAULT_BUCKET_BYTES):
		itemsize = np.dtype(dtype).itemsize
		self.size, self.dtype, self.gridsize = int(size), np.dtype(dtype), int(gridsize)
		self.step = alignmentStep(dtype, unit)
		full = max(self.step, int(bucketBytes) // itemsize // self.gridsize // self.step * self.step)

		self.buckets: List[Tuple[int, int, int]] = []
		start = shard = 0
		while start < self.size:
			rest = -(-(self.size - start) // self.gridsize)
			piece = min(full, -(-rest // self.step) * self.step)
			self.buckets.append((start, shard, piece))
			start, shard = start + self.gridsize * piece, shard + piece
		self.padded, self.shardLen = start, shard

	def pieces(self, rank: int) -> List[Tuple[int, int, int]]:
		"""(buffer start, shard start, length) of ``rank``'s piece of every bucket."""
		return [(start + rank * piece, shard, piece) for start, shard, piece in self.buckets]


class _Buffer:
	"""A flat array as the collectives see it, padded to ``padded`` elements. ``mode`` says where MPI reads and
	writes: ``host`` (the array's own host memory), ``copy`` (a padded host copy), ``pinned`` (device memory
	through pinned host staging) or ``aware`` (device memory handed to a CUDA-aware MPI). ``pull``/``push`` move
	elements between the array and that memory where they differ."""

	def __init__(self, info: "MPINodeInfo", name: str, ary, padded: int):
		self.ary, self.n, self.dtype = ary, int(ary.size), np.dtype(ary.dtype)
		host = hostArray(ary, deviceCopy=False)
		if host is not None:
			self.flat = host.reshape(-1)
			self.mode = "host" if self.n == padded else "copy"
			self.host = self.flat if self.mode == "host" else info._scratch(("copy", name), padded, self.dtype)
		elif os.environ.get(CUDA_AWARE_ENV) == "1" and self.n == padded and self.dtype == np.float32:
			self.mode, self.host = "aware", None
		else:
			self.mode = "pinned"
			self.host = info._scratch(("pinned", name), padded, self.dtype, pinned=True)
			if os.environ.get(CUDA_AWARE_ENV) == "1":
				logger.info("MPINodeInfo: %r (%s) goes through pinned host memory: CUDA-aware MPI gets float32 device "
							"buffers of the grid's padded size only (16-bit sums are made in float32 on the host)", name, self.dtype)

	def mpi(self, a: int, b: int):
		"""What MPI reads and writes for elements [a, b). 16-bit host memory as uint16: MPI only copies it (16-bit
		sums are made in float32), and it has no bfloat16."""
		if self.mode != "aware":
			return self.host[a:b].view(np.uint16) if self.dtype.itemsize == 2 else self.host[a:b]
		view = self.ary[a:b]
		# mpi4py reads __cuda_array_interface__, which PuzzleLib's arrays lack: describe their memory for it
		return view if hasattr(view, "__cuda_array_interface__") else DeviceMemory(view)

	def pull(self, a: int = 0, b: Optional[int] = None) -> None:
		"""Makes elements [a, b) of MPI's memory current (before MPI reads them)."""
		b = self.n if b is None else min(b, self.n)
		if a >= b and self.mode != "aware":
			return
		if self.mode == "copy":
			self.host[a:b] = self.flat[a:b]
		elif self.mode == "aware":
			# MPI reads the memory itself, outside the default stream: the kernels that wrote it must be done
			getBackend().synchronize([None])
		elif self.mode == "pinned":
			whole = a == 0 and b == self.n
			source = self.ary if whole else self.ary.reshape(self.n)[a:b]
			if isPuzzleLibCudaArray(source):  # its get() takes no destination
				self.host[a:b] = source.get().reshape(-1)
			else:
				source.get(self.host[a:b].reshape(source.shape))

	def push(self, a: int = 0, b: Optional[int] = None) -> None:
		"""Writes elements [a, b) of MPI's memory back into the array (after MPI wrote them)."""
		b = self.n if b is None else min(b, self.n)
		if a >= b:
			return
		if self.mode == "copy":
			self.flat[a:b] = self.host[a:b]
		elif self.mode == "pinned":
			target = self.ary if a == 0 and b == self.n else self.ary.reshape(self.n)[a:b]
			target.set(self.host[a:b].reshape(target.shape))


class MPINodeInfo:
	"""One rank of a data-parallel grid: ``index`` (rank), ``gridsize``, and PuzzleLib's collective calls.

	:param comm: the communicator; COMM_WORLD by default
	:param timeout: seconds any collective may take before GridError is raised
	:param abortOnError: an exception nobody catches on this rank aborts the whole MPI job (after printing it),
		as ``python -m mpi4py`` does; otherwise the other ranks would wait in their next collective, and this
		rank's own exit would wait in MPI_Finalize for a collective that never completes
	:param bucketBytes: keyword-only; the reduce-scatter and the all-gather run in buckets of this many bytes of the
		buffer (default 25 MiB, as torch's DDP), so the update of one bucket overlaps the reduction of the next
	"""

	def __init__(self, comm=None, timeout: float = 600.0, abortOnError: bool = True, *,
				 bucketBytes: int = DEFAULT_BUCKET_BYTES):
		if isinstance(bucketBytes, bool) or not isinstance(bucketBytes, (int, np.integer)) or bucketBytes <= 0:
			raise OptimizerError("MPINodeInfo.bucketBytes must be a positive number of bytes, got %r" % (bucketBytes, ))
		self.MPI = importMPI()
		self.comm = comm if comm is not None else self.MPI.COMM_WORLD
		self.index, self.gridsize = self.comm.Get_rank(), self.comm.Get_size()
		self.timeout = float(timeout)
		self.bucketBytes = int(bucketBytes)
		self._scratches: Dict[Any, Any] = {}
		self._gathers: List[Tuple[Any, _Buffer, int, int, str]] = []

		if abortOnError:
			self._installAbortHook()

		# one GPU per rank on a node: the rank's index among the ranks sharing its node
		local = self.comm.Split_type(self.MPI.COMM_TYPE_SHARED)
		self.localIndex, self.localSize = local.Get_rank(), local.Get_size()
		local.Free()
		Config.localRank = self.localIndex  # its device: this modulo the visible ones, unless Config.deviceIdx is set
		if not Config.cpuThreads:  # the CPU kernels: the node's cores shared among its ranks, not all of them each
			Config.cpuThreads = max(1, len(os.sched_getaffinity(0)) // self.localSize)
		self._agreeOnBackend()

	def _agreeOnBackend(self) -> None:
		"""Selects the backend on every rank and raises BackendError on every rank unless all got the same one (a
		rank whose CUDA failed while others use it must not silently train on the CPU)."""
		try:
			backend, why = getBackend().name, Selector.fallbackReason
		except BackendError as e:
			backend, why = None, str(e)
		chosen = self.comm.allgather((backend, why))
		if len({name for name, _ in chosen}) > 1 or None in {name for name, _ in chosen}:
			ranks = "; ".join("rank %d: %s%s" % (rank, name or "no backend", " (%s)" % reason if reason else "")
							  for rank, (name, reason) in enumerate(chosen))
			raise BackendError("the ranks cannot all train on one backend, so none does: %s" % ranks)

	def _installAbortHook(self) -> None:
		previous, comm = sys.excepthook, self.comm

		def abortJob(kind, value, traceback):
			previous(kind, value, traceback)
			sys.stderr.flush()
			time.sleep(ABORT_GRACE_SECONDS)  # let the launcher forward the message before Abort kills the job
			comm.Abort(1)

		sys.excepthook = abortJob

	def _wait(self, request, what: str) -> None:
		"""Polls a non-blocking collective until done or past the deadline. MPI moves a collective forward only
		inside MPI calls (no progress thread): the first SPIN_SECONDS poll without sleeping (yielding the core now
		and then, for oversubscribed nodes), as a blocking MPI_Wait would; then the polls back off to 1 ms."""
		now = time.monotonic()
		deadline, spinUntil, pause, polls = now + self.timeout, now + SPIN_SECONDS, 0.0, 0
		while not request.Test():
			polls += 1
			if polls % 64:
				continue
			now = time.monotonic()
			if now > deadline:
				raise GridError("rank %d of %d: %s did not complete within %g s; another rank has probably died or hung" % (
					self.index, self.gridsize, what, self.timeout))
			if now < spinUntil:
				os.sched_yield()
			else:
				time.sleep(pause)
				pause = min(1e-3, pause + 1e-5)

	def _scratch(self, key, size: int, dtype, pinned: bool = False, device: bool = False):
		"""A reusable buffer of ``size`` elements: host, pinned host (for device staging) or device memory; one per
		role, name and dtype (a new size replaces it, so many tensor sizes do not pile buffers up)."""
		key = (key, np.dtype(dtype), pinned, device)
		buf = self._scratches.get(key)
		if buf is None or buf.size != int(size):
			if device:
				buf = getBackend().zeros((int(size), ), dtype=dtype)
				getBackend().synchronize([None])  # the zeroing runs on the stream: done before MPI writes the memory
			elif pinned:
				import pycuda.driver as driver
				buf = driver.pagelocked_zeros((int(size), ), dtype)
				logger.info("MPINodeInfo: staging %r through pinned host memory (set %s=1 for CUDA-aware MPI)", key[0][1], CUDA_AWARE_ENV)
			else:
				buf = np.zeros(int(size), dtype=dtype)
			self._scratches[key] = buf
		return buf

	def shardPlan(self, size: int, dtype) -> ShardPlan:
		"""The buckets and pieces of a flat buffer of ``size`` elements of ``dtype`` on this grid (cached); a buffer
		of the plan's ``padded`` size has the same plan."""
		key = ("plan", int(size), np.dtype(dtype))
		plan = self._scratches.get(key)
		if plan is None:
			plan = self._scratches[key] = ShardPlan(size, dtype, self.gridsize, PIECE_UNIT, self.bucketBytes)
		return plan

	def broadcastBuffer(self, name: str, buffer) -> None:
		"""Overwrites ``buffer`` on every rank with rank 0's."""
		buf = _Buffer(self, name, buffer, int(buffer.size))
		buf.pull()
		self._wait(self.comm.Ibcast(buf.mpi(0, buf.n), root=0), "the broadcast of %r" % name)
		buf.push()

	def sumTensor(self, name: str, tensor) -> None:
		"""Replaces ``tensor`` on every rank by its mean over the ranks (PuzzleLib's name; it averages): a
		reduce-scatter, then an all-gather of the means, bucket by bucket (the all-gather of bucket k runs while
		bucket k+1 is being reduced)."""
		plan = self.shardPlan(tensor.size, tensor.dtype)
		for _ in self.reduceScatter(name, tensor, plan, gather=True):
			pass
		self.finishGathers()

	def reduceScatter(self, name: str, ary, plan: ShardPlan, gather: bool = False) -> Iterator[int]:
		"""Starts the reduce-scatter of every bucket of ``ary`` (a flat buffer laid out by ``plan``), then yields each
		bucket's index k once this rank's piece of it holds the mean over the ranks (in ``ary``): the caller updates
		that piece while the next buckets are still being reduced. 16-bit buffers are summed in float32 and rounded
		once. With ``gather`` the means are all-gathered too (``finishGathers`` waits for them)."""
		buf = _Buffer(self, name, ary, plan.padded)
		buf.pull()
		sixteen = buf.dtype.itemsize < 4
		if sixteen:  # summed in float32: a float32 copy of the whole buffer
			send = self._scratch(("sum", name, buf.dtype.str), plan.padded, np.float32)
			np.copyto(send, buf.host, casting="unsafe")
			mpiSend = lambda a, b: send[a:b]
		else:
			mpiSend = buf.mpi
		recv = self._scratch(("recv", name, buf.dtype.str), plan.shardLen, np.float32 if sixteen else buf.dtype, device=buf.mode == "aware")

		requests = [self.comm.Ireduce_scatter_block(mpiSend(start, start + self.gridsize * piece), recv[shard:shard + piece],
													op=self.MPI.SUM) for start, shard, piece in plan.buckets]
		divisor = np.float32(self.gridsize)
		for k, ((start, shard, piece), request) in enumerate(zip(plan.buckets, requests)):
			self._wait(request, "the reduction of %r" % name)
			a = start + self.index * piece
			if buf.mode == "aware":
				self._deviceMean(ary[a:a + piece], recv[shard:shard + piece])
			elif sixteen:
				buf.host[a:a + piece] = recv[shard:shard + piece] / divisor  # the one rounding to 16 bits
			else:
				np.divide(recv[shard:shard + piece], divisor, out=buf.host[a:a + piece])
			if gather:  # this rank's piece is in MPI's memory already; finishGathers writes the whole bucket back
				self._startGather(name, buf, k, plan, pull=False)
			else:
				buf.push(a, a + piece)
			yield k

	def _deviceMean(self, target, total) -> None:
		"""``target = total / gridsize`` on the device, done before MPI or a kernel reads it (CUDA-aware MPI)."""
		backend = getBackend()
		backend.driver.memcpy_dtod(backend.pointerOf(target), backend.pointerOf(total), int(total.size) * total.dtype.itemsize)
		backend.divide(target, self.gridsize)
		backend.synchronize([None])

	def allGather(self, name: str, ary, plan: ShardPlan, k: int) -> None:
		"""Starts the all-gather of bucket ``k`` of ``ary``: every rank's piece of it goes to every rank (in place).
		``finishGathers`` waits for it."""
		self._startGather(name, _Buffer(self, name, ary, plan.padded), k, plan)

	def _startGather(self, name: str, buf: _Buffer, k: int, plan: ShardPlan, pull: bool = True) -> None:
		start, _, piece = plan.buckets[k]
		if pull:
			buf.pull(start + self.index * piece, start + (self.index + 1) * piece)
		request = self.comm.Iallgather(self.MPI.IN_PLACE, buf.mpi(start, start + self.gridsize * piece))
		self._gathers.append((request, buf, start, start + self.gridsize * piece, name))

	def finishGathers(self) -> None:
		"""Waits for every all-gather started, and writes what it brought into the arrays."""
		gathers, self._gathers = self._gathers, []
		for request, buf, a, b, name in gathers:
			self._wait(request, "the all-gather of %r" % name)
			buf.push(a, b)

	def anyTrue(self, flag: bool) -> bool:
		"""Whether ``flag`` is true on any rank (one decision for all)."""
		buf = np.array([1 if flag else 0], dtype=np.int32)
		self._wait(self.comm.Iallreduce(self.MPI.IN_PLACE, buf, op=self.MPI.MAX), "the vote on a flag")
		return bool(buf[0])

	def gatherToRoot(self, name: str, host: np.ndarray) -> Optional[np.ndarray]:
		"""Rank 0 gets every rank's ``host`` (same size everywhere), stacked by rank; the others get None."""
		out = np.empty((self.gridsize, ) + host.shape, dtype=host.dtype) if self.index == 0 else None
		self._wait(self.comm.Igather(np.ascontiguousarray(host), out, root=0), "the gathering of %r" % name)
		return out

	def broadcastValue(self, name: str, value: int) -> int:
		"""Rank 0's ``value`` (an int) on every rank."""
		buf = np.array([value], dtype=np.int64)
		self._wait(self.comm.Ibcast(buf, root=0), "the broadcast of %r" % name)
		return int(buf[0])

	def meanValue(self, value: float) -> float:
		"""The mean of a number over the ranks."""
		buf = np.array([value], dtype=np.float64)
		self._wait(self.comm.Iallreduce(self.MPI.IN_PLACE, buf, op=self.MPI.SUM), "the mean of a value")
		return float(buf[0] / self.gridsize)


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
