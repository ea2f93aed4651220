"""Saving to a path: durable (file and directory fsynced), safe on a full disk (a real tmpfs, in a subprocess so
that a crash fails the test), and faithful to the path (symlinks followed, mode kept, non-regular files and files
the process may not write refused, long names fine)."""
import errno
import json
import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import ParamBag, randomGrads
from puzzlelib_rmsprop import Checkpoint, OptimizerError, RMSProp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SPECS = {"a": ((6, 5), np.float32), "b": ((9, ), np.float16)}


def trained(seed=0):
	rng = np.random.default_rng(seed)
	bag = ParamBag(SPECS, rng=rng)
	opt = RMSProp(learnRate=0.01)
	opt.setupOn(bag)
	randomGrads(bag, rng)
	opt.update()
	return opt


def loadedMs(path):
	opt = RMSProp()
	opt.setupOn(ParamBag(SPECS))
	opt.load(str(path))
	return opt.t, opt.states["bag.a"]["ms"].get()


def test_save_fsyncs_the_file_before_the_rename_and_the_directory_after(tmp_path, monkeypatch):
	path = tmp_path / "ckpt.hdf"
	trained(1).save(str(path))
	oldInode = path.stat().st_ino
	synced, realFsync = [], os.fsync

	def fsync(fd):
		st = os.fstat(fd)
		synced.append(("dir" if stat.S_ISDIR(st.st_mode) else "file", st.st_ino, path.stat().st_ino))
		realFsync(fd)
	monkeypatch.setattr(os, "fsync", fsync)
	trained(2).save(str(path))

	newInode = path.stat().st_ino
	assert newInode != oldInode
	assert [kind for kind, _, _ in synced] == ["file", "dir"], synced
	(_, fileInode, nameAtFileSync), (_, dirInode, nameAtDirSync) = synced
	assert fileInode == newInode and nameAtFileSync == oldInode, "the file was not fsynced before the rename"
	assert dirInode == tmp_path.stat().st_ino and nameAtDirSync == newInode, "the directory was not fsynced after it"


@pytest.mark.parametrize("failAt", ["write", "fsync", "replace"])
def test_a_failed_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, failAt):
	path = tmp_path / "ckpt.hdf"
	trained(1).save(str(path))
	good = path.read_bytes()

	def fail(*args, **kwargs):
		raise OSError(errno.ENOSPC if failAt == "write" else errno.EIO, "injected")
	monkeypatch.setattr(os, failAt, fail)
	with pytest.raises(OSError, match="ckpt.hdf") as info:
		trained(2).save(str(path))
	monkeypatch.undo()

	assert info.value.errno in (errno.ENOSPC, errno.EIO)
	assert path.read_bytes() == good
	assert os.listdir(tmp_path) == ["ckpt.hdf"]


def test_a_short_write_is_continued(tmp_path, monkeypatch):
	"""os.write may write less than asked: the loop writes the rest (a file cut short would not load)."""
	realWrite = os.write
	monkeypatch.setattr(os, "write", lambda fd, data: realWrite(fd, bytes(data[:1000])))
	opt = trained(3)
	opt.save(str(tmp_path / "ckpt.hdf"))
	monkeypatch.undo()
	t, ms = loadedMs(tmp_path / "ckpt.hdf")
	assert t == 1
	np.testing.assert_array_equal(ms, opt.states["bag.a"]["ms"].get())


def test_a_symlink_is_followed_and_kept(tmp_path):
	(tmp_path / "runs").mkdir()
	target = tmp_path / "runs" / "ckpt-3.h5"
	trained(1).save(str(target))
	link = tmp_path / "latest.h5"
	link.symlink_to(Path("runs") / "ckpt-3.h5")

	opt = trained(2)
	opt.save(str(link))
	assert link.is_symlink() and os.readlink(link) == str(Path("runs") / "ckpt-3.h5")
	np.testing.assert_array_equal(loadedMs(target)[1], opt.states["bag.a"]["ms"].get())
	assert sorted(os.listdir(tmp_path / "runs")) == ["ckpt-3.h5"]


