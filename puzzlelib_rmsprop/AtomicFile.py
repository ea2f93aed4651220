"""Replacing a file safely: a temporary file beside the target, written with checked writes, fsynced, renamed over
the target, then the directory fsynced. A failure at any point leaves the old file as it was (see docs/checkpoints.md)."""
import errno
import logging
import os
import stat
import tempfile

from .Errors import OptimizerError

logger = logging.getLogger("puzzlelib_rmsprop")

#: bytes per os.write call (a signal or a full disk interrupts a save between two of them)
WRITE_CHUNK = 1 << 20


def umaskMode() -> int:
	mask = os.umask(0o022)
	os.umask(mask)
	return 0o666 & ~mask


def replaceFile(path: str, image: bytes) -> None:
	"""Writes ``image`` to a temporary file next to ``path``'s target (a symlink is followed and kept), fsyncs it,
	renames it over the target and fsyncs the directory. Raises OSError naming ``path``; the old file is untouched."""
	target = os.path.realpath(path)
	directory = os.path.dirname(target)
	try:
		st = os.stat(target)
	except FileNotFoundError:
		st = None
	except OSError as e:
		raise OSError(e.errno, "cannot save the checkpoint: %s" % e.strerror, path) from e

	if st is not None:
		if not stat.S_ISREG(st.st_mode):
			raise OptimizerError("cannot save the checkpoint %s: it exists and is not a regular file" % path)
		try:  # refused as open(path, "w") would refuse it (without truncating anything)
			os.close(os.open(target, os.O_WRONLY))
		except OSError as e:
			raise OSError(e.errno, "cannot save the checkpoint: %s" % e.strerror, path) from e

	fd, tmpPath = None, None
	try:
		fd, tmpPath = tempfile.mkstemp(prefix=".ckpt-", suffix=".tmp", dir=directory)  # short: within NAME_MAX
		if st is None:
			os.fchmod(fd, umaskMode())
		else:
			os.fchmod(fd, stat.S_IMODE(st.st_mode))
			if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
				try:
					os.fchown(fd, st.st_uid, st.st_gid)
				except PermissionError:
					logger.info("checkpoint %s: cannot keep its owner %d:%d (not permitted)", path, st.st_uid, st.st_gid)

		view = memoryview(image)
		while view:
			written = os.write(fd, view[:WRITE_CHUNK])
			if written <= 0:
				raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
			view = view[written:]
		os.fsync(fd)
		os.close(fd)
		fd = None
		os.replace(tmpPath, target)
		tmpPath = None
		fsyncDirectory(directory)

	except OSError as e:
		raise OSError(e.errno, "cannot save the checkpoint: %s" % (e.strerror or e), path) from e
	finally:
		if fd is not None:
			os.close(fd)
		if tmpPath is not None:
			try:
				os.unlink(tmpPath)
			except OSError:
				pass


def fsyncDirectory(directory: str) -> None:
	"""After the rename: the directory entry too, or a power cut may lose the rename."""
	dirFd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
	try:
		os.fsync(dirFd)
	finally:
		os.close(dirFd)
