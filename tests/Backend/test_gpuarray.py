"""The Backend.gpuarray shim and backend selection."""
import os
import subprocess
import sys

import numpy as np
import pytest

from puzzlelib_rmsprop.Backend import getBackend, gpuarray


def test_array_surface():
	host = np.arange(12, dtype=np.float32).reshape(3, 4)
	ary = gpuarray.to_gpu(host)
	assert isinstance(ary, gpuarray.GPUArray)
	assert (ary.shape, ary.dtype, ary.size, ary.nbytes) == ((3, 4), np.float32, 12, 48)

	host[0, 0] = 99  # to_gpu copies
	assert ary.get()[0, 0] == 0

	flat = ary.ravel()
	flat.fill(2)  # ravel is a view, as on the GPU
	np.testing.assert_array_equal(ary.get(), np.full((3, 4), 2, np.float32))

	ary.reshape(4, 3).set(np.ones((4, 3), np.float32))
	np.testing.assert_array_equal(ary.get(), np.ones((3, 4), np.float32))
	with pytest.raises(ValueError, match="set|same size"):  # ours says "set", pycuda's "must be the same size"
		ary.set(np.ones(5, np.float32))

	assert not gpuarray.zeros((2, 2), np.float16).get().any()
	assert gpuarray.empty((5, ), np.float32).shape == (5, )
	from puzzlelib_rmsprop.Backend.dtypes import bfloat16
	expected = [np.float32, np.float16] + ([bfloat16] if bfloat16 is not None else [])
	assert [np.dtype(d) for d, _ in gpuarray.dtypesSupported()] == [np.dtype(d) for d in expected]
	assert bfloat16 is not None or not os.environ.get("CI"), "ml_dtypes is part of the test setup"


def test_shared_array_views():
	sh = gpuarray.SharedArray(np.float32)
	sh.register((2, 3), np.float32, "a")
	sh.register((4, ), np.float32, "b")
	sh.build()

	# "b" starts on the next 16-byte boundary after "a"'s 24 bytes, as in PuzzleLib's CUDA SharedArray
	assert sh.ary.shape == (12, ) and not sh.ary.get().any()
	sh["b"].set(np.arange(4, dtype=np.float32))
	sh["a"].fill(7)
	np.testing.assert_array_equal(sh.ary.get(), [7] * 6 + [0, 0] + [0, 1, 2, 3])


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_shared_array_blocks_are_16_byte_aligned(dtype):
	sizes = [7, 1, 0, 13, 8, 3]
	sh = gpuarray.SharedArray(dtype)
	for i, n in enumerate(sizes):
		sh.register((n, ), dtype, "v%d" % i)
	sh.build()

	pointer = getBackend().pointerOf
	for i, n in enumerate(sizes):
		if n > 0:
			assert (pointer(sh["v%d" % i]) - pointer(sh.ary)) % 16 == 0, "block v%d" % i
	assert sh.ary.nbytes % 16 == 0 and not sh.ary.get().any(), "padding is zeroed too"

	with pytest.raises(TypeError, match="float16"):
		gpuarray.SharedArray(np.float32).register((1, ), np.float16, "x")


def runWithBackend(value, code):
	env = dict(os.environ, PUZZLELIB_RMSPROP_BACKEND=value)
	return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


def test_forcing_cuda_without_pycuda_says_why():
	try:
		import pycuda  # noqa: F401
		pytest.skip("pycuda is installed here; this checks the message where it is not")
	except ImportError:
		pass

	result = runWithBackend("cuda", "from puzzlelib_rmsprop.Backend import gpuarray; gpuarray.zeros((1, ))")
	assert result.returncode != 0
	assert "BackendError" in result.stderr and "pycuda is not installed" in result.stderr


def test_bad_backend_name():
	result = runWithBackend("tpu", "from puzzlelib_rmsprop.Backend import gpuarray; gpuarray.zeros((1, ))")
	assert "must be 'cuda' or 'cpu', got 'tpu'" in result.stderr


def test_choice_is_logged_once():
	code = (
		"import logging; logging.basicConfig(level=logging.INFO)\n"
		"from puzzlelib_rmsprop.Backend import gpuarray\n"
		"gpuarray.zeros((1, )); gpuarray.zeros((2, ))\n"
	)
	result = runWithBackend("", code)
	assert result.returncode == 0, result.stderr
	assert result.stderr.count("puzzlelib_rmsprop backend: ") == 1


def test_config_overrides_environment():
	code = (
		"from puzzlelib_rmsprop import Config; Config.backend = Config.Backend.cpu\n"
		"from puzzlelib_rmsprop.Backend import getBackend; print(getBackend().name)\n"
	)
	result = runWithBackend("cuda", code)
	assert result.stdout.strip() == "cpu", result.stderr


def test_cpu_backend_is_built_with_threads():
	from puzzlelib_rmsprop.Backend.CpuBackend import CpuBackend
	assert CpuBackend().kernels.threaded(), "the host kernels should start worker threads on Linux"


def test_device_index_follows_puzzlelib_config(monkeypatch):
	"""PuzzleLib's runGrid sets PuzzleLib's Config.deviceIdx in each child: ours follows it unless set itself."""
	import types
	from puzzlelib_rmsprop import Config
	from puzzlelib_rmsprop.Backend.CudaBackend import deviceIndex

	monkeypatch.setattr(Config, "localRank", None)  # not in an MPI grid (an in-process MPINodeInfo sets it)
	monkeypatch.setattr(Config, "deviceIdx", None)
	monkeypatch.delitem(sys.modules, "PuzzleLib.Config", raising=False)
	assert deviceIndex() == 0
	monkeypatch.setitem(sys.modules, "PuzzleLib.Config", types.SimpleNamespace(deviceIdx=3))
	assert deviceIndex() == 3
	monkeypatch.setattr(Config, "deviceIdx", 1)
	assert deviceIndex() == 1
	monkeypatch.setattr(Config, "deviceIdx", None)
	monkeypatch.setattr(Config, "localRank", 1)
	assert deviceIndex() is None, "in a grid: the local rank modulo the visible devices, chosen by the backend"

