"""Importable targets for runGrid in tests/test_Grid.py (runGrid pickles the target by reference)."""


def rankAndMean(nodeinfo, value):
	return nodeinfo.index, nodeinfo.gridsize, nodeinfo.meanValue(value + nodeinfo.index)


def halfGradient(rank, dtype="float16"):
	"""A rank's 16-bit gradient for the 16-bit mean test: values whose 16-bit sums lose bits."""
	import numpy as np
	if dtype == "bfloat16":
		from ml_dtypes import bfloat16 as dtype
	rng = np.random.default_rng(100 + rank)
	return (rng.uniform(0.5, 2.0, 4099) * rng.choice([1, -1, 1000], 4099)).astype(dtype)


def halfMean(nodeinfo, dtype="float16"):
	"""This rank's view of the mean of the ranks' 16-bit gradients, averaged by the node info (as float32: the
	values are exact in it, and a bfloat16 array would not unpickle without ml_dtypes imported)."""
	import numpy as np
	grad = halfGradient(nodeinfo.index, dtype)
	nodeinfo.sumTensor("grad", grad)
	return grad.astype(np.float32)


def saveInto(nodeinfo, path):
	"""Sets up a sharded optimizer on tests/shard_model.py's model and saves it to ``path``: each rank's outcome, as
	(exception class name or None, message)."""
	import os
	import sys
	sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
	import shard_model
	model = shard_model.Model()
	opt = shard_model.makeOptimizer("rmsprop", {}, nodeinfo, shardState=True)
	opt.setupOn(model, useGlobalState=True)
	try:
		opt.save(path)
	except Exception as e:  # noqa: BLE001 (the test looks at what each rank raised)
		return type(e).__name__, str(e)
	return None, ""


def puzzlelibArrays(nodeinfo, size=4099):
	"""Our MPINodeInfo on PuzzleLib 1.0.3's own CPUArrays (tests/puzzlelib_oracle.py, on its CPU backend): a
	gradient of this rank's values averaged by sumTensor, and rank 0's buffer spread by broadcastBuffer. Returns
	(what this rank sent, its gradient after the mean, its buffer after the broadcast), as NumPy arrays."""
	import os
	import sys
	import numpy as np
	sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
	import puzzlelib_oracle
	pl = puzzlelib_oracle.load()

	rng = np.random.default_rng(200 + nodeinfo.index)
	sent = (rng.standard_normal(size) * 10.0 ** rng.integers(-3, 4, size)).astype(np.float32)
	grad = pl.gpuarray.to_gpu(sent)
	nodeinfo.sumTensor("grad", grad)
	buffer = pl.gpuarray.to_gpu(np.full(7, float(nodeinfo.index + 1), np.float32))
	nodeinfo.broadcastBuffer("buffer", buffer)
	assert type(grad).__name__ == "CPUArray" and type(buffer).__name__ == "CPUArray"
	return sent, grad.get(), buffer.get()
