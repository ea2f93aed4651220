"""Checkpoints from hostile or unlucky files: nothing outside the file is read, nothing huge is allocated, no bad value
loads, and a refused file changes nothing. Each file is made with h5py as a hostile user would make it; most tests
drop our checksum tables first (as PuzzleLib's files, which have none), so that the check under test is the one
that refuses."""
import time

import h5py
import numpy as np
import pytest

from conftest import ParamBag, randomGrads
from puzzlelib_rmsprop import Checkpoint, OptimizerError, RMSProp

SPECS = {"a": ((6, 5), np.float32), "b": ((9, ), np.float16)}


def goodCheckpoint(path, stateBits=None, digests=False):
	rng = np.random.default_rng(0)
	bag = ParamBag(SPECS, rng=rng)
	opt = RMSProp(learnRate=0.01, stateBits=stateBits)
	opt.setupOn(bag)
	randomGrads(bag, rng)
	opt.update()
	opt.save(str(path))
	if not digests:
		with h5py.File(path, "r+") as f:
			for grp in f.values():
				del grp.attrs[Checkpoint.DIGESTS]
	return opt


def freshOptimizer(stateBits=None, **kwargs):
	opt = RMSProp(learnRate=0.5, stateBits=stateBits)
	opt.setupOn(ParamBag(SPECS, **kwargs))
	return opt


def stateOf(opt):
	def arrays(state):
		return [state.codes.get(), state.scales.get()] if hasattr(state, "codes") else [state.get()]
	return opt.getAttrDict(), {n: [a.copy() for k in sorted(s) for a in arrays(s[k])] for n, s in opt.states.items()}


def assertRefused(path, match, stateBits=None):
	"""Loading ``path`` raises OptimizerError matching ``match`` and changes nothing."""
	opt = freshOptimizer(stateBits)
	before = stateOf(opt)
	with pytest.raises(OptimizerError, match=match):
		opt.load(str(path))
	after = stateOf(opt)
	assert after[0] == before[0]
	for name in before[1]:
		assert all(np.array_equal(x, y) for x, y in zip(before[1][name], after[1][name]))


def replace(path, key, **kwargs):
	"""Replaces the dataset ``key`` of the file at ``path`` by ``create_dataset(key, **kwargs)``."""
	with h5py.File(path, "r+") as f:
		del f[key]
		f.create_dataset(key, **kwargs)


def test_external_raw_storage_is_refused(tmp_path):
	secret = tmp_path / "secret.bin"
	secret.write_bytes(bytes(range(120)) * 2)
	path = tmp_path / "ckpt.hdf"
	goodCheckpoint(path)
	replace(path, ".states/bag.a.ms", shape=(6, 5), dtype=np.float32, external=[(str(secret), 0, 120)])
	assertRefused(path, r"'bag.a.ms' keeps its data in another file \(external storage\)")


@pytest.mark.parametrize("what", ["dataset", "group"])
@pytest.mark.parametrize("absolute", [True, False])
def test_external_links_are_refused(tmp_path, what, absolute):
	other = tmp_path / "other.hdf"
	goodCheckpoint(other)
	path = tmp_path / "ckpt.hdf"
	goodCheckpoint(path)
	target = str(other) if absolute else other.name
	with h5py.File(path, "r+") as f:
		if what == "dataset":
			del f[".states/bag.a.ms"]
			f[".states/bag.a.ms"] = h5py.ExternalLink(target, "/.states/bag.a.ms")
		else:
			del f[".states"]
			f[".states"] = h5py.ExternalLink(target, "/.states")
	assertRefused(path, r"is an external link")


def test_soft_link_outside_the_checkpoint_is_refused(tmp_path):
	path = tmp_path / "ckpt.hdf"
	goodCheckpoint(path)
	with h5py.File(path, "r+") as f:
		f.create_dataset("elsewhere/ms", data=np.full((6, 5), 7, np.float32))
		del f[".states/bag.a.ms"]
		f[".states/bag.a.ms"] = h5py.SoftLink("/elsewhere/ms")
	assertRefused(path, r"'bag.a.ms' is a soft link to '/elsewhere/ms', outside the checkpoint")


@pytest.mark.parametrize("sourceExists", [True, False])
def test_virtual_datasets_are_refused(tmp_path, sourceExists):
	source = tmp_path / "source.hdf"
	if sourceExists:
		with h5py.File(source, "w") as f:
			f["x"] = np.full((6, 5), 3, np.float32)
	path = tmp_path / "ckpt.hdf"
	goodCheckpoint(path)
	layout = h5py.VirtualLayout(shape=(6, 5), dtype=np.float32)
	layout[:] = h5py.VirtualSource(str(source), "x", shape=(6, 5))
	with h5py.File(path, "r+") as f:
		del f[".states/bag.a.ms"]
		f[".states"].create_virtual_dataset("bag.a.ms", layout, fillvalue=0)
	assertRefused(path, r"'bag.a.ms' is a virtual dataset")


