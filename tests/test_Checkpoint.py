"""Checkpoints: atomic against a real kill, and robust to truncated, corrupt and foreign files."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import ParamBag, randomGrads
from puzzlelib_rmsprop import OptimizerError, RMSProp

HERE = Path(__file__).resolve().parent


def loadBig(path):
	module = ParamBag({"a": ((2_000_000, ), np.float32), "b": ((2_000_000, ), np.float32),
					   "c": ((2_000_000, ), np.float32)}, name="big")
	opt = RMSProp()
	opt.setupOn(module, useGlobalState=True)
	opt.load(str(path))
	for name, state in opt.states.items():
		ms = state["ms"].get()
		assert ms.min() == ms.max() == opt.t, "state %s is torn: not all of version %d" % (name, opt.t)
	return opt.t


def leftovers(directory, path):
	return [name for name in os.listdir(directory) if name != path.name]


@pytest.mark.parametrize("stopAt, chunk", [(2, 1), (3, 7), (4, 20)])
def test_killed_inside_a_save_leaves_the_previous_checkpoint(tmp_path, stopAt, chunk):
	"""The kill lands inside save k's write for sure (the child stops there, after ``chunk`` MiB of 24): the file
	holds version k - 1, whole, and the torn temporary file beside it proves the save was interrupted."""
	path = tmp_path / "ckpt.hdf"
	child = subprocess.Popen([sys.executable, str(HERE / "checkpoint_child.py"), str(path), str(stopAt), str(chunk)],
							 stdout=subprocess.PIPE, text=True)
	lines = [child.stdout.readline().strip() for _ in range(stopAt)]
	child.send_signal(signal.SIGKILL)
	child.wait()
	assert lines[-1] == "inside %d" % stopAt, lines
	assert child.returncode == -signal.SIGKILL

	torn = leftovers(tmp_path, path)
	assert len(torn) == 1 and torn[0].endswith(".tmp"), torn
	assert (tmp_path / torn[0]).stat().st_size == chunk << 20 < path.stat().st_size  # cut mid-write
	assert loadBig(path) == stopAt - 1


def test_killed_at_random_moments_leaves_a_whole_checkpoint(tmp_path):
	"""Kills at random moments (mostly while the next file is built in memory; the test above kills inside the
	write): every time a whole version loads, and a temporary file left by a kill does not hurt the next run."""
	path = tmp_path / "ckpt.hdf"
	rng = np.random.default_rng(0)
	kills = []

	for trial in range(6):
		child = subprocess.Popen([sys.executable, str(HERE / "checkpoint_child.py"), str(path)],
								 stdout=subprocess.PIPE, text=True)
		first = child.stdout.readline()  # at least one whole save exists before the kill
		assert first.strip().isdigit(), "the child failed before its first save"
		time.sleep(rng.uniform(0.0, 0.15))
		child.send_signal(signal.SIGKILL)
		child.wait()
		kills.append(child.returncode)

		assert loadBig(path) >= 1
		assert all(name.endswith(".tmp") for name in leftovers(tmp_path, path))

	assert all(code == -signal.SIGKILL for code in kills)


def makeCheckpoint(path, rng, stateBits=None):
	bag = ParamBag({"a": ((6, 5), np.float32), "b": ((9, ), np.float16)}, rng=rng)
	opt = RMSProp(learnRate=0.01, stateBits=stateBits)
	opt.setupOn(bag)
	randomGrads(bag, rng)
	opt.update()
	opt.save(str(path))


@pytest.mark.parametrize("stateBits, count", [(None, 400), (8, 200)])
def test_fuzzed_checkpoints_load_exactly_or_are_refused(tmp_path, stateBits, count):
	"""Hundreds of damaged files, loaded in a child process so that a crash would show as a failure here; with
	8-bit state, damaged codes, scales and their attributes too. A damaged file that loads must load exactly what
	the good file holds; every foreign or hostile file is refused; counted apart."""
	good = tmp_path / "good.hdf"
	makeCheckpoint(good, np.random.default_rng(0), stateBits)

	command = [sys.executable, str(HERE / "fuzz_checkpoints.py"), str(good), str(tmp_path / "fuzz"), str(count)]
	result = subprocess.run(command + ([str(stateBits)] if stateBits else []), capture_output=True, text=True, cwd=HERE)
	assert result.returncode == 0, result.stderr[-3000:]

	summary = json.loads(result.stdout.strip().splitlines()[-1])
	assert summary["files"] == summary["damaged"] + summary["foreign"] and summary["damaged"] == count
	assert summary["unexpected"] == [], summary["unexpected"][:5]
	assert summary["damagedDifferent"] == [], summary
	assert summary["damagedLoaded"] + summary["damagedRejected"] == count, summary
	assert summary["damagedRejected"] > 0 and summary["damagedLoaded"] > 0, summary  # both outcomes exercised
	assert summary["foreignLoaded"] == [] and summary["foreignRejected"] == summary["foreign"], summary
	assert summary["changedOnError"] == 0


def test_truncated_file_message(tmp_path):
	good = tmp_path / "good.hdf"
	makeCheckpoint(good, np.random.default_rng(1))
	data = good.read_bytes()
	(tmp_path / "cut.hdf").write_bytes(data[:len(data) // 2])

	bag = ParamBag({"a": ((6, 5), np.float32), "b": ((9, ), np.float16)})
	opt = RMSProp()
	opt.setupOn(bag)
	with pytest.raises(OptimizerError, match="cut.hdf"):
		opt.load(str(tmp_path / "cut.hdf"))


def test_load_rejects_out_of_range_attributes_before_changing_anything(tmp_path):
	path = tmp_path / "bad.hdf"
	makeCheckpoint(path, np.random.default_rng(2))
	with h5py.File(path, "r+") as f:
		del f[".attrs"]["factor"]
		f[".attrs"]["factor"] = 1.5
		del f[".attrs"].attrs["sha256"]  # as in PuzzleLib's files: the range check must refuse it

	bag = ParamBag({"a": ((6, 5), np.float32), "b": ((9, ), np.float16)})
	opt = RMSProp(learnRate=0.5)
	opt.setupOn(bag)
	with pytest.raises(OptimizerError, match=r"attribute 'factor': checkpoint.factor must be in \[0, 1\], got 1.5"):
		opt.load(str(path))
	assert (opt.learnRate, opt.factor, opt.t) == (0.5, 0.9, 0)
	assert all(not s["ms"].get().any() for s in opt.states.values())


def test_no_temporary_files_left_after_normal_saves(tmp_path):
	makeCheckpoint(tmp_path / "x.hdf", np.random.default_rng(3))
	assert os.listdir(tmp_path) == ["x.hdf"]
