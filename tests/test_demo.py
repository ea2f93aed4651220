"""The demo: the seed's example trains and reduces the loss, in both state modes."""
import subprocess
import sys

import pytest

from puzzlelib_rmsprop.demo import train


@pytest.mark.parametrize("useGlobalState", [True, False])
def test_training_reduces_loss(useGlobalState):
	lines = []
	errors, _ = train(iterations=100, seed=0, useGlobalState=useGlobalState, report=lines.append)

	assert len(errors) == 100 and len(lines) == 20
	assert lines[0] == "Iteration #5 error: %s" % errors[4]
	assert errors[-1] < 0.05 * errors[0]


def test_global_and_local_demo_agree():
	a, b = [], []
	train(iterations=20, useGlobalState=True, report=a.append)
	train(iterations=20, useGlobalState=False, report=b.append)
	assert a == b


def test_demo_command():
	result = subprocess.run([sys.executable, "-m", "puzzlelib_rmsprop.demo", "--iterations", "10"],
							capture_output=True, text=True, check=True)
	assert result.stdout.startswith("Backend: cpu")
	assert "Iteration #10 error: " in result.stdout
