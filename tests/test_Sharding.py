"""Sharded optimizer state over MPI (shardState=True, ZeRO stage 1) and the reduce-scatter + all-gather averaging.

The references are independent of the code under test: one process training on the whole batch without any
nodeinfo (tests/shard_model.py computes the gradients in float64 with NumPy), a float64 sum of the ranks' float16
gradients, and the replicated path on the same collectives (bit-identical updates element by element).

Tolerance against one process: the ranks' gradients differ from the whole batch's only in the last float32 additions
(N partial sums added in float32, then divided, instead of one float64 sum rounded once): a few float32 ulps of the
gradient. RMSProp's step lr * g / (sqrt(ms) + eps) moves by far less than that, so what remains is that a parameter
may round to a neighbouring float32 at any step: at most about one ulp per step, i.e. steps * 2^-23 * |p| (25 steps,
|p| < 2: 6e-6). ATOL = 1e-5 holds that with margin; a real fault (a piece updated twice or not at all, a missing
all-gather, a frozen variable moved, a multiplier or the mean wrong) moves parameters by about lr = 1e-3 per step."""
import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import shard_model  # noqa: E402
from conftest import runMpiJob  # noqa: E402

pytestmark = pytest.mark.mpi

STEPS = 25
ATOL = 1e-5
#: 8-bit state (stateBits=8): an element's code can flip where the two runs' states differ in their last bits, moving
#: that element's step by the code's precision (2^-4 relative for ms's E5M3: a few percent of one lr = 1e-3 step)
ATOL8 = 1e-4
Q8 = {"stateBits": 8, "momentum": 0.9, "centered": True}


#: every optimizer flavour, the multipliers, wc through the hook, skipNonFinite, buckets small (variables straddle
#: buckets and ranks) and one bucket; "poison" puts an inf into the last rank's grad at step 7
RUNS = [
	{"name": "rmsprop", "kind": "rmsprop", "options": {}},
	{"name": "torch", "kind": "rmsprop", "options": {"momentum": 0.9, "centered": True, "weightDecay": 0.01}},
	{"name": "tf", "kind": "rmsprop", "options": {"epsilonInSqrt": True, "initialMs": 1.0, "momentum": 0.5}},
	{"name": "graves", "kind": "graves", "options": {}},
	{"name": "skip", "kind": "rmsprop", "options": {"skipNonFinite": True}, "poison": "last"},
	{"name": "onebucket", "kind": "rmsprop", "options": {}, "bucketBytes": 25 * 2 ** 20},
	{"name": "replicated", "kind": "rmsprop", "options": {}, "shard": False},
	{"name": "half", "kind": "rmsprop", "options": {"momentum": 0.9}, "dtype": "float16"},
	{"name": "half-replicated", "kind": "rmsprop", "options": {"momentum": 0.9}, "dtype": "float16", "shard": False},
	{"name": "bf16", "kind": "graves", "options": {}, "dtype": "bfloat16"},
	{"name": "bf16-replicated", "kind": "graves", "options": {}, "dtype": "bfloat16", "shard": False},
	{"name": "mixed", "kind": "rmsprop", "options": {"centered": True}, "dtype": "mixed"},
	{"name": "mixed-replicated", "kind": "rmsprop", "options": {"centered": True}, "dtype": "mixed", "shard": False},
	{"name": "q8", "kind": "rmsprop", "options": Q8}, {"name": "q8-replicated", "kind": "rmsprop", "options": Q8, "shard": False},
	{"name": "q8-graves", "kind": "graves", "options": {"stateBits": 8}},
]


def runJob(launcher, n, specs, out, limit=120):
	"""Runs tests/shard_rank.py on ``n`` ranks; past ``limit`` seconds kills the process group and fails."""
	job = out / ("job%d.json" % n)
	job.write_text(json.dumps(specs))
	result = runMpiJob([launcher, "-n", str(n), sys.executable, str(HERE / "shard_rank.py"), str(job), str(out)], limit)
	assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
	return [{name: {key: np.load(out / ("%s.rank%d.npz" % (name, r)))[key] for key in np.load(out / ("%s.rank%d.npz" % (name, r))).files}
			 for name in [s["name"] for s in specs]} for r in range(n)]


