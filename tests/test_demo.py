"""The demo: the seed's example trains and reduces the loss, in both state modes; a progress bar on a terminal only."""
import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios

import pytest

from puzzlelib_rmsprop.Backend import getBackend
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
	assert result.stdout.startswith("Backend: %s (" % getBackend().name)
	assert "Iteration #10 error: " in result.stdout


def test_demo_to_a_pipe_prints_clean_lines():
	"""No progress-bar debris when stdout and stderr go to a pipe or file: the result lines only."""
	result = subprocess.run([sys.executable, "-m", "puzzlelib_rmsprop.demo", "--iterations", "10"],
							stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=True)
	assert "\r" not in result.stdout and "%|" not in result.stdout
	assert [line.split(" error")[0] for line in result.stdout.splitlines()[1:]] == ["Iteration #5", "Iteration #10"]


def readAll(fd: int) -> str:
	"""Everything written to a pseudo-terminal whose other side is closed."""
	data = b""
	while True:
		try:
			chunk = os.read(fd, 65536)
		except OSError:  # EIO: nothing more to read
			break
		if not chunk:
			break
		data += chunk
	return data.decode(errors="replace")


def test_demo_on_a_terminal_shows_the_bar():
	"""stderr on a terminal (a pseudo-terminal here): tqdm draws its bar there, stdout keeps the result lines."""
	master, slave = pty.openpty()
	# 24 x 80: a new pseudo-terminal is 0 columns wide, where tqdm draws nothing
	fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
	try:
		result = subprocess.run([sys.executable, "-m", "puzzlelib_rmsprop.demo", "--iterations", "10"],
								stdout=subprocess.PIPE, stderr=slave, text=True, check=True)
		os.close(slave)
		terminal = readAll(master)
	finally:
		os.close(master)

	assert "training: 100%|" in terminal
	assert "Iteration #10 error: " in result.stdout and "%|" not in result.stdout
