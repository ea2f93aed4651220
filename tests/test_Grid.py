"""Data-parallel training on MPI (mpich from PyPI): equal to one process, identical on every rank, and a dead
or hung rank fails the job in bounded time."""
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import requireTool, runMpiJob
from test_Sharding import ATOL as SHARDING_ATOL  # ranks against one process: only the order of the float32 sums differs
from puzzlelib_rmsprop import demo

HERE = Path(__file__).resolve().parent
pytestmark = pytest.mark.mpi

#: "at once": the job ends within this many seconds of the rank's death, a quarter of the 20 s collective deadline the
#: others would otherwise wait out (measured 0.1 s)
AT_ONCE = 5.0


def runRanks(launcher, n, mode, out, timeout=600.0, limit=90):
	"""Runs the ranks; past ``limit`` seconds kills the whole process group and fails (the job hung)."""
	start = time.monotonic()
	result = runMpiJob([launcher, "-n", str(n), sys.executable, str(HERE / "grid_rank.py"), mode, str(out), str(timeout)], limit)
	return result, time.monotonic() - start


@pytest.mark.parametrize("n", [2, 3])
def test_data_parallel_equals_single_process(launcher, n, tmp_path):
	result, _ = runRanks(launcher, n, "train", tmp_path)
	assert result.returncode == 0, result.stderr[-3000:]

	errors, net = demo.train(iterations=30, report=lambda line: None)
	single = {names[0]: var.data.get() for var, names in net.getVarTable().items()}
	ranks = [np.load(tmp_path / ("rank%d.npz" % r)) for r in range(n)]

	for rank in ranks:
		# every rank holds exactly rank 0's parameters: the averaged gradients are bit-identical everywhere
		for name in single:
			np.testing.assert_array_equal(rank[name], ranks[0][name])
		np.testing.assert_array_equal(rank["errors"], ranks[0]["errors"])

	# and they match one process on the whole batch within test_Sharding's ATOL (1e-5 absolute, docs/tolerances.md):
	# the only difference is the order of the float32 sums of the gradient. Every parameter and all 30 errors;
	# measured at most 4.6e-6 (fc1.W, 2 ranks) and 4.6e-6 on the errors. A wrong mean or a lost update moves them
	# by about lr = 1e-3 per step.
	for name, w in single.items():
		np.testing.assert_allclose(ranks[0][name], w, rtol=0, atol=SHARDING_ATOL, err_msg=name)
	assert len(ranks[0]["errors"]) == len(errors) == 30
	np.testing.assert_allclose(ranks[0]["errors"], errors, rtol=0, atol=SHARDING_ATOL)


@pytest.mark.parametrize("mode", ["die", "die-shard"])
def test_dead_rank_fails_the_job(launcher, tmp_path, mode):
	result, seconds = runRanks(launcher, 3, mode, tmp_path, timeout=20)
	ended = time.time()
	assert result.returncode != 0 and seconds < 60
	assert "rank0.npz" not in os.listdir(tmp_path)
	died = float((tmp_path / "died").read_text())
	assert ended - died < AT_ONCE, "the job ended %.1f s after rank 1 died" % (ended - died)
	# mpich's launcher sees the dead rank and ends the others at once (exit code 7 is the dead rank's own); with a
	# launcher that did not, the others would stop at the collective deadline (test_hung_rank_gives_a_clear_error)
	assert result.returncode in (7, 9, 137, -9), result.returncode


@pytest.mark.parametrize("mode", ["hang", "hang-shard"])
def test_hung_rank_gives_a_clear_error(launcher, tmp_path, mode):
	result, seconds = runRanks(launcher, 2, mode, tmp_path, timeout=3)
	assert result.returncode != 0 and seconds < 60
	assert "rank 0 of 2: the reduction of 'grad' did not complete within 3 s; another rank has probably died or hung" in result.stdout + result.stderr


def test_run_grid_returns_every_rank(launcher):
	from puzzlelib_rmsprop.Grid import runGrid
	import grid_targets

	assert runGrid(grid_targets.rankAndMean, 3, 10.0) == [(r, 3, 11.0) for r in range(3)]


@pytest.mark.puzzlelib
@pytest.mark.parametrize("n", [2, 3])
def test_node_info_on_puzzlelib_arrays(launcher, puzzlelib, n):
	"""MPINodeInfo on PuzzleLib's CPUArrays on n ranks (on one the mean is the identity, so a no-op would pass
	there): every rank ends with the float64 mean of the ranks' gradients within ulp(sum |x|) (n - 1 float32
	additions, each off by at most half an ulp of sum |x|, then the division by n, off by half an ulp of the mean),
	every rank the same bits, and rank 0's buffer everywhere."""
	from puzzlelib_rmsprop.Grid import runGrid
	import grid_targets

	results = runGrid(grid_targets.puzzlelibArrays, n, timeout=300)
	sent = np.stack([r[0] for r in results]).astype(np.float64)
	mean = sent.mean(axis=0)
	bound = np.spacing(np.abs(sent).sum(axis=0).astype(np.float32)).astype(np.float64)
	assert not np.array_equal(results[0][1], results[0][0]), "the mean must change a rank's gradient"
	for rank, (_, got, buffer) in enumerate(results):
		np.testing.assert_array_equal(got, results[0][1], err_msg="rank %d" % rank)
		assert (np.abs(got.astype(np.float64) - mean) <= bound).all(), "rank %d: off the mean by %g" % (
			rank, np.max(np.abs(got - mean) - bound))
		np.testing.assert_array_equal(buffer, np.full(7, 1.0, np.float32), err_msg="rank %d" % rank)


def test_demo_option_runs_data_parallel(launcher):
	result = subprocess.run([sys.executable, "-m", "puzzlelib_rmsprop.demo", "--nodes", "2", "--iterations", "10"],
							capture_output=True, text=True, timeout=120)
	assert result.returncode == 0, result.stderr[-3000:]
	assert "data-parallel on 2 MPI processes" in result.stdout
	assert result.stdout.count("Iteration #10 error: ") == 1


def test_single_rank_node_info():
	from puzzlelib_rmsprop.Grid import importMPI, MPINodeInfo
	try:
		importMPI()
	except Exception as e:  # noqa: BLE001
		requireTool("MPI (mpi4py) unavailable: %s" % e)

	info = MPINodeInfo()
	ary = np.arange(5, dtype=np.float32)
	info.sumTensor("x", ary)
	info.broadcastBuffer("x", ary)
	np.testing.assert_array_equal(ary, np.arange(5, dtype=np.float32))
	assert (info.index, info.gridsize, info.meanValue(2.5)) == (0, 1, 2.5)
