"""A small model for the sharded-state tests (tests/test_Sharding.py, tests/shard_rank.py): NumPy forward and
backward, so one process on the whole batch and N ranks on their rows compute the same gradients up to the order
of the final summation.

Variables of odd sizes (they straddle buckets and ranks): ``w1`` (48, 40), ``b1`` (40,), ``w2`` (40, 3), ``b2``
(3,), ``p`` (601,) with learnRate 0.5 and wc 0.01 (WeightDecay), ``frozen`` (300,) with learnRate 0 (its grad is
not zero, so an update that ignored the multiplier would move it). ``dtype="mixed"``: ``p`` and ``frozen`` in
float16 (and no wc: PuzzleLib's WeightDecay is float32-only), the others in float32."""
import numpy as np

from puzzlelib_rmsprop import RMSProp, RMSPropGraves
from puzzlelib_rmsprop.Backend import gpuarray
from puzzlelib_rmsprop.Hooks import WeightDecay
from puzzlelib_rmsprop.Variable import Variable

BATCH = 24
SHAPES = {"w1": (48, 40), "b1": (40, ), "w2": (40, 3), "b2": (3, ), "p": (601, ), "frozen": (300, )}


class Model:
	"""What Optimizer.setupOn needs of a module: getVarTable, setVar, getVar."""
	name = "model"

	def __init__(self, dtype=np.float32, seed=0):
		rng = np.random.default_rng(seed)
		self.vars = {}
		for name, shape in SHAPES.items():
			kind = varDtype(dtype, name)
			var = Variable(gpuarray.to_gpu((rng.standard_normal(shape) * 0.3).astype(kind)), name=name)
			self.vars[name] = var
		self.vars["p"].learnRate = 0.5
		self.vars["p"].wc = 0.01 if varDtype(dtype, "p") == np.float32 else 0.0
		self.vars["frozen"].learnRate = 0.0

	def getVarTable(self):
		return {var: [name] for name, var in self.vars.items()}

	def setVar(self, name, var):
		self.vars[name] = var

	def getVar(self, name):
		return self.vars[name]

	def params(self):
		return {name: var.data.get() for name, var in self.vars.items()}

	def setParams(self, params):
		for name, value in params.items():
			self.vars[name].data.set(value.astype(self.vars[name].data.dtype))


def varDtype(dtype, name):
	"""The dtype of variable ``name`` in a model of ``dtype`` (a dtype, or "mixed")."""
	if isinstance(dtype, str) and dtype == "mixed":
		return np.dtype(np.float16 if name in ("p", "frozen") else np.float32)
	return np.dtype(dtype)


def data(seed=1):
	rng = np.random.default_rng(seed)
	return (rng.standard_normal((BATCH, 48)), rng.standard_normal((BATCH, 3)), rng.standard_normal((BATCH, 601)),
			rng.standard_normal((BATCH, 300)))


def descent(model, rows, scale):
	"""Minus the gradient of the loss summed over ``rows`` of the batch, times ``scale``, in float64."""
	x, t, z, u = (d[rows] for d in data())
	w = {name: var.data.get().astype(np.float64) for name, var in model.vars.items()}
	h = np.tanh(x @ w["w1"] + w["b1"])
	err = h @ w["w2"] + w["b2"] - t
	dh = (err @ w["w2"].T) * (1 - h * h)
	grads = {"w1": x.T @ dh, "b1": dh.sum(0), "w2": h.T @ err, "b2": err.sum(0), "p": (w["p"] - z).sum(0),
			 "frozen": (w["frozen"] - u).sum(0)}
	loss = 0.5 * ((err ** 2).sum() + ((w["p"] - z) ** 2).sum())
	return {name: -g * scale for name, g in grads.items()}, loss * scale


def makeOptimizer(kind, options, nodeinfo=None, shardState=False, dtype=np.float32):
	"""RMSProp or RMSPropGraves with ``options``; the WeightDecay hook (wc of ``p``) where the dtype allows it."""
	options = dict(options)
	if kind == "graves":
		opt = RMSPropGraves(learnRate=1e-3, nodeinfo=nodeinfo, shardState=shardState, **options)
	else:
		opt = RMSProp(learnRate=1e-3, nodeinfo=nodeinfo, shardState=shardState, **options)
	if varDtype(dtype, "w1") == np.float32:  # PuzzleLib's WeightDecay is float32-only (and skips wc = 0)
		opt.addHook(WeightDecay(1.0))
	return opt


def train(model, opt, steps, rank=0, gridsize=1, poison=None, start=0):
	"""``steps`` updates; each rank takes its rows of the batch (weighted so the ranks' mean is the batch's mean);
	``b1``'s multiplier drops at step 12 and the learning rate at step 18.
	``poison = (step, rank)`` puts an inf into that rank's grad at that step (step counted from 0 over the run)."""
	rows = np.array_split(np.arange(BATCH), gridsize)[rank]
	scale = gridsize / BATCH
	losses = []
	for step in range(start, start + steps):
		# a multiplier and the learning rate change mid-run (set again at that step by a resumed run)
		model.vars["b1"].learnRate = 1.0 if step < 12 else 0.25
		opt.learnRate = 1e-3 if step < 18 else 5e-4
		opt.zeroGradParams()
		grads, loss = descent(model, rows, scale)
		for name, g in grads.items():
			if poison is not None and poison == (step, rank) and name == "w2":
				g = g.copy()
				g[1, 1] = np.inf
			model.vars[name].grad.set(g.astype(model.vars[name].grad.dtype))
		opt.update()
		losses.append(loss)
	return losses