def test_an_existing_file_keeps_its_mode_and_a_new_one_gets_the_umask(tmp_path):
	path = tmp_path / "ckpt.hdf"
	trained(1).save(str(path))
	mask = os.umask(0o027)
	os.umask(mask)
	assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask

	os.chmod(path, 0o640)
	trained(2).save(str(path))
	assert stat.S_IMODE(path.stat().st_mode) == 0o640


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to give the file to another owner")
def test_an_existing_file_keeps_its_owner(tmp_path):
	path = tmp_path / "ckpt.hdf"
	trained(1).save(str(path))
	os.chown(path, 65534, 65534)
	trained(2).save(str(path))
	assert (path.stat().st_uid, path.stat().st_gid) == (65534, 65534)


def test_a_long_name_within_the_limit_works(tmp_path):
	path = tmp_path / ("c" * 250 + ".h5")
	trained(1).save(str(path))
	trained(2).save(str(path))
	assert os.listdir(tmp_path) == [path.name]


@pytest.mark.parametrize("kind", ["fifo", "chardev", "directory"])
def test_a_path_that_is_not_a_regular_file_is_refused(tmp_path, kind):
	path = tmp_path / "ckpt.hdf"
	if kind == "fifo":
		os.mkfifo(path)
	elif kind == "chardev":
		path.symlink_to("/dev/null")
	else:
		path.mkdir()
	with pytest.raises(OptimizerError, match="ckpt.hdf: it exists and is not a regular file"):
		trained(1).save(str(path))
	assert sorted(os.listdir(tmp_path)) == ["ckpt.hdf"]
	assert not os.path.isfile(path)


NOT_WRITABLE_CHILD = """
import os, sys
import numpy as np
from puzzlelib_rmsprop import RMSProp, Variable
from puzzlelib_rmsprop.Backend import gpuarray
from puzzlelib_rmsprop.Modules.Module import Module
path = sys.argv[1]
try:
	open(path, "w")
	sys.exit("open(path, 'w') worked: nothing to compare with")
except PermissionError:
	pass
m = Module("bag")
m.setVar("a", Variable(gpuarray.zeros((3, ), np.float32)))
opt = RMSProp()
opt.setupOn(m)
try:
	opt.save(path)
except PermissionError as e:
	assert path in str(e), e
	print("refused")
"""


def test_a_file_the_process_cannot_write_is_refused(tmp_path):
	"""As open(path, "w") would refuse it: run as an unprivileged user (root may write anything)."""
	directory = tempfile.mkdtemp(dir="/tmp")
	try:
		os.chmod(directory, 0o777)
		path = os.path.join(directory, "ckpt.hdf")
		trained(1).save(path)
		os.chmod(path, 0o444)
		good = Path(path).read_bytes()
		command = [sys.executable, "-c", NOT_WRITABLE_CHILD, path]
		env = dict(os.environ, PYTHONPATH=str(ROOT), PUZZLELIB_RMSPROP_BACKEND="cpu")
		if os.geteuid() == 0:
			os.chown(path, 0, 0)
			command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + command
		result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=directory)
		assert result.returncode == 0 and result.stdout.strip() == "refused", result.stderr[-2000:]
		assert Path(path).read_bytes() == good
		assert os.listdir(directory) == ["ckpt.hdf"]
	finally:
		for name in os.listdir(directory):
			os.unlink(os.path.join(directory, name))
		os.rmdir(directory)


