"""``save(layout="puzzlelib")`` on either backend: PuzzleLib's keys for the backend (CPU ``<class 'numpy.float32'>``
over a packed buffer, CUDA ``float32`` over 16-byte blocks), and the file reads back through our own reader of
PuzzleLib's files (PuzzleLibCheckpoint) to the same states. tests/test_drop_in.py has PuzzleLib itself load them."""
import h5py
import numpy as np
import pytest

from conftest import ParamBag, randomGrads
from puzzlelib_rmsprop import OptimizerError, RMSProp, RMSPropGraves
from puzzlelib_rmsprop.Backend import getBackend

SPECS = {"a": ((3, 5), np.float32), "b": ((7, ), np.float32), "c": ((2, ), np.float32)}


def trained(make, useGlobalState, rng, steps=3):
	bag = ParamBag(SPECS, rng=rng)
	opt = make()
	opt.setupOn(bag, useGlobalState=useGlobalState)
	for _ in range(steps):
		randomGrads(bag, rng)
		opt.update()
	return bag, opt


@pytest.mark.parametrize("useGlobalState", [False, True])
@pytest.mark.parametrize("make", [RMSProp, RMSPropGraves], ids=["RMSProp", "RMSPropGraves"])
def test_keys_layout_and_round_trip(tmp_path, rng, make, useGlobalState):
	bag, opt = trained(make, useGlobalState, rng)
	path = tmp_path / "pl.h5"
	opt.save(str(path), layout="puzzlelib")
	cuda = getBackend().name == "cuda"
	stateKeys = sorted(opt.states["bag.a"])

	with h5py.File(path, "r") as f:
		keys = sorted(f[".states"].keys())
		if not useGlobalState:
			assert keys == sorted("bag.%s.%s" % (n, k) for n in SPECS for k in stateKeys)
		else:
			key = "float32" if cuda else "<class 'numpy.float32'>"
			assert keys == sorted("%s.%s" % (key, k) for k in stateKeys)
			step = 4 if cuda else 1  # 16-byte blocks of float32 on CUDA, packed on the CPU
			offset = 0
			for name in sorted(SPECS):  # PuzzleLib's order: sorted by name
				size = int(np.prod(SPECS[name][0]))
				for k in stateKeys:
					np.testing.assert_array_equal(f[".states"]["%s.%s" % (key, k)][offset:offset + size],
												  opt.states["bag." + name][k].get().ravel())
				offset += -(-size // step) * step
			assert f[".states"]["%s.ms" % key].shape == (offset, )
		assert sorted(f[".attrs"].keys()) == sorted(opt.attrs)

	_, other = trained(make, useGlobalState, np.random.default_rng(99), steps=0)
	other.load(str(path))
	assert other.t == opt.t
	for name in SPECS:
		for k in stateKeys:
			np.testing.assert_array_equal(other.states["bag." + name][k].get(), opt.states["bag." + name][k].get())


def test_refused_where_puzzlelib_cannot_continue(tmp_path, rng):
	for make in (lambda: RMSProp(momentum=0.9), lambda: RMSProp(centered=True), lambda: RMSProp(stateBits=8)):
		_, opt = trained(make, True, rng, steps=1)
		with pytest.raises(OptimizerError, match="layout='puzzlelib'"):
			opt.save(str(tmp_path / "x.h5"), layout="puzzlelib")
		assert not (tmp_path / "x.h5").exists()
	with pytest.raises(OptimizerError, match="layout must be"):
		trained(RMSProp, True, rng, steps=0)[1].save(str(tmp_path / "y.h5"), layout="torch")
