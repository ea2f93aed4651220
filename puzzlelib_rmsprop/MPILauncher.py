"""Finding MPI: mpi4py, and the mpiexec that launches ranks (the mpich wheel beside this Python, or PATH's)."""
import os
import shutil
import sys

from .Errors import BackendError

MPIEXEC_ENV = "PUZZLELIB_RMSPROP_MPIEXEC"


def importMPI():
	try:
		from mpi4py import MPI
	except ImportError as e:
		raise BackendError("MPI is not available (pip install 'puzzlelib_rmsprop[mpi]'): %s" % e) from e
	return MPI


def mpiexec() -> str:
	"""The launcher: $PUZZLELIB_RMSPROP_MPIEXEC, the one installed beside this Python (the mpich wheel), or PATH's."""
	candidates = [os.environ.get(MPIEXEC_ENV), os.path.join(os.path.dirname(sys.executable), "mpiexec"), shutil.which("mpiexec")]
	for candidate in candidates:
		if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
			return candidate
	raise BackendError("no mpiexec found (pip install 'puzzlelib_rmsprop[mpi]', or set %s)" % MPIEXEC_ENV)