def bits(ary):
	"""The bits of a 16-bit array (bfloat16 comes back from npz as 2-byte voids), other arrays as they are."""
	return ary.view(np.uint16) if ary.dtype.itemsize == 2 else ary


def single(spec, steps=STEPS, poisonRank=0):
	"""One process on the whole batch, no nodeinfo: (model, optimizer, losses)."""
	dtype = spec.get("dtype", "float32")
	dtype = dtype if dtype == "mixed" else np.dtype(dtype)
	model = shard_model.Model(dtype)
	opt = shard_model.makeOptimizer(spec["kind"], spec["options"], dtype=dtype)
	opt.setupOn(model, useGlobalState=True)
	losses = shard_model.train(model, opt, steps, poison=(7, poisonRank) if spec.get("poison") else None)
	return model, opt, losses


def jobSpecs(n):
	specs = []
	for spec in RUNS:
		spec = dict(spec, steps=STEPS)
		if spec.get("poison"):
			spec["poison"] = [7, n - 1]
		specs.append(spec)
	return specs


@pytest.mark.parametrize("n", [1, 2, 3])
def test_sharded_training_equals_one_process(launcher, n, tmp_path):
	ranks = runJob(launcher, n, jobSpecs(n), tmp_path)
	start = shard_model.Model().params()

	for spec in RUNS:
		name = spec["name"]
		for rank in ranks[1:]:  # every rank holds exactly rank 0's parameters
			for key in shard_model.SHAPES:
				np.testing.assert_array_equal(bits(rank[name][key]), bits(ranks[0][name][key]), err_msg="%s %s" % (name, key))
		if spec.get("dtype") in ("float16", "bfloat16"):
			continue  # compared with its replicated twin below

		model, opt, _ = single(spec)
		atol = ATOL8 if spec["options"].get("stateBits") else ATOL
		for key, reference in model.params().items():
			if reference.dtype != np.float32:
				continue  # "mixed": its float16 variables are compared with the replicated twin below
			np.testing.assert_allclose(ranks[0][name][key], reference, rtol=0, atol=atol, err_msg="%s %s" % (name, key))
		np.testing.assert_array_equal(ranks[0][name]["frozen"], model.vars["frozen"].data.get())  # learnRate 0: untouched
		np.testing.assert_array_equal(ranks[0][name]["frozen"], start["frozen"].astype(ranks[0][name]["frozen"].dtype))
		assert int(ranks[0][name]["t"]) == opt.t and int(ranks[0][name]["skippedSteps"]) == opt.skippedSteps

		# this rank's share of the state: 1/N of the total, plus at most one 256-element piece of padding per state
		states = sum(len(state) for state in opt.globalStates.values())
		share = ranks[0][name]["stateNbytes"]
		if spec.get("shard", True):
			# 8-bit: a piece of 256 codes has one scale, so the padding bound holds for its 256 + 4 bytes too
			assert share <= opt.stateNbytes / n + states * 256 * 4, (name, share, opt.stateNbytes)
		else:
			assert share >= opt.stateNbytes

	assert int(ranks[0]["skip"]["skippedSteps"]) == 1 and int(ranks[0]["skip"]["t"]) == STEPS - 1
	# the sharded update is the replicated one, element by element: same collectives, same kernels
	for key in shard_model.SHAPES:
		np.testing.assert_array_equal(ranks[0]["rmsprop"][key], ranks[0]["replicated"][key])
		for twin in ("half", "bf16", "mixed"):
			np.testing.assert_array_equal(bits(ranks[0][twin][key]), bits(ranks[0][twin + "-replicated"][key]), err_msg="%s %s" % (twin, key))
		np.testing.assert_array_equal(ranks[0]["q8"][key], ranks[0]["q8-replicated"][key])
	# 8-bit state really (codes and scales), below float32's share with the same three states
	assert hasattr(single(RUNS[-3], steps=0)[1].globalStates[np.float32]["ms"], "codes")
	assert ranks[0]["q8"]["stateNbytes"] < 0.5 * ranks[0]["torch"]["stateNbytes"]
	half, bf16 = ranks[0]["half"]["w1"], bits(ranks[0]["bf16"]["w1"])  # npz keeps bfloat16 as 2-byte voids
	assert half.dtype == np.float16 and not np.array_equal(half, start["w1"].astype(np.float16))
	assert bf16.dtype == np.uint16 and not np.array_equal(bf16, bits(shard_model.Model("bfloat16").params()["w1"]))
	assert ranks[0]["mixed"]["p"].dtype == np.float16 and ranks[0]["mixed"]["w1"].dtype == np.float32


