"""Interleaved timing: every candidate once per round, so machine noise hits them alike; medians reported.
A sample runs a candidate enough times back to back to last about a millisecond, so microsecond steps are
timed as reliably as long ones."""
import math
import time
from typing import Callable, Dict, List

import numpy as np

SAMPLE_SECONDS = 1e-3


def _calls(step: Callable[[], None], sync: Callable[[], None]) -> int:
	"""How many back-to-back calls fill one sample (measured after a warm-up call)."""
	step()
	sync()
	start = time.perf_counter()
	step()
	sync()
	return max(1, math.ceil(SAMPLE_SECONDS / max(time.perf_counter() - start, 1e-7)))


def timeInterleaved(steps: Dict[str, Callable[[], None]], repeats: int, sync: Callable[[], None]) -> Dict[str, float]:
	"""Median seconds per call of each step."""
	calls = {name: _calls(step, sync) for name, step in steps.items()}
	samples: Dict[str, List[float]] = {name: [] for name in steps}

	for _ in range(repeats):
		for name, step in steps.items():
			start = time.perf_counter()
			for _ in range(calls[name]):
				step()
			sync()
			samples[name].append((time.perf_counter() - start) / calls[name])

	return {name: float(np.median(values)) for name, values in samples.items()}