@pytest.mark.parametrize("key", [".attrs/learnRate", ".states/bag.a.ms"])
def test_declared_huge_compressed_dataset_is_refused_without_reading_it(tmp_path, key):
	"""A few KB declaring 4 GB (gzip, chunked, never written): refused by its shape at once, nothing allocated."""
	path = tmp_path / "ckpt.hdf"
	goodCheckpoint(path)
	replace(path, key, shape=(32768, 32768), dtype=np.float32, chunks=(1024, 1024), compression="gzip")
	assert path.stat().st_size < 100_000
	start = time.perf_counter()
	assertRefused(path, r"not a real scalar|is \(32768, 32768\) float32 in the file but \(6, 5\)")
	assert time.perf_counter() - start < 2.0, "load read the declared-huge dataset"


@pytest.mark.parametrize("key, value, match", [
	("t", np.inf, r"attribute 't' is inf: not finite"),
	("t", 3.9, r"attribute 't' is 3.9 in the file, but it is an integer"),
	("t", -0.5, r"attribute 't' is -0.5 in the file, but it is an integer"),
	("t", -2, r"checkpoint.t must be in \[0, inf\), got -2"),
	("learnRate", np.inf, r"attribute 'learnRate' is inf: not finite"),
	("learnRate", 1e39, r"learnRate = 1e\+39 does not fit float32"),
	("learnRate", np.nan, r"attribute 'learnRate' is nan: not finite"),
	("learnRate", "0.5", r"attribute 'learnRate' is \(\) \|S3 in the file, not a real scalar|attribute 'learnRate' is \(\) object"),
	("factor", np.ones(3), r"attribute 'factor' is \(3,\) float64 in the file, not a real scalar"),
])
def test_bad_attribute_values_are_refused(tmp_path, key, value, match):
	path = tmp_path / "ckpt.hdf"
	goodCheckpoint(path)
	replace(path, ".attrs/" + key, data=value)
	assertRefused(path, match)


def test_unknown_attribute_is_refused(tmp_path):
	path = tmp_path / "ckpt.hdf"
	goodCheckpoint(path)
	with h5py.File(path, "r+") as f:
		f[".attrs/bogus"] = 1.0
	assertRefused(path, r"unknown attribute 'bogus'")


def test_state_of_another_dtype_is_refused(tmp_path):
	"""The same values in float64 (shape right): refused by the dtype, not by luck."""
	path = tmp_path / "ckpt.hdf"
	goodCheckpoint(path)
	with h5py.File(path, "r") as f:
		ms = f[".states/bag.a.ms"][()]
	replace(path, ".states/bag.a.ms", data=ms.astype(np.float64))
	assertRefused(path, r"state 'bag.a.ms' is \(6, 5\) float64 in the file but \(6, 5\) float32 in the optimizer")


@pytest.mark.parametrize("value, match", [(-1.0, r"'bag.a.ms' holds 30 negative values"),
										  (np.nan, r"'bag.a.ms' holds 30 non-finite values"),
										  (np.inf, r"'bag.a.ms' holds 30 non-finite values")])
def test_bad_state_values_are_refused(tmp_path, value, match):
	path = tmp_path / "ckpt.hdf"
	goodCheckpoint(path)
	replace(path, ".states/bag.a.ms", data=np.full((6, 5), value, np.float32))
	assertRefused(path, match)


@pytest.mark.parametrize("value", [np.nan, -1.0, np.inf])
def test_bad_8bit_scales_are_refused(tmp_path, value):
	path = tmp_path / "ckpt.hdf"
	goodCheckpoint(path, stateBits=8)
	with h5py.File(path, "r+") as f:
		f[".states/bag.a.ms.scales"][0] = value
	assertRefused(path, r"'bag.a.ms': its 8-bit scales must be finite and non-negative", stateBits=8)


def test_refused_values_would_have_broken_training(tmp_path):
	"""Why the value checks: the same ms = -1 loaded unchecked makes the next step NaN even with skipNonFinite."""
	path = tmp_path / "ckpt.hdf"
	goodCheckpoint(path)
	opt = RMSProp(skipNonFinite=True)
	bag = ParamBag(SPECS)
	opt.setupOn(bag)
	opt.states["bag.a"]["ms"].set(np.full((6, 5), -1, np.float32))
	randomGrads(bag, np.random.default_rng(1))
	opt.update()
	assert np.isnan(bag.vars["a"].data.get()).any()


@pytest.mark.parametrize("names", [["float32", "float16"], ["float64"], ["/w", "x%2Fy"]])
def test_parameter_names_round_trip(tmp_path, names):
	"""Names that look like PuzzleLib's dtype keys, or hold "/": our own file loads back exactly."""
	specs = {n: ((4, 3), np.float32) for n in names}
	rng = np.random.default_rng(5)
	bag = ParamBag(specs, name="", rng=rng)
	opt = RMSProp(learnRate=0.01)
	opt.setupOn(bag)
	randomGrads(bag, rng)
	opt.update()
	path = tmp_path / "ckpt.hdf"
	opt.save(str(path))

	with h5py.File(path, "r") as f:
		assert set(f) == {".attrs", ".states"}, "a parameter name placed a dataset outside the checkpoint's groups"

	other = RMSProp()
	other.setupOn(ParamBag(specs, name=""))
	other.load(str(path))
	assert other.t == 1
	for n in names:
		np.testing.assert_array_equal(other.states[n]["ms"].get(), opt.states[n]["ms"].get())


