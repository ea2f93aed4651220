"""Child process of tests/test_Checkpoint.py: loads damaged variants of a good checkpoint.
Usage: fuzz_checkpoints.py GOOD DIR COUNT. Prints a JSON summary; any exception other than OptimizerError, or
an optimizer changed by a failed load, is listed under "unexpected" / counted in "changedOnError"."""
import json
import os
import sys

import h5py
import numpy as np

os.environ.setdefault("PUZZLELIB_RMSPROP_BACKEND", "cpu")

from conftest import ParamBag  # noqa: E402
from puzzlelib_rmsprop import OptimizerError, RMSProp  # noqa: E402


def damaged(data: bytes, rng) -> bytes:
	kind = rng.integers(4)
	buf = bytearray(data)
	if kind == 0:
		return bytes(buf[:rng.integers(0, len(buf))])
	if kind == 1:
		for i in rng.integers(0, len(buf), rng.integers(1, 50)):
			buf[i] ^= 1 << int(rng.integers(8))
		return bytes(buf)
	start = int(rng.integers(0, len(buf)))
	length = int(rng.integers(1, 512))
	block = bytes(length) if kind == 2 else rng.bytes(length)
	buf[start:start + length] = block[:len(buf) - start]
	return bytes(buf)


def foreignFiles(directory):
	"""Valid HDF5 files that are not our checkpoints."""
	specs = {
		"empty": lambda f: None,
		"wrong-shape": lambda f: f.create_dataset(".states/bag.a.ms", data=np.zeros(3, np.float32)),
		"wrong-dtype": lambda f: f.create_dataset(".states/bag.a.ms", data=np.zeros((6, 5), np.int64)),
		"group-not-dataset": lambda f: f.create_group(".states/bag.a.ms"),
		"string-attr": lambda f: f.create_dataset(".attrs/learnRate", data="fast"),
		"array-attr": lambda f: f.create_dataset(".attrs/factor", data=np.ones(3)),
		"states-is-dataset": lambda f: f.create_dataset(".states", data=1),
		"puzzlelib-global": lambda f: f.create_dataset(".states/<class 'numpy.float32'>.ms", data=np.zeros(39, np.float32)),
	}
	paths = []
	for name, make in specs.items():
		path = os.path.join(directory, "foreign-%s.hdf" % name)
		with h5py.File(path, "w") as f:
			make(f)
		paths.append(path)
	return paths


def main(good, directory, count):
	os.makedirs(directory, exist_ok=True)
	rng = np.random.default_rng(1234)
	data = open(good, "rb").read()

	paths = []
	for i in range(count):
		path = os.path.join(directory, "damaged-%03d.hdf" % i)
		with open(path, "wb") as f:
			f.write(damaged(data, rng))
		paths.append(path)
	foreign = foreignFiles(directory)

	bag = ParamBag({"a": ((6, 5), np.float32), "b": ((9, ), np.float16)})
	opt = RMSProp(learnRate=0.25)
	opt.setupOn(bag)
	summary = {"files": 0, "foreign": len(foreign), "loaded": 0, "rejected": 0, "unexpected": [], "changedOnError": 0}

	for path in paths + foreign:
		summary["files"] += 1
		before = (opt.getAttrDict(), {n: s["ms"].get() for n, s in opt.states.items()})
		try:
			opt.load(path)
			summary["loaded"] += 1
			opt.setAttr("learnRate", 0.25)
			opt.setAttr("t", 0)
			for s in opt.states.values():
				s["ms"].fill(0)
		except OptimizerError:
			summary["rejected"] += 1
			after = (opt.getAttrDict(), {n: s["ms"].get() for n, s in opt.states.items()})
			if after[0] != before[0] or any((after[1][n] != before[1][n]).any() for n in before[1]):
				summary["changedOnError"] += 1
		except Exception as e:  # noqa: BLE001 - this is what the test looks for
			summary["unexpected"].append("%s: %s: %s" % (os.path.basename(path), type(e).__name__, e))

	print(json.dumps(summary))


if __name__ == "__main__":
	main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