FULL_DISK_CHILD = """
import json, os, sys
import numpy as np
from conftest import ParamBag, randomGrads
from puzzlelib_rmsprop import OptimizerError, RMSProp
directory = sys.argv[1]
path = os.path.join(directory, "ckpt.hdf")

def trained(specs, seed):
	rng = np.random.default_rng(seed)
	bag = ParamBag(specs, rng=rng)
	opt = RMSProp(learnRate=0.01)
	opt.setupOn(bag)
	randomGrads(bag, rng)
	opt.update()
	return opt

small, big = {"a": ((6, 5), np.float32)}, {"a": ((200, 100), np.float32)}
trained(small, 0).save(path)
good = open(path, "rb").read()
report = {"refused": [], "left": [], "sweep": [], "bad": []}
for seed in range(1, 4):  # saves that do not fit, one after another in one process
	try:
		trained(big, seed).save(path)
		report["refused"].append(None)
	except (OSError, OptimizerError) as e:
		report["refused"].append(getattr(e, "errno", None))
	report["left"].append(sorted(os.listdir(directory)))
report["sameAfterBig"] = open(path, "rb").read() == good

current, ms = small, None
for n in list(range(2000, 16001, 1000)) + list(range(16000, 1999, -1500)):  # around "just fits", both ways
	specs, before = {"a": ((n, ), np.float32)}, open(path, "rb").read()
	opt = trained(specs, n)
	try:
		opt.save(path)
	except (OSError, OptimizerError) as e:
		report["sweep"].append((n, getattr(e, "errno", None)))
		if open(path, "rb").read() != before or sorted(os.listdir(directory)) != ["ckpt.hdf"]:
			report["bad"].append((n, "a failed save changed the file or left a temporary"))
		continue
	report["sweep"].append((n, 0))
	other = RMSProp()
	other.setupOn(ParamBag(specs))
	try:
		other.load(path)
		same = other.t == 1 and np.array_equal(other.states["bag.a"]["ms"].get(), opt.states["bag.a"]["ms"].get())
	except OptimizerError as e:
		same = False
	if not same:
		report["bad"].append((n, "a save that returned normally wrote another file"))
	current = specs
with open(path, "rb") as f:
	good = f.read()

filler = os.path.join(directory, "filler")  # nearly full: the small save no longer fits either
fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
try:
	while True:
		os.write(fd, b"x" * 1024)
except OSError:
	pass
os.close(fd)
try:
	trained(small, 5).save(path)
	report["nearFull"] = None
except (OSError, OptimizerError) as e:
	report["nearFull"] = getattr(e, "errno", None)
report["sameAfterNearFull"] = open(path, "rb").read() == good
os.unlink(filler)

opt = trained(small, 6)
opt.save(path)
other = RMSProp()
other.setupOn(ParamBag(small))
other.load(path)
report["reloaded"] = bool(np.array_equal(other.states["bag.a"]["ms"].get(), opt.states["bag.a"]["ms"].get()))
report["finalFiles"] = sorted(os.listdir(directory))
print(json.dumps(report))
"""


@pytest.fixture
def smallDisk(tmp_path):
	"""A real 64 KiB tmpfs, mounted for the test (needs root; CI runs as root)."""
	directory = tmp_path / "disk"
	directory.mkdir()
	if os.geteuid() != 0:
		pytest.skip("the full-disk test mounts a 64 KiB tmpfs: it needs root (CI runs it as root)")
	mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(directory)], capture_output=True, text=True)
	if mounted.returncode != 0:
		if os.environ.get("CI"):
			pytest.fail("cannot mount a tmpfs as root in CI: %s" % mounted.stderr)
		pytest.skip("cannot mount a tmpfs here: %s" % mounted.stderr.strip())
	try:
		yield directory
	finally:
		subprocess.run(["umount", str(directory)], check=True)


def test_a_full_disk_never_replaces_a_good_checkpoint(smallDisk):
	"""On a real full disk: each save that does not fit raises ENOSPC (never a crash, never a torn file under the
	real name), leaves the good file byte-identical and no temporary file; a save that returns wrote exactly what
	was saved (a sweep of sizes around "just fits"); once there is room, saves work again."""
	result = subprocess.run([sys.executable, "-c", FULL_DISK_CHILD, str(smallDisk)], capture_output=True, text=True,
							cwd=HERE, env=dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + str(HERE)))
	assert result.returncode == 0, "the saving process died (%d): %s" % (result.returncode, result.stderr[-3000:])
	report = json.loads(result.stdout.strip().splitlines()[-1])
	assert report["refused"] == [errno.ENOSPC] * 3, report
	assert report["left"] == [["ckpt.hdf"]] * 3, report
	assert report["sameAfterBig"] and report["sameAfterNearFull"], report
	assert report["bad"] == [], report
	assert {code for _, code in report["sweep"]} == {0, errno.ENOSPC}, report  # some saves fit, some did not
	assert report["nearFull"] == errno.ENOSPC, report
	assert report["reloaded"] and report["finalFiles"] == ["ckpt.hdf"], report


def test_the_file_image_is_the_file(tmp_path):
	"""What save writes is exactly the in-memory image (nothing else touches the disk)."""
	opt = trained(4)
	path = tmp_path / "ckpt.hdf"
	opt.save(str(path))
	image = Checkpoint.fileImage("", opt.getAttrDict(), opt.states)
	assert path.read_bytes() == image
	with h5py.File(path, "r") as f:
		np.testing.assert_array_equal(f[".states/bag.a.ms"][()], opt.states["bag.a"]["ms"].get())