def test_load_before_setupOn_is_refused(tmp_path):
	path = tmp_path / "ckpt.hdf"
	goodCheckpoint(path)
	opt = RMSProp()
	with pytest.raises(OptimizerError, match=r"load\(\) before setupOn\(\): call optimizer.setupOn\(net\) first"):
		opt.load(str(path))
	assert opt.t == 0


def fileListing(path):
	with h5py.File(path, "r") as f:
		names = []
		f.visit(names.append)
		return sorted(names)


@pytest.mark.parametrize("setup, name, match", [
	(lambda f: f.create_group("opt.states"), "opt", r"'opt.states' already there"),
	(lambda f: f.create_dataset("opt.attrs", data=1), "opt", r"'opt.attrs' already there"),
	(lambda f: None, "/abs", r"'/abs' would leave the group"),
	(lambda f: None, "../x", r"'../x' would leave the group"),
	(lambda f: f.create_dataset("a", data=1), "a/opt", r"'a' is not a group"),
])
def test_save_into_a_group_is_checked_first(tmp_path, setup, name, match):
	path = tmp_path / "host.hdf"
	with h5py.File(path, "w") as f:
		f.create_group("inner")
		setup(f)
	before, raw = fileListing(path), path.read_bytes()
	opt = freshOptimizer()
	with h5py.File(path, "r+") as f:
		with pytest.raises(OptimizerError, match=match):
			opt.save(f, name=name)
	assert fileListing(path) == before


def test_second_save_under_the_same_name_is_refused(tmp_path):
	path = tmp_path / "host.hdf"
	opt = freshOptimizer()
	with h5py.File(path, "w") as f:
		opt.save(f, name="opt")
		with pytest.raises(OptimizerError, match=r"'opt.attrs', 'opt.states' already there"):
			opt.save(f, name="opt")
		opt.save(f["/"].create_group("g"), name="opt")  # a fresh group is fine
	assert "g/opt.states/bag.a.ms" in fileListing(path)


def test_save_into_read_only_or_closed_files_is_refused(tmp_path):
	path = tmp_path / "host.hdf"
	with h5py.File(path, "w"):
		pass
	opt = freshOptimizer()
	with h5py.File(path, "r") as f:
		with pytest.raises(OptimizerError, match=r"open read-only"):
			opt.save(f, name="opt")
	f = h5py.File(path, "r+")
	f.close()
	with pytest.raises(OptimizerError, match=r"not an open h5py File or Group"):
		opt.save(f, name="opt")
	assert fileListing(path) == []


def test_save_into_a_group_round_trips(tmp_path):
	path = tmp_path / "host.hdf"
	opt = goodCheckpoint(tmp_path / "unused.hdf")
	with h5py.File(path, "w") as f:
		opt.save(f.create_group("run"), name="sub/opt")
	other = freshOptimizer()
	with h5py.File(path, "r") as f:
		other.load(f["run"], name="sub/opt")
	assert (other.t, other.learnRate) == (1, 0.01)
	np.testing.assert_array_equal(other.states["bag.a"]["ms"].get(), opt.states["bag.a"]["ms"].get())


@pytest.mark.parametrize("key", [".states/bag.a.ms", ".attrs/learnRate", ".attrs/t"])
def test_a_changed_value_is_refused_by_its_checksum(tmp_path, key):
	"""A plausible value (finite, in range) changed in place: only the checksum can tell, and it does."""
	path = tmp_path / "ckpt.hdf"
	goodCheckpoint(path, digests=True)
	with h5py.File(path, "r+") as f:
		ds = f[key]
		ds[()] = ds[()] * 2 + 1
	assertRefused(path, r"%r does not match its checksum: the file is damaged" % key.split("/")[1])


def test_a_damaged_checksum_table_is_refused(tmp_path):
	path = tmp_path / "ckpt.hdf"
	goodCheckpoint(path, digests=True)
	with h5py.File(path, "r+") as f:
		f[".states"].attrs[Checkpoint.DIGESTS] = "{not json"
	assertRefused(path, r"the checksum table of '/.states' is damaged")


def test_files_without_checksums_load(tmp_path):
	"""PuzzleLib's files have no checksum table: they load (their data unverified: see docs/checkpoints.md)."""
	path = tmp_path / "ckpt.hdf"
	opt = goodCheckpoint(path, digests=False)
	other = freshOptimizer()
	other.load(str(path))
	assert (other.t, other.learnRate) == (1, 0.01)
	np.testing.assert_array_equal(other.states["bag.a"]["ms"].get(), opt.states["bag.a"]["ms"].get())
