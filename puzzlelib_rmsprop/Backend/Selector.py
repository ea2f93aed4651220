"""Chooses the backend once, on first use: Config.backend / PUZZLELIB_RMSPROP_BACKEND, else CUDA if it works."""
import logging
import threading
from typing import Optional

from .. import Config
from ..Errors import BackendError
from .Interface import BackendInterface

logger = logging.getLogger("puzzlelib_rmsprop")

_lock = threading.Lock()
_backend = None

#: why automatic selection fell back to the CPU (None: it did not)
fallbackReason: Optional[str] = None


def _create(name):
	if name == Config.Backend.cpu:
		from .CpuBackend import CpuBackend
		return CpuBackend()

	from . import CudaBackend
	return CudaBackend.create()


def _select():
	name = Config.backend
	if name is not None:
		name = str(name).strip().lower()
		if name not in (Config.Backend.cuda, Config.Backend.cpu):
			raise BackendError("Config.backend (or %s) must be 'cuda' or 'cpu', got %r" % (Config.BACKEND_ENV, Config.backend))

		try:
			return _create(name)
		except BackendError as e:
			raise BackendError("backend %r was requested but cannot be used: %s" % (name, e)) from e

	global fallbackReason
	try:
		return _create(Config.Backend.cuda)
	except BackendError as e:
		from .CudaBuild import UnusableDevice
		fallbackReason = str(e)
		# a GPU the kernels cannot be built for is worth a warning; no pycuda, driver or device is the CPU's normal case
		log = logger.warning if isinstance(e, UnusableDevice) else logger.info
		log("CUDA backend unavailable (%s); using the CPU", e)
		return _create(Config.Backend.cpu)


def getBackend() -> BackendInterface:
	"""The process's backend, chosen and logged on the first call."""
	global _backend

	if _backend is None:
		with _lock:
			if _backend is None:
				backend = _select()
				logger.info("puzzlelib_rmsprop backend: %s on %s", backend.name, backend.deviceName)
				_backend = backend

	return _backend


def resetBackend() -> None:
	"""Forgets the chosen backend so the next use selects again (for tests that switch Config.backend)."""
	global _backend, fallbackReason
	with _lock:
		_backend, fallbackReason = None, None
