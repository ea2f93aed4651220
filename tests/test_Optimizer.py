"""The Optimizer base class: call order, bad variables, checkpoints across state modes."""
import h5py
import numpy as np
import pytest

from conftest import ParamBag, randomGrads, snapshot
from reference import rmspropStep
from puzzlelib_rmsprop import OptimizerError, RMSProp, Variable
from puzzlelib_rmsprop.Backend import gpuarray


def test_update_and_zero_grad_before_setup():
	opt = RMSProp()
	with pytest.raises(OptimizerError, match="update.*before setupOn"):
		opt.update()
	with pytest.raises(OptimizerError, match="zeroGradParams.*before setupOn"):
		opt.zeroGradParams()


def test_setup_twice(rng):
	"""As PuzzleLib: a second setupOn sets up anew on the new module (fresh state), the old one is left alone."""
	opt = RMSProp(learnRate=0.1)
	old, new = ParamBag({"w": ((3, ), np.float32)}, rng=rng), ParamBag({"w": ((3, ), np.float32)}, rng=rng)
	opt.setupOn(old)
	old.vars["w"].grad.set(np.ones(3, np.float32))
	opt.update()
	before = old.vars["w"].data.get()
	opt.setupOn(new)
	assert not opt.states["bag.w"]["ms"].get().any()
	new.vars["w"].grad.set(np.ones(3, np.float32))
	start = new.vars["w"].data.get()
	opt.update()
	np.testing.assert_array_equal(old.vars["w"].data.get(), before)
	assert (new.vars["w"].data.get() > start).all() and opt.t == 2


def test_module_without_variables():
	with pytest.raises(OptimizerError, match="no trainable variables"):
		RMSProp().setupOn(ParamBag({}))


@pytest.mark.parametrize("make, message", [
	(lambda: Variable(gpuarray.to_gpu(np.zeros(4, np.float64))), "'bag.w' has dtype float64"),
	(lambda: Variable(gpuarray.to_gpu(np.zeros(4, np.int32))), "'bag.w' has dtype int32"),
	(lambda: Variable(gpuarray.to_gpu(np.zeros(4, np.float32)), grad=gpuarray.zeros((5, ), np.float32)), "'bag.w': grad is"),
	(lambda: Variable(gpuarray.to_gpu(np.zeros(4, np.float32)), withgrad=False), "'bag.w' has no grad"),
	(lambda: Variable(gpuarray.to_gpu(np.zeros((4, 4), np.float32))[:, 1], grad=gpuarray.zeros((4, ), np.float32)),
	 "'bag.w': data is not contiguous"),
	(lambda: Variable(np.zeros(4, np.float32).tolist(), grad=np.zeros(4, np.float32).tolist()), "'bag.w': data and grad must be (cpu|cuda) backend arrays"),
])
def test_bad_variables_are_named(make, message):
	bag = ParamBag({})
	bag.setVar("w", make())
	opt = RMSProp()
	with pytest.raises(OptimizerError, match=message):
		opt.setupOn(bag, useGlobalState=True)
	assert opt.module is None and opt.states == {}, "a failed setupOn leaves the optimizer untouched"


@pytest.mark.parametrize("useGlobalState", [False, True])
def test_failed_setup_leaves_a_multi_variable_module_unchanged(useGlobalState, rng):
	"""Three good variables sorted before and after a bad one: setupOn refuses, and every variable is still the same
	object holding the same data and grad (global state has rebound nothing), the optimizer has no state, and the
	same optimizer then sets up on the repaired module."""
	bag = ParamBag({"a": ((5, ), np.float32), "c": ((3, 2), np.float32), "d": ((7, ), np.float32)}, rng=rng)
	randomGrads(bag, rng)
	bag.setVar("b", Variable(gpuarray.to_gpu(np.ones(4, np.float32)), grad=gpuarray.zeros((5, ), np.float32)))
	before = {name: (var, var.data, var.grad, var.data.get(), var.grad.get()) for name, var in bag.vars.items()}

	opt = RMSProp()
	with pytest.raises(OptimizerError, match="variable 'bag.b': grad is \\(5,\\) float32 but data is \\(4,\\) float32"):
		opt.setupOn(bag, useGlobalState=useGlobalState)
	assert opt.module is None and opt.states == {} and not opt.globalVar, "a failed setupOn leaves the optimizer untouched"
	assert sorted(bag.vars) == sorted(before)
	for name, (var, data, grad, values, grads) in before.items():
		assert bag.vars[name] is var and var.data is data and var.grad is grad, name
		np.testing.assert_array_equal(var.data.get(), values, err_msg=name)
		np.testing.assert_array_equal(var.grad.get(), grads, err_msg=name)

	bag.setVar("b", Variable(gpuarray.to_gpu(np.ones(4, np.float32))))
	opt.setupOn(bag, useGlobalState=useGlobalState)
	assert sorted(opt.states) == ["bag.a", "bag.b", "bag.c", "bag.d"]


class PuzzleLibStyleNodeInfo:
	"""A nodeinfo of PuzzleLib's kind (index, gridsize, sumTensor, broadcastBuffer, meanValue) on one node."""
	index, gridsize = 0, 1

	def sumTensor(self, name, ary):
		pass

	def broadcastBuffer(self, name, ary):
		pass

	def meanValue(self, value):
		return value


