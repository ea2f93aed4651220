"""The CUDA context the backend works in, made current on every thread that uses the backend.

A CUDA context is current per thread, and pycuda allocates and frees only in the context on top of its own
per-thread stack. So a thread with an empty stack gets the backend's context pushed on its first call, and popped
again when the thread ends (pycuda aborts the process if a thread ends with a context on its stack)."""
import functools
import threading

from ..Errors import BackendError


class _PushedUntilThreadEnds:
	"""Held in a thread-local: pushes ``context``, and pops it when the thread's locals are cleared at its end."""

	def __init__(self, context):
		self.context = context
		context.push()

	def __del__(self):
		self.context.pop()


class ThreadContexts:
	"""Makes ``context`` (a pycuda Context) current on each thread the first time it calls ``ensure()``."""

	def __init__(self, driver, context):
		self.driver, self.context = driver, context
		self._threads = threading.local()
		self._threads.ready = True  # the creating thread has it already

	def ensure(self) -> None:
		if getattr(self._threads, "ready", False):
			return
		current = self.driver.Context.get_current()
		if current is None:
			self._threads.pushed = _PushedUntilThreadEnds(self.context)
		elif current.handle != self.context.handle:
			raise BackendError("thread %r has another CUDA context current (0x%x) than the one puzzlelib_rmsprop's "
							   "arrays live in (0x%x)" % (threading.current_thread().name, current.handle, self.context.handle))
		self._threads.ready = True


def onBackendThread(method):
	"""Decorates a CudaBackend method: the backend's context is current on the calling thread first."""

	@functools.wraps(method)
	def wrapper(self, *args, **kwargs):
		self.contexts.ensure()
		return method(self, *args, **kwargs)

	return wrapper
