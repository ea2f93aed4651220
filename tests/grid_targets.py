"""Importable targets for runGrid in tests/test_Grid.py (runGrid pickles the target by reference)."""


def rankAndMean(nodeinfo, value):
	return nodeinfo.index, nodeinfo.gridsize, nodeinfo.meanValue(value + nodeinfo.index)
