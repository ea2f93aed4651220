"""The benchmark runs and writes its outputs (a functional check: no timing is asserted), and its reference
kernels do what they claim."""
import io
import json
import sys

import numpy as np

from puzzlelib_rmsprop.Backend import getBackend
from puzzlelib_rmsprop.Backend.TensorTable import TensorList
from puzzlelib_rmsprop.bench import referenceKernels, workloads
from puzzlelib_rmsprop.bench.__main__ import main


def test_resnet50_parameter_list():
	shapes = workloads.resnet50()
	assert len(shapes) == 161 and workloads.elements(shapes) == 25_557_032


def test_bench_writes_table_json_and_plot(tmp_path, capsys):
	main(["--quick", "--repeats", "1", "--max-elements", "1e5", "--out", str(tmp_path)])

	results = json.loads((tmp_path / "results.json").read_text())
	names = [w["name"] for w in results["workloads"]]
	assert names == ["N=1e+03", "N=1e+04", "N=1e+05", "N=6.4e+04", "161 tensors of 64", "1000 tensors of 64"]
	for w in results["workloads"]:
		for candidate in ("ours (global)", "ours kernel (rmspropKer)", "limit (same traffic, no math)", "naive NumPy"):
			assert w["results"][candidate]["seconds"] > 0
	assert (tmp_path / "bandwidth.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

	printed = capsys.readouterr()
	assert "of limit" in printed.out and "limit (same traffic, no math)" in printed.out
	# stderr is no terminal here: a clean line per workload, no bar
	assert printed.err.splitlines() == ["benchmark %d/6: %s" % (i + 1, name) for i, name in enumerate(names)]
	tiny = results["workloads"][-1]
	assert tiny["tensors"] == 1000 and {"ours (global)", "ours (local)"} <= set(tiny["results"])


class FakeTerminal(io.StringIO):
	def isatty(self):
		return True


def test_bench_on_a_terminal_shows_the_bar(tmp_path, monkeypatch, capsys):
	terminal = FakeTerminal()
	monkeypatch.setattr(sys, "stderr", terminal)
	main(["--quick", "--repeats", "1", "--max-elements", "1e3", "--out", str(tmp_path)])

	assert "benchmark: 100%|" in terminal.getvalue() and "benchmark 1/1" not in terminal.getvalue()
	assert "%|" not in capsys.readouterr().out


def table(arrays):
	backend = getBackend()
	lists = [TensorList([a], backend.pointerOf) for a in arrays]
	return backend, lists[0].launchTable(backend, lists[1], lists[2], [1.0])


def test_traffic_limit_reads_three_writes_two():
	rng = np.random.default_rng(0)
	host = [rng.standard_normal(100_003).astype(np.float32) for _ in range(3)]
	arrays = [getBackend().to_gpu(h) for h in host]
	backend, t = table(arrays)

	referenceKernels.traffic(backend, t, kind=0)
	np.testing.assert_array_equal(arrays[0].get(), host[2])
	np.testing.assert_array_equal(arrays[2].get(), host[0] + host[1])
	np.testing.assert_array_equal(arrays[1].get(), host[1])

	arrays = [getBackend().to_gpu(h) for h in host]
	backend, t = table(arrays)
	referenceKernels.traffic(backend, t, kind=1)
	np.testing.assert_array_equal(arrays[0].get(), host[1] + np.float32(1.0001) * host[2])


def test_thread_benchmark_prints_every_size_and_situation():
	"""``python -m puzzlelib_rmsprop.bench.threads`` on the CPU backend (a functional check: no timing asserted)."""
	import os
	import re
	import subprocess
	result = subprocess.run([sys.executable, "-m", "puzzlelib_rmsprop.bench.threads", "--rounds", "1", "--max-elements", "70000"],
							capture_output=True, text=True, timeout=300, env=dict(os.environ, PUZZLELIB_RMSPROP_BACKEND="cpu"))
	assert result.returncode == 0, result.stderr[-3000:]
	rows = re.findall(r"^ +(\d+)  (back to back|after a GEMM|after a sleep) +([\d.]+) +([\d.]+) +([\d.]+)$", result.stdout, re.M)
	assert [int(r[0]) for r in rows[::3]] == [4096, 8192, 16384, 32768, 65536], result.stdout
	assert all(float(one) > 0 and float(every) > 0 and abs(float(every) / float(one) - float(ratio)) < 0.01 + 0.01 * float(ratio)
			   for _, _, one, every, ratio in rows), result.stdout
