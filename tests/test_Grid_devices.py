"""One CUDA device per MPI rank: the rank's local index modulo the visible devices (a user's Config.deviceIdx wins),
ranks that see one device each through CUDA_VISIBLE_DEVICES (as SLURM and the usual wrappers give it), and every
rank failing when one cannot use CUDA while others do. The emulated driver gives each rank its devices
(tests/test_cuda_emulated.py runs this file there); on a GPU the ranks share device 0."""
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import runMpiJob
from puzzlelib_rmsprop import demo

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "cuda_emu"))
import emu  # noqa: E402

pytestmark = pytest.mark.mpi
emulated = pytest.mark.skipif(not emu.isEmulated(), reason="needs the emulated driver's devices (tests/test_cuda_emulated.py)")

#: sets each rank's own environment from RANK<local rank>_<NAME> variables, then runs the rank
WRAPPER = """#!/bin/sh
r=${MPI_LOCALRANKID:-${OMPI_COMM_WORLD_LOCAL_RANK:-0}}
for name in CUDA_VISIBLE_DEVICES CUDA_EMU_COMPUTE_CAPABILITY; do
	value=$(eval echo "\\${RANK${r}_$name-unset}")
	[ "$value" = unset ] || export "$name=$value"
done
exec "$@"
"""


def runRanks(launcher, tmp_path, deviceIdx=None, backend="cuda", **env):
	wrapper = tmp_path / "wrapper.sh"
	wrapper.write_text(WRAPPER)
	wrapper.chmod(0o755)
	environment = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
	environment.update(env)
	environment.pop("PUZZLELIB_RMSPROP_BACKEND", None)
	if backend:
		environment["PUZZLELIB_RMSPROP_BACKEND"] = backend
	command = [launcher, "-n", "2", str(wrapper), sys.executable, str(HERE / "grid_devices_rank.py"), str(tmp_path)]
	old = dict(os.environ)
	os.environ.clear()
	os.environ.update(environment)
	try:
		result = runMpiJob(command + ([str(deviceIdx)] if deviceIdx is not None else []), 600)
	finally:
		os.environ.clear()
		os.environ.update(old)
	assert result.returncode == 0, result.stderr[-3000:]
	return [json.loads((tmp_path / ("rank%d.json" % r)).read_text()) for r in range(2)]


def assertTrainedAlike(tmp_path):
	"""Both ranks hold the same parameters, those of one CPU process on the whole batch (to float32 rounding)."""
	ranks = [np.load(tmp_path / ("rank%d.npz" % r)) for r in range(2)]
	_, net = demo.train(iterations=10, report=lambda line: None)
	for var, names in net.getVarTable().items():
		np.testing.assert_array_equal(ranks[1][names[0]], ranks[0][names[0]])
		np.testing.assert_allclose(ranks[0][names[0]], var.data.get(), rtol=1e-4, atol=2e-5, err_msg=names[0])


@emulated
def test_one_visible_device_per_rank_trains_on_cuda_on_both(launcher, tmp_path):
	infos = runRanks(launcher, tmp_path, CUDA_EMU_DEVICES="2", RANK0_CUDA_VISIBLE_DEVICES="0", RANK1_CUDA_VISIBLE_DEVICES="1")
	assert [(i["backend"], i["device"], i["bus"]) for i in infos] == [("cuda", 0, "0000:01:00.0"), ("cuda", 0, "0000:02:00.0")]
	assertTrainedAlike(tmp_path)


@emulated
def test_ranks_take_their_local_index_on_a_node_with_a_device_each(launcher, tmp_path):
	infos = runRanks(launcher, tmp_path, CUDA_EMU_DEVICES="2")
	assert [(i["device"], i["bus"]) for i in infos] == [(0, "0000:01:00.0"), (1, "0000:02:00.0")]


def test_ranks_share_the_one_visible_device(launcher, tmp_path):
	"""Local index modulo the visible devices: two ranks, one device, both on it (on a GPU too)."""
	if not emu.isEmulated() and os.environ.get("PUZZLELIB_RMSPROP_BACKEND") != "cuda":
		pytest.skip("needs a CUDA device: the emulated driver's, or a GPU with PUZZLELIB_RMSPROP_BACKEND=cuda")
	infos = runRanks(launcher, tmp_path, CUDA_EMU_DEVICES="1")
	assert [(i["backend"], i["device"]) for i in infos] == [("cuda", 0), ("cuda", 0)]
	assertTrainedAlike(tmp_path)


@emulated
def test_a_deviceidx_the_user_set_wins(launcher, tmp_path):
	infos = runRanks(launcher, tmp_path, deviceIdx=1, CUDA_EMU_DEVICES="2")
	assert [(i["device"], i["bus"]) for i in infos] == [(1, "0000:02:00.0"), (1, "0000:02:00.0")]


@emulated
def test_a_rank_that_cannot_use_cuda_fails_every_rank(launcher, tmp_path):
	"""Automatic selection: rank 1's device is a 7.0, which nvcc 13 cannot target; it would fall back to the CPU
	while rank 0 uses CUDA. Both ranks get the BackendError, naming each rank's backend and why."""
	infos = runRanks(launcher, tmp_path, backend=None, CUDA_EMU_DEVICES="2", RANK1_CUDA_EMU_COMPUTE_CAPABILITY="7.0")
	for info in infos:
		message = info["error"]
		assert "cannot all train on one backend" in message and "rank 0: cuda" in message, message
		assert "rank 1: cpu (" in message and "compute capability 7.0" in message, message
	assert not list(tmp_path.glob("rank*.npz"))
