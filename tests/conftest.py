import os

import numpy as np
import pytest

# The suite runs on the CPU backend (no GPU here); tests/test_gpu.py runs the CUDA backend where one exists.
os.environ.setdefault("PUZZLELIB_RMSPROP_BACKEND", "cpu")

from puzzlelib_rmsprop.Backend import gpuarray  # noqa: E402
from puzzlelib_rmsprop.Modules.Module import Module  # noqa: E402
from puzzlelib_rmsprop.Variable import Variable  # noqa: E402


class ParamBag(Module):
	"""A module holding named variables only; tests write the grads themselves."""

	def __init__(self, specs, name="bag", rng=None):
		super().__init__(name)
		rng = np.random.default_rng(0) if rng is None else rng
		for varName, (shape, dtype) in specs.items():
			self.setVar(varName, Variable(gpuarray.to_gpu(rng.standard_normal(shape).astype(dtype))))


def randomGrads(bag, rng):
	"""Writes fresh random grads into every variable of ``bag``; returns them by name."""
	grads = {}
	for name, var in bag.vars.items():
		g = rng.standard_normal(var.grad.shape).astype(var.grad.dtype)
		var.grad.set(g)
		grads[name] = g
	return grads


def snapshot(bag):
	return {name: var.data.get() for name, var in bag.vars.items()}


@pytest.fixture
def rng():
	return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def puzzlelib():
	"""Real PuzzleLib 1.0.3 (tests/puzzlelib_oracle.py). In CI a failure to set it up fails the tests that need it;
	elsewhere they are skipped with the reason."""
	import puzzlelib_oracle

	try:
		return puzzlelib_oracle.load()
	except puzzlelib_oracle.OracleUnavailable as e:
		if os.environ.get("CI"):
			pytest.fail("PuzzleLib could not be set up in CI: %s" % e)
		pytest.skip("PuzzleLib unavailable: %s" % e)


_KERNEL_REPORT = []


@pytest.fixture(scope="session")
def kernelReport():
	"""Lines the SASS checks report (registers, vector accesses), printed in the terminal summary."""
	return _KERNEL_REPORT


def pytest_terminal_summary(terminalreporter):
	if _KERNEL_REPORT:
		terminalreporter.section("CUDA kernels (static SASS checks)")
		for line in _KERNEL_REPORT:
			terminalreporter.write_line(line)