def test_nodeinfo_without_global_state_is_refused(rng):
	"""Data-parallel averaging works on the packed buffers only: local state with a nodeinfo is refused, naming
	the fix, and changes nothing; with useGlobalState=True the same optimizer sets up."""
	bag = ParamBag({"w": ((6, ), np.float32), "b": ((2, ), np.float32)}, rng=rng)
	before = {name: (var.data, var.data.get()) for name, var in bag.vars.items()}
	opt = RMSProp(nodeinfo=PuzzleLibStyleNodeInfo())
	with pytest.raises(OptimizerError, match=r"^setupOn: nodeinfo needs useGlobalState=True$"):
		opt.setupOn(bag)
	assert opt.module is None and opt.states == {}
	for name, (data, values) in before.items():
		assert bag.getVar(name).data is data
		np.testing.assert_array_equal(data.get(), values)
	opt.setupOn(bag, useGlobalState=True)
	assert opt.globalState and sorted(opt.states) == ["bag.b", "bag.w"]


def test_shared_variable_is_updated_once(rng):
	"""Two names for one variable (PuzzleLib allows it): one state, one update."""
	bag = ParamBag({"w": ((8, ), np.float32)}, rng=rng)
	bag.vars["alias"] = bag.vars["w"]

	for useGlobalState in (False, True):
		opt = RMSProp(learnRate=0.1)
		opt.setupOn(bag, useGlobalState=useGlobalState)
		assert list(opt.states) == ["bag.w"]
		assert bag.getVar("w") is bag.getVar("alias")

		before = bag.getVar("w").data.get()
		grads = randomGrads(bag, rng)
		opt.update()
		expected, _ = rmspropStep(before, grads["alias"], np.zeros_like(before), 0.1)  # written last
		np.testing.assert_array_equal(bag.getVar("alias").data.get(), expected)


def train(bag, opt, steps, seed):
	gradRng = np.random.default_rng(seed)
	for _ in range(steps):
		randomGrads(bag, gradRng)
		opt.update()


@pytest.mark.parametrize("saveGlobal, loadGlobal", [(False, False), (True, True), (True, False), (False, True)])
def test_checkpoint_round_trip_across_modes(tmp_path, saveGlobal, loadGlobal):
	specs = {"a": ((5, 3), np.float32), "b": ((7, ), np.float16)}
	path = tmp_path / "opt.hdf"

	# reference run: 6 uninterrupted steps
	full = ParamBag(specs)
	optFull = RMSProp(learnRate=1e-2, factor=0.8)
	optFull.setupOn(full, useGlobalState=saveGlobal)
	train(full, optFull, 3, seed=1)
	weights = snapshot(full)
	optFull.save(str(path))
	train(full, optFull, 3, seed=2)

	# resumed run: a new net with the saved weights and a new optimizer that loads the checkpoint
	resumed = ParamBag(specs)
	for name, w in weights.items():
		resumed.getVar(name).data.set(w)
	opt = RMSProp()
	opt.setupOn(resumed, useGlobalState=loadGlobal)
	opt.load(str(path))
	assert (opt.t, opt.learnRate, opt.factor) == (3, 1e-2, 0.8)
	train(resumed, opt, 3, seed=2)

	for name, w in snapshot(full).items():
		np.testing.assert_array_equal(snapshot(resumed)[name], w)


def test_checkpoint_layout_is_puzzlelibs(tmp_path, rng):
	bag = ParamBag({"w": ((4, ), np.float32)}, rng=rng)
	opt = RMSProp()
	opt.setupOn(bag, useGlobalState=True)
	train(bag, opt, 1, seed=0)

	with h5py.File(tmp_path / "x.hdf", "w") as f:
		opt.save(f, name="opt")

	with h5py.File(tmp_path / "x.hdf", "r") as f:
		assert sorted(f["opt.attrs"]) == ["epsilon", "factor", "learnRate", "t"]
		np.testing.assert_array_equal(f["opt.states"]["bag.w.ms"][()], opt.states["bag.w"]["ms"].get())


def test_load_reports_every_mismatch_and_changes_nothing(tmp_path, rng):
	small = ParamBag({"a": ((4, ), np.float32), "b": ((2, ), np.float32)}, rng=rng)
	opt = RMSProp(learnRate=0.5)
	opt.setupOn(small)
	opt.save(str(tmp_path / "small.hdf"))

	other = ParamBag({"a": ((5, ), np.float32), "c": ((2, ), np.float32)}, rng=rng)
	target = RMSProp(learnRate=0.1)
	target.setupOn(other)
	train(other, target, 1, seed=0)
	before = {name: s["ms"].get() for name, s in target.states.items()}

	with pytest.raises(OptimizerError) as info:
		target.load(str(tmp_path / "small.hdf"))
	assert "'bag.a.ms' is (4,) float32 in the file but (5,) float32" in str(info.value)
	assert "missing state 'bag.c.ms'" in str(info.value)

	assert target.learnRate == 0.1 and target.t == 1
	for name, ms in before.items():
		np.testing.assert_array_equal(target.states[name]["ms"].get(), ms)


def test_load_garbage_file(tmp_path, rng):
	path = tmp_path / "garbage.hdf"
	path.write_bytes(b"not an hdf5 file" * 10)
	opt = RMSProp()
	opt.setupOn(ParamBag({"w": ((4, ), np.float32)}, rng=rng))
	with pytest.raises(OptimizerError, match="cannot open checkpoint"):
		opt.load(str(path))


def test_save_replaces_atomically(tmp_path, rng):
	"""A failing save leaves the previous checkpoint readable and no temporary file behind."""
	path = tmp_path / "ckpt.hdf"
	bag = ParamBag({"w": ((4, ), np.float32)}, rng=rng)
	opt = RMSProp()
	opt.setupOn(bag)
	opt.save(str(path))

	opt.setAttr("broken", object())  # h5py cannot store it
	with pytest.raises(TypeError):
		opt.save(str(path))

	assert [p.name for p in tmp_path.iterdir()] == ["ckpt.hdf"]
	with h5py.File(path, "r") as f:
		assert "broken" not in f[".attrs"]
