"""How the CUDA kernels' row walk scales with the number of tensors, measured on the emulated driver (issue 21):
``tests/cuda_emu/run env PUZZLELIB_RMSPROP_BACKEND=cuda .venv/bin/python tests/cuda_emu/row_walk.py``.

For 1,000 tensors of 64 float32 elements, in global and local state, the plain, centered and 8-bit kernels: the
host time the emulator spent running each launch's grid (the best of ``--rounds``), the table rows the kernel read
(probes included) and the ratios the issue sets targets for. Host times of the emulator, never GPU figures: they
count the threads' own work (a row read, a search) the way a GPU would not; the ratios are what carries over."""
import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import emu  # noqa: E402
from conftest import ParamBag, randomGrads  # noqa: E402
from puzzlelib_rmsprop import RMSProp  # noqa: E402

FAMILIES = {"plain": {}, "centered": {"centered": True}, "8-bit": {"stateBits": 8}}


def measure(options: dict, useGlobalState: bool, sizes, rounds: int) -> emu.Launch:
	"""The fastest of ``rounds`` launches of the update's kernel for tensors of ``sizes``."""
	bag = ParamBag({"v%d" % i: ((n, ), np.float32) for i, n in enumerate(sizes)}, rng=np.random.default_rng(0))
	opt = RMSProp(**options)
	opt.setupOn(bag, useGlobalState=useGlobalState)
	randomGrads(bag, np.random.default_rng(1))
	opt.update()
	emu.clearLaunches()
	for _ in range(rounds):
		opt.update()
	launches = [launch for launch in emu.launches() if not launch.kernel.startswith("fill")]
	return min(launches, key=lambda launch: launch.hostSeconds)


def main() -> None:
	parser = argparse.ArgumentParser(description=__doc__)
	parser.add_argument("--rounds", type=int, default=7)
	parser.add_argument("--tensors", type=int, default=1000)
	parser.add_argument("--size", type=int, default=64)
	args = parser.parse_args()
	if not emu.isEmulated():
		sys.exit("run through tests/cuda_emu/run with PUZZLELIB_RMSPROP_BACKEND=cuda")

	sizes, seconds = [args.size] * args.tensors, {}
	print("%d tensors of %d float32 elements, host time of the emulated launch (best of %d)" % (args.tensors, args.size, args.rounds))
	print("%-9s %-7s %-16s %5s %10s %12s" % ("kernel", "state", "launch", "grid", "host ms", "rows read"))
	for family, options in FAMILIES.items():
		for mode, useGlobalState in (("global", True), ("local", False)):
			launch = measure(options, useGlobalState, sizes, args.rounds)
			seconds[family, mode] = launch.hostSeconds
			print("%-9s %-7s %-16s %5d %10.3f %12d" % (family, mode, launch.kernel, launch.grid[0], launch.hostSeconds * 1e3, launch.rows))

	print("local / global: plain %.2fx, centered %.2fx, 8-bit %.2fx (target for plain: at most 2x)" % tuple(
		seconds[f, "local"] / seconds[f, "global"] for f in FAMILIES))
	print("centered / plain: global %.2fx, local %.2fx (target: at most 2x)" % tuple(
		seconds["centered", m] / seconds["plain", m] for m in ("global", "local")))


if __name__ == "__main__":
	main()
