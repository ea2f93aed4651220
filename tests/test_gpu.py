"""The CUDA backend on a real GPU, against the same NumPy reference. Skipped, with the reason, without one."""
import numpy as np
import pytest

from reference import rmspropStep

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def cuda():
	from puzzlelib_rmsprop.Errors import BackendError
	try:
		from puzzlelib_rmsprop.Backend.CudaBackend import CudaBackend
		return CudaBackend()
	except BackendError as e:
		pytest.skip("no usable CUDA GPU: %s" % e)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("size, offset", [(1, 0), (7, 1), (1023, 3), (2 ** 20 + 5, 2), (3 * 2 ** 20, 0)])
def test_cuda_update_matches_reference(cuda, dtype, size, offset):
	from puzzlelib_rmsprop.Backend.TensorTable import TensorList

	rng = np.random.default_rng(size)
	host = [rng.standard_normal(size + offset).astype(dtype) for _ in range(2)] + [rng.random(size + offset).astype(dtype)]
	views = [cuda.to_gpu(h)[offset:] for h in host]

	lists = [TensorList([v], cuda.pointerOf) for v in views]
	cuda.rmsprop(lists[0].launchTable(cuda, lists[1], lists[2], [1e-2]), 0.9, 1e-5)

	expectedP, expectedM = rmspropStep(host[0][offset:], host[1][offset:], host[2][offset:], 1e-2)
	np.testing.assert_array_equal(views[2].get(), expectedM)
	np.testing.assert_array_equal(views[0].get(), expectedP)


def test_reference_suites_on_the_cuda_backend(cuda):
	"""The optimizer-level reference tests (both dtypes, both state modes, multipliers, hooks, skipNonFinite,
	validation) rerun with the CUDA backend selected."""
	import os
	import subprocess
	import sys
	from pathlib import Path

	here = Path(__file__).resolve().parent
	env = dict(os.environ, PUZZLELIB_RMSPROP_BACKEND="cuda")
	result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
							 str(here / "test_RMSProp.py"), str(here / "test_Guarantees.py")],
							env=env, capture_output=True, text=True, cwd=here.parent)
	assert result.returncode == 0, result.stdout[-5000:]
