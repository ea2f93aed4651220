"""Child process of tests/test_Checkpoint.py: loads damaged variants of a good checkpoint, and foreign files.
Usage: fuzz_checkpoints.py GOOD DIR COUNT [STATE_BITS]. With STATE_BITS 8 the optimizer (and GOOD) has 8-bit state,
and the foreign files include damaged 8-bit ones. Damaged files (GOOD's bytes, cut, flipped or overwritten) must
load exactly what GOOD holds or be refused; foreign files (valid HDF5 that is not a fitting checkpoint, hostile
ones included: links, external storage, virtual datasets, declared-huge compressed datasets, non-finite and negative
values) must all be refused. Prints a JSON summary; any exception other than OptimizerError, or an optimizer changed
by a failed load, is listed under "unexpected" / counted in "changedOnError"."""
import json
import os
import shutil
import sys

import h5py
import numpy as np

os.environ.setdefault("PUZZLELIB_RMSPROP_BACKEND", "cpu")

from conftest import ParamBag  # noqa: E402
from puzzlelib_rmsprop import Checkpoint, OptimizerError, RMSProp  # noqa: E402


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


def replaced(key, **kwargs):
	"""An edit of a good file: the dataset ``key`` replaced by ``create_dataset(key, **kwargs)``."""
	def edit(f):
		del f[key]
		f.create_dataset(key, **kwargs)
	return edit


def linked(key, link):
	def edit(f):
		del f[key]
		f[key] = link
	return edit


def virtual(source):
	def edit(f):
		layout = h5py.VirtualLayout(shape=(6, 5), dtype=np.float32)
		layout[:] = h5py.VirtualSource(source, "x", shape=(6, 5))
		del f[".states/bag.a.ms"]
		f[".states"].create_virtual_dataset("bag.a.ms", layout, fillvalue=0)
	return edit


def scaled(value):
	def edit(f):
		f[".states/bag.a.ms.scales"][0] = value
	return edit


def hostileFiles(good, directory, bits):
	"""Copies of the good file with one hostile edit each (checksum tables dropped, as in PuzzleLib's files, so
	that the checks below them must refuse)."""
	other = os.path.join(directory, "other.hdf")
	shutil.copy(good, other)
	source = os.path.join(directory, "source.hdf")
	with h5py.File(source, "w") as f:
		f["x"] = np.ones((6, 5), np.float32)
	secret = os.path.join(directory, "secret.bin")
	with open(secret, "wb") as f:
		f.write(bytes(range(120)))

	ms = ".states/bag.a.ms"
	edits = {
		"external-link-dataset": linked(ms, h5py.ExternalLink(other, "/" + ms)),
		"external-link-relative": linked(ms, h5py.ExternalLink("other.hdf", "/" + ms)),
		"external-link-group": linked(".states", h5py.ExternalLink(other, "/.states")),
		"soft-link-outside": lambda f: (f.create_dataset("outside", data=np.ones((6, 5), np.float32)),
										linked(ms, h5py.SoftLink("/outside"))(f)),
		"external-storage": replaced(ms, shape=(6, 5), dtype=np.float32, external=[(secret, 0, 120)]),
		"virtual": virtual(source),
		"virtual-missing-source": virtual(os.path.join(directory, "missing.hdf")),
		"huge-attr": replaced(".attrs/learnRate", shape=(32768, 32768), dtype=np.float32, chunks=(1024, 1024),
							  compression="gzip"),
		"huge-state": replaced(ms, shape=(32768, 32768), dtype=np.float32, chunks=(1024, 1024), compression="gzip"),
		"t-inf": replaced(".attrs/t", data=np.inf),
		"t-fraction": replaced(".attrs/t", data=3.9),
		"learnRate-inf": replaced(".attrs/learnRate", data=np.inf),
		"learnRate-nan": replaced(".attrs/learnRate", data=np.nan),
		"learnRate-1e39": replaced(".attrs/learnRate", data=1e39),
		"learnRate-text": replaced(".attrs/learnRate", data="0.5"),
	}
	if bits:
		edits.update({"scales-nan": scaled(np.nan), "scales-negative": scaled(-1.0), "scales-inf": scaled(np.inf)})
	else:
		edits.update({"ms-negative": replaced(ms, data=np.full((6, 5), -1, np.float32)),
					  "ms-nan": replaced(ms, data=np.full((6, 5), np.nan, np.float32)),
					  "ms-inf": replaced(ms, data=np.full((6, 5), np.inf, np.float32))})

	paths = []
	for name, edit in edits.items():
		path = os.path.join(directory, "hostile-%s.hdf" % name)
		shutil.copy(good, path)
		with h5py.File(path, "r+") as f:
			for grp in f.values():
				grp.attrs.pop(Checkpoint.DIGESTS, None)
			edit(f)
		paths.append(path)
	return paths


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


def loadInto(opt, path, summary):
	"""True if ``path`` loaded, False if refused (checking that nothing changed), None on anything else."""
	before = snapshotOf(opt)
	try:
		opt.load(path)
		return True
	except OptimizerError:
		after = snapshotOf(opt)
		if after[0] != before[0] or any(not np.array_equal(x, y) for n in before[1] for x, y in zip(after[1][n], before[1][n])):
			summary["changedOnError"] += 1
		return False
	except Exception as e:  # noqa: BLE001 - this is what the test looks for
		summary["unexpected"].append("%s: %s: %s" % (os.path.basename(path), type(e).__name__, e))
		return None


def sameAs(snap, expected) -> bool:
	return snap[0] == expected[0] and all(
		len(snap[1][n]) == len(expected[1][n]) and all(np.array_equal(x, y) for x, y in zip(snap[1][n], expected[1][n]))
		for n in expected[1])


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
	foreign = foreignFiles(directory) + hostileFiles(good, directory, bits)

	bag = ParamBag({"a": ((6, 5), np.float32), "b": ((9, ), np.float16)})
	opt = RMSProp(learnRate=0.25, stateBits=bits)
	opt.setupOn(bag)
	start = snapshotOf(opt)
	opt.load(good)
	expected = snapshotOf(opt)

	summary = {"files": 0, "damaged": len(paths), "foreign": len(foreign), "damagedLoaded": 0, "damagedRejected": 0,
			   "damagedDifferent": [], "foreignRejected": 0, "foreignLoaded": [], "unexpected": [], "changedOnError": 0}

	def reset():
		opt.setAttr("learnRate", 0.25)
		opt.setAttr("t", 0)
		for s in opt.states.values():
			s["ms"].set(np.zeros(s["ms"].shape, np.float32).astype(np.float32 if bits else s["ms"].dtype))
		assert sameAs(snapshotOf(opt), start)

	for path in paths:
		summary["files"] += 1
		loaded = loadInto(opt, path, summary)
		if loaded:
			summary["damagedLoaded"] += 1
			if not sameAs(snapshotOf(opt), expected):
				summary["damagedDifferent"].append(os.path.basename(path))
			reset()
		elif loaded is False:
			summary["damagedRejected"] += 1

	for path in foreign:
		summary["files"] += 1
		loaded = loadInto(opt, path, summary)
		if loaded:
			summary["foreignLoaded"].append(os.path.basename(path))
			reset()
		elif loaded is False:
			summary["foreignRejected"] += 1

	print(json.dumps(summary))


if __name__ == "__main__":
	main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else None)
