"""Importable targets for runGrid in tests/test_Grid.py (runGrid pickles the target by reference)."""


def rankAndMean(nodeinfo, value):
	return nodeinfo.index, nodeinfo.gridsize, nodeinfo.meanValue(value + nodeinfo.index)


def halfGradient(rank):
	"""A rank's float16 gradient for the float16 mean test: values whose float16 sums lose bits."""
	import numpy as np
	rng = np.random.default_rng(100 + rank)
	return (rng.uniform(0.5, 2.0, 4099) * rng.choice([1, -1, 1000], 4099)).astype(np.float16)


def halfMean(nodeinfo):
	"""This rank's view of the mean of the ranks' float16 gradients, averaged by the node info."""
	grad = halfGradient(nodeinfo.index)
	nodeinfo.sumTensor("grad", grad)
	return grad
