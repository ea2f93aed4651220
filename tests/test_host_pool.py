"""kernels/host_pool.c, the CPU kernels' worker threads: every thread count gives the NumPy reference's numbers bit
for bit (chunk boundaries inside tensors and between them, jobs large enough to wake the workers first), several
Python threads may update at once, and a forked child updates with threads of its own. Each check runs in a child
process on the CPU backend, so a deadlock or a crash fails the test (timeout) instead of ending the run."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

PRELUDE = """
import os, sys, threading
import numpy as np
sys.path.insert(0, %r)
from reference import rmspropStep
from conftest import ParamBag
from puzzlelib_rmsprop import Config, RMSProp

def train(specs, threads, useGlobalState, steps=3, seed=0, stateBits=None):
	Config.cpuThreads = threads
	rng = np.random.default_rng(seed)
	bag = ParamBag(specs, rng=rng)
	start = {name: var.data.get() for name, var in bag.vars.items()}
	opt = RMSProp(learnRate=0.01, stateBits=stateBits)
	opt.setupOn(bag, useGlobalState=useGlobalState)
	grads = []
	for _ in range(steps):
		g = {name: rng.standard_normal(var.grad.shape).astype(np.float32) for name, var in bag.vars.items()}
		for name, var in bag.vars.items():
			var.grad.set(g[name])
		opt.update()
		grads.append(g)
	return start, grads, {name: var.data.get() for name, var in bag.vars.items()}

def reference(start, grads):
	result = {}
	for name, p in start.items():
		m = np.zeros_like(p)
		for g in grads:
			p, m = rmspropStep(p, g[name], m, 0.01)
		result[name] = p
	return result

def assertReference(specs, threads, useGlobalState, seed=0):
	start, grads, got = train(specs, threads, useGlobalState, seed=seed)
	expected = reference(start, grads)
	for name in specs:
		assert np.array_equal(got[name], expected[name]), (name, threads, useGlobalState)
""" % str(HERE)

#: one tensor split into chunks inside it; a job large enough to wake sleeping workers first (262,144 elements);
#: many tensors of odd sizes, so chunk boundaries fall inside and between them
SPECS = {
	"two chunks per thread": {"w": ((2 * 16384 + 3, ), "float32")},
	"large": {"w": ((300_001, ), "float32")},
	"many tensors": {"p%02d" % i: ((997 + 131 * i, ), "float32") for i in range(60)},
}


def runChild(code: str, timeout: float = 300) -> str:
	result = subprocess.run([sys.executable, "-c", PRELUDE + code], capture_output=True, text=True, timeout=timeout,
							env=dict(os.environ, PUZZLELIB_RMSPROP_BACKEND="cpu"))
	assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
	return result.stdout


@pytest.mark.parametrize("layout", sorted(SPECS))
def test_every_thread_count_gives_the_reference_bit_for_bit(layout):
	runChild("""
specs = %r
for threads in (1, 2, 3, 8, 0):
	for useGlobalState in (False, True):
		for seed in range(3):  # the workers asleep, then spinning, then the pool's choice after measuring
			assertReference(specs, threads, useGlobalState, seed)
print("ok")
""" % {name: (shape, dtype) for name, (shape, dtype) in SPECS[layout].items()})


def test_8_bit_state_is_the_same_on_every_thread_count():
	"""8-bit state splits by blocks of 256: the codes and the parameters do not depend on the split."""
	runChild("""
specs = {"w": ((300_001, ), "float32"), "b": ((70_000, ), "float32")}
results = [train(specs, threads, True, stateBits=8)[2] for threads in (1, 2, 3, 8)]
for other in results[1:]:
	for name in specs:
		assert np.array_equal(other[name], results[0][name]), name
print("ok")
""")


def test_python_threads_updating_at_once_get_their_own_numbers():
	"""Four Python threads, each with its own optimizer, step at the same time (the GIL is released in the kernels):
	one runs a job on the pool, the others run theirs alone; each matches the reference."""
	runChild("""
specs = {"w": ((300_001, ), "float32"), "v": ((40_000, ), "float32")}
errors = []
def worker(seed):
	try:
		for _ in range(3):
			assertReference(specs, 2, seed % 2 == 0, seed)
	except BaseException as e:
		errors.append(repr(e))
threads = [threading.Thread(target=worker, args=(seed, )) for seed in range(4)]
for t in threads:
	t.start()
for t in threads:
	t.join()
assert not errors, errors
print("ok")
""")


def test_a_forked_child_updates_with_threads_of_its_own():
	"""After fork only the forking thread exists: the child's pool starts again (pthread_atfork) and its updates
	match the reference; the parent's pool keeps working."""
	runChild("""
specs = {"w": ((300_001, ), "float32")}
assertReference(specs, 2, True)  # the pool's workers exist now
pid = os.fork()
if pid == 0:
	try:
		assertReference(specs, 2, True, seed=1)
		assertReference(specs, 2, False, seed=2)
	except BaseException as e:
		print(repr(e), file=sys.stderr)
		os._exit(1)
	os._exit(0)
_, status = os.waitpid(pid, 0)
assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
assertReference(specs, 2, True, seed=3)
print("ok")
""", timeout=120)


def test_many_short_jobs_on_more_threads_than_cores():
	"""Thousands of short parallel jobs back to back, on two tables in turn, with more workers than cores (so they
	are preempted between waking and claiming, and the pool switches between helping and running alone): every step
	matches the reference. (A claim without the generation check is not caught here: the stale job's context sits
	where the next job's is, on the same stack.)"""
	runChild("""
specs = [{"a": ((16_391, ), "float32")}, {"b": ((24_587, ), "float32"), "c": ((8_209, ), "float32")}]
Config.cpuThreads = 6
rng = np.random.default_rng(5)
runs = []
for spec in specs:
	bag = ParamBag(spec, rng=rng)
	opt = RMSProp(learnRate=0.01)
	opt.setupOn(bag, useGlobalState=True)
	runs.append((bag, opt, {n: v.data.get() for n, v in bag.vars.items()}, {n: np.zeros(v.data.shape, np.float32) for n, v in bag.vars.items()}))
for step in range(1500):
	for bag, opt, params, ms in runs:
		grads = {n: rng.standard_normal(v.grad.shape).astype(np.float32) for n, v in bag.vars.items()}
		for n, v in bag.vars.items():
			v.grad.set(grads[n])
		opt.update()
		for n in params:
			params[n], ms[n] = rmspropStep(params[n], grads[n], ms[n], 0.01)
	if step % 100 == 99:
		for bag, _, params, _ in runs:
			for n, v in bag.vars.items():
				assert np.array_equal(v.data.get(), params[n]), (step, n)
print("ok")
""")