@pytest.mark.parametrize("bits", [32, 8])
def test_checkpoint_saved_on_two_ranks_continues_on_three_and_on_one(launcher, tmp_path, bits):
	from puzzlelib_rmsprop.Grid import MPINodeInfo

	spec = {"kind": "rmsprop", "options": Q8 if bits == 8 else {"momentum": 0.9, "centered": True}}
	atol = ATOL8 if bits == 8 else ATOL
	checkpoint = str(tmp_path / "opt.h5")
	# two ranks, sharded: 10 steps, save, 10 more (the uninterrupted run)
	two = runJob(launcher, 2, [dict(spec, name="whole", steps=20, save=[checkpoint, 10])], tmp_path)

	# the file holds every variable's full state, by name, as one process after 10 steps has it
	_, opt10, _ = single(spec, steps=10)
	if bits == 32:
		assert set(h5py.File(checkpoint, "r")[".states"]) == {"%s.%s" % (v, s) for v in shard_model.SHAPES for s in ("ms", "mg", "mom")}
		with h5py.File(checkpoint, "r") as f:
			for var in shard_model.SHAPES:
				for state in ("ms", "mg", "mom"):
					np.testing.assert_allclose(f[".states"]["%s.%s" % (var, state)][()], opt10.states[var][state].get(), rtol=1e-4, atol=1e-6)

	resumed = dict(spec, steps=10, load=[checkpoint, checkpoint + ".params.npz"])
	three = runJob(launcher, 3, [dict(resumed, name="sharded"), dict(resumed, name="replicated", shard=False)], tmp_path)

	def resumeHere(nodeinfo, shard, load=True):
		model = shard_model.Model()
		opt = shard_model.makeOptimizer(spec["kind"], spec["options"], nodeinfo, shard)
		opt.setupOn(model, useGlobalState=True)
		model.setParams(dict(np.load(checkpoint + ".params.npz")))
		if load:
			opt.load(checkpoint)
		assert opt.t == (10 if load else 0)
		shard_model.train(model, opt, 10, start=10)
		return model.params()

	one = MPINodeInfo(abortOnError=False, bucketBytes=4096)
	continued = {"3 ranks sharded": three[0]["sharded"], "3 ranks replicated": three[0]["replicated"],
				 "1 process": resumeHere(None, False), "1 rank sharded": resumeHere(one, True)}
	reference, _, _ = single(spec, steps=20)
	for label, params in continued.items():
		for key in shard_model.SHAPES:
			np.testing.assert_allclose(params[key], two[0]["whole"][key], rtol=0, atol=atol, err_msg="%s %s" % (label, key))
			np.testing.assert_allclose(params[key], reference.params()[key], rtol=0, atol=atol, err_msg="%s %s" % (label, key))
	for key in shard_model.SHAPES:
		np.testing.assert_array_equal(three[1]["sharded"][key], three[0]["sharded"][key])

	# the test can tell: continuing without the saved state ends far outside the tolerance
	fresh = resumeHere(None, False, load=False)
	assert max(np.abs(fresh[k] - two[0]["whole"][k]).max() for k in ("w1", "w2")) > 10 * atol


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_float16_gradients_are_summed_in_float32(launcher, dtype):
	"""3 ranks: the mean of 16-bit gradients is the float64 mean rounded once (within one 16-bit ulp where float32's
	division rounds first), far closer than a sum in the 16-bit type."""
	from puzzlelib_rmsprop.Grid import runGrid
	import grid_targets

	values = [grid_targets.halfGradient(r, dtype) for r in range(3)]
	kind = values[0].dtype
	exact = (values[0].astype(np.float64) + values[1].astype(np.float64) + values[2].astype(np.float64)) / 3
	halfSum = (((values[0] + values[1]) + values[2]) / kind.type(3)).astype(np.float64)
	rounded = exact.astype(kind).astype(np.float64)
	# one ulp of the 16-bit type at each value: float32's spacing, times 2^(23 - the type's mantissa bits)
	ulp = np.spacing(np.abs(rounded).astype(np.float32)).astype(np.float64) * (2.0 ** 13 if dtype == "float16" else 2.0 ** 16)

	for mean in runGrid(grid_targets.halfMean, 3, dtype, timeout=120):
		mean = mean.astype(np.float64)
		ours, naive = np.abs(mean - exact), np.abs(halfSum - exact)
		assert (ours <= ulp).all()  # within one 16-bit ulp
		assert (ours <= naive).all() and ours.sum() < naive.sum(), (ours.sum(), naive.sum())
		# rounded once: nearly always the float64 mean's own rounding (a 16-bit sum gets it far less often)
		assert np.mean(mean == rounded) > 0.99 and np.mean(halfSum == rounded) < 0.9, (np.mean(mean == rounded), np.mean(halfSum == rounded))


