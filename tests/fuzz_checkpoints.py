"""Child process of tests/test_Checkpoint.py: loads damaged variants of a good checkpoint.
Usage: fuzz_checkpoints.py GOOD DIR COUNT [STATE_BITS]. With STATE_BITS 8 the optimizer (and GOOD) has 8-bit state,
and the foreign files include damaged 8-bit ones. Prints a JSON summary; any exception other than OptimizerError, or
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


def quant8Codes(f, attrs, scales=np.zeros(1, np.float32), dtype=np.uint8):
	"""A dataset of 8-bit codes for bag.a.ms with the given attributes, and its scales (None: none)."""
	ds = f.create_dataset(".states/bag.a.ms", data=np.zeros((6, 5), dtype))
	for key, value in attrs.items():
		ds.attrs[key] = value
	if scales is not None:
		f.create_dataset(".states/bag.a.ms.scales", data=scales)


def foreignFiles(directory):
	"""Valid HDF5 files that are not our checkpoints (or are damaged 8-bit ones)."""
	specs = {
		"empty": lambda f: None,
		"wrong-shape": lambda f: f.create_dataset(".states/bag.a.ms", data=np.zeros(3, np.float32)),
		"wrong-dtype": lambda f: f.create_dataset(".states/bag.a.ms", data=np.zeros((6, 5), np.int64)),
		"group-not-dataset": lambda f: f.create_group(".states/bag.a.ms"),
		"string-attr": lambda f: f.create_dataset(".attrs/learnRate", data="fast"),
		"array-attr": lambda f: f.create_dataset(".attrs/factor", data=np.ones(3)),
		"states-is-dataset": lambda f: f.create_dataset(".states", data=1),
		"puzzlelib-global": lambda f: f.create_dataset(".states/<class 'numpy.float32'>.ms", data=np.zeros(39, np.float32)),
		"quant8-no-scales": lambda f: quant8Codes(f, {"quant8": "ue5m3", "block": 256}, scales=None),
		"quant8-scales-int": lambda f: quant8Codes(f, {"quant8": "ue5m3", "block": 256}, scales=np.zeros(1, np.int32)),
		"quant8-scales-group": lambda f: (quant8Codes(f, {"quant8": "ue5m3", "block": 256}, scales=None),
										  f.create_group(".states/bag.a.ms.scales")),
		"quant8-format-int": lambda f: quant8Codes(f, {"quant8": 7, "block": 256}),
		"quant8-block-text": lambda f: quant8Codes(f, {"quant8": "e4m3", "block": "many"}),
		"quant8-codes-float": lambda f: quant8Codes(f, {"quant8": "ue5m3", "block": 256}, dtype=np.float32),
		"quant8-block-128": lambda f: quant8Codes(f, {"quant8": "ue5m3", "block": 128}),
	}
	paths = []
	for name, make in specs.items():
		path = os.path.join(directory, "foreign-%s.hdf" % name)
		with h5py.File(path, "w") as f:
			make(f)
		paths.append(path)
	return paths


def snapshotOf(opt):
	"""Everything a failed load must leave alone: attributes, and each state's values (8-bit: codes and scales)."""
	def arrays(state):
		return [state.codes.get(), state.scales.get()] if hasattr(state, "codes") else [state.get()]
	return opt.getAttrDict(), {n: [a for key in sorted(s) for a in arrays(s[key])] for n, s in opt.states.items()}


def main(good, directory, count, bits=None):
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
	opt = RMSProp(learnRate=0.25, stateBits=bits)
	opt.setupOn(bag)
	summary = {"files": 0, "foreign": len(foreign), "loaded": 0, "rejected": 0, "unexpected": [], "changedOnError": 0,
			   "foreignLoaded": 0}

	for path in paths + foreign:
		summary["files"] += 1
		before = snapshotOf(opt)
		try:
			opt.load(path)
			summary["loaded"] += 1
			summary["foreignLoaded"] += path in foreign
			opt.setAttr("learnRate", 0.25)
			opt.setAttr("t", 0)
			for s in opt.states.values():
				s["ms"].set(np.zeros(s["ms"].shape, np.float32).astype(np.float32 if bits else s["ms"].dtype))
		except OptimizerError:
			summary["rejected"] += 1
			after = snapshotOf(opt)
			if after[0] != before[0] or any(not np.array_equal(x, y) for n in before[1] for x, y in zip(after[1][n], before[1][n])):
				summary["changedOnError"] += 1
		except Exception as e:  # noqa: BLE001 - this is what the test looks for
			summary["unexpected"].append("%s: %s: %s" % (os.path.basename(path), type(e).__name__, e))

	print(json.dumps(summary))


if __name__ == "__main__":
	main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else None)