def test_shard_plan_pieces():
	from puzzlelib_rmsprop.Grid import ShardPlan

	for size, dtype, n, bucket in [(25557032, np.float32, 2, 25 * 2 ** 20), (25557032, np.float16, 3, 25 * 2 ** 20),
								   (1000, np.float32, 3, 4096), (5, np.float16, 2, 1), (0, np.float32, 3, 4096)]:
		plan = ShardPlan(size, dtype, n, bucketBytes=bucket)
		assert plan.padded >= size and plan.padded == n * plan.shardLen and plan.padded - size < n * 256 + 1
		covered = np.zeros(plan.padded, dtype=np.int64)
		for rank in range(n):
			shard = 0
			for a, s, p in plan.pieces(rank):
				assert a % 256 == 0 and p % 256 == 0 and s == shard  # aligned for 16 bytes and for 8-bit state blocks
				covered[a:a + p] += 1
				shard += p
			assert shard == plan.shardLen
		assert (covered == 1).all()  # every element owned by exactly one rank
		assert all(p * np.dtype(dtype).itemsize * n <= max(bucket, n * 1024) for _, _, p in plan.buckets)


def test_shard_state_needs_our_node_info():
	from puzzlelib_rmsprop.Errors import OptimizerError

	class PuzzleLibLike:
		index, gridsize = 0, 1

		def broadcastBuffer(self, name, buffer):
			pass

		def sumTensor(self, name, tensor):
			pass

	for nodeinfo, message in [(None, "needs nodeinfo=puzzlelib_rmsprop.Grid.MPINodeInfo\\(...\\) \\(got no nodeinfo\\)"),
							  (PuzzleLibLike(), "\\(got PuzzleLibLike\\)")]:
		model = shard_model.Model()
		opt = shard_model.makeOptimizer("rmsprop", {}, nodeinfo, True)
		with pytest.raises(OptimizerError, match=message):
			opt.setupOn(model, useGlobalState=True)
		assert opt.module is None and isinstance(model.vars["w1"].data, np.ndarray)

	from puzzlelib_rmsprop.Grid import MPINodeInfo
	with pytest.raises(OptimizerError, match="bucketBytes must be a positive number of bytes, got 0"):
		MPINodeInfo(bucketBytes=0)


def test_grid_benchmark_runs(launcher, tmp_path):
	"""Function only (no timing is checked): the grid mode of the benchmark under mpiexec, rank 0 reporting."""
	result = subprocess.run([launcher, "-n", "2", sys.executable, "-m", "puzzlelib_rmsprop.bench", "--grid", "--quick",
							 "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
	assert result.returncode == 0, result.stderr[-3000:]
	assert result.stdout.count("Grid benchmark: 2 MPI ranks") == 1
	results = json.loads((tmp_path / "results.json").read_text())
	assert set(results["seconds"]) == {"MPI_Allreduce alone", "Reduce_scatter_block + Allgather alone", "averaging alone (MPINodeInfo.sumTensor)",
									   "replicated step (averaging + update)", "sharded step (averaging + update)",
									   "update alone, one rank's share"}
	states = results["stateBytes"]
	assert states["sharded, per rank (rank 0)"] <= states["total / ranks"] + 256 * 4 and states["replicated, per rank"] >= 2 * states["total / ranks"]
	assert results["targets"] == []  # --quick evaluates none


def test_a_failed_save_raises_on_every_rank(launcher, tmp_path):
	"""Rank 0 cannot write the file: it raises its own error, the other ranks a GridError saying so (nobody waits)."""
	from puzzlelib_rmsprop.Grid import runGrid
	import grid_targets

	missing = str(tmp_path / "no such directory" / "opt.h5")
	outcomes = runGrid(grid_targets.saveInto, 2, missing, timeout=120)
	assert outcomes[0][0] == "FileNotFoundError", outcomes
	assert outcomes[1] == ("GridError", "rank 1 of 2: rank 0 could not write the checkpoint %s (see its error)" % missing)
	assert runGrid(grid_targets.saveInto, 2, str(tmp_path / "opt.h5"), timeout=120) == [(None, "")] * 2


def test_sharded_load_checks_the_file_before_anything_changes(tmp_path):
	"""One rank, sharded: a checkpoint of another model is refused with every mismatch named; the state is untouched."""
	from puzzlelib_rmsprop.Errors import OptimizerError
	from puzzlelib_rmsprop.Grid import MPINodeInfo

	other = shard_model.Model()
	otherOpt = shard_model.makeOptimizer("rmsprop", {"momentum": 0.9}, None, False)
	otherOpt.setupOn(other, useGlobalState=True)
	shard_model.train(other, otherOpt, 3)
	with h5py.File(tmp_path / "other.h5", "w") as f:
		otherOpt.save(f)
		del f[".states"]["w1.ms"]
		f[".states"].create_dataset("w1.ms", data=np.zeros((3, 3), np.float32))

	model = shard_model.Model()
	opt = shard_model.makeOptimizer("rmsprop", {"momentum": 0.9}, MPINodeInfo(abortOnError=False, bucketBytes=4096), True)
	opt.setupOn(model, useGlobalState=True)
	shard_model.train(model, opt, 2)
	before = {key: ary.get() for key, ary in opt.globalStates[np.float32].items()}
	with pytest.raises(OptimizerError, match="state 'w1.ms' is \\(3, 3\\) float32 in the file but \\(48, 40\\) float32 in the optimizer"):
		opt.load(str(tmp_path / "other.h5"))
	assert opt.t == 2 and all(np.array_equal(ary.get(), before[key]) for key, ary in opt.globalStates[np.float32].items())

	# the same file with w1.ms restored loads, and gives this rank's pieces the file's values
	with h5py.File(tmp_path / "other.h5", "a") as f:
		del f[".states"]["w1.ms"]
		f[".states"].create_dataset("w1.ms", data=otherOpt.states["w1"]["ms"].get())
	opt.load(str(tmp_path / "other.h5"))
	assert opt.t == 3
	saved = str(tmp_path / "again.h5")
	opt.save(saved)
	with h5py.File(saved, "r") as f:
		for var in shard_model.SHAPES:
			for key in ("ms", "mom"):
				np.testing.assert_array_equal(f[".states"]["%s.%s" % (var, key)][()], otherOpt.states[var][key].get())
