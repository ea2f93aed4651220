"""Issue 12: 8-bit state trains as well as 32-bit state, on real data: scikit-learn's bundled digits (1,797 8x8
images, no download), a 64-32-10 classifier from the reference modules, full-batch, every flavour's options."""

import numpy as np
import pytest

from conftest import requireTool
from puzzlelib_rmsprop import RMSProp, RMSPropGraves
from puzzlelib_rmsprop.Backend import gpuarray
from puzzlelib_rmsprop.Containers.Graph import Graph
from puzzlelib_rmsprop.Cost.MSE import MSE
from puzzlelib_rmsprop.Modules.Activation import Activation, relu
from puzzlelib_rmsprop.Modules.Linear import Linear

SEEDS, STEPS, TRAIN = (0, 1, 2), 300, 1200
#: between them every option: momentum, centered, weightDecay; epsilonInSqrt, initialMs; Graves' in-lr momentum
FLAVOURS = {
	"puzzlelib": lambda **k: RMSProp(learnRate=1e-2, **k),
	"torch": lambda **k: RMSProp(learnRate=1e-2, momentum=0.5, centered=True, weightDecay=1e-4, **k),
	"tf1": lambda **k: RMSProp(learnRate=1e-2, epsilonInSqrt=True, initialMs=1.0, momentum=0.5, **k),
	"graves": lambda **k: RMSPropGraves(learnRate=1e-2, **k),
}


@pytest.fixture(scope="module")
def digits():
	try:
		from sklearn.datasets import load_digits
	except ImportError as e:
		requireTool("scikit-learn is not installed: %s" % e)
	images, labels = load_digits(return_X_y=True)
	return (images / 16.0).astype(np.float32), labels


def heldOutAccuracy(digits, make, seed: int) -> float:
	"""Percent of the held-out digits classified right after training (one-hot targets, MSE)."""
	images, labels = digits
	order = np.random.default_rng(seed).permutation(len(labels))
	train, test = order[:TRAIN], order[TRAIN:]

	np.random.seed(seed)  # the modules' initial weights
	fc1 = Linear(64, 32, name="fc1").node()
	fc2 = Linear(32, 10, name="fc2").node(Activation(relu, name="act").node(fc1))
	net = Graph(inputs=fc1, outputs=fc2, name="net")
	optimizer = make()
	optimizer.setupOn(net, useGlobalState=True)

	data, target, loss = gpuarray.to_gpu(images[train]), gpuarray.to_gpu(np.eye(10, dtype=np.float32)[labels[train]]), MSE()
	for _ in range(STEPS):
		_, grad = loss(net(data), target)
		optimizer.zeroGradParams()
		net.backward(grad)
		optimizer.update()

	predicted = net(gpuarray.to_gpu(images[test])).get().argmax(axis=1)
	return 100.0 * float(np.mean(predicted == labels[test]))


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
def test_8_bit_state_classifies_digits_as_well_as_32_bit(digits, flavour, quant8Report):
	make = FLAVOURS[flavour]
	full = [heldOutAccuracy(digits, make, seed) for seed in SEEDS]
	bits8 = [heldOutAccuracy(digits, lambda: make(stateBits=8), seed) for seed in SEEDS]
	quant8Report.append("digits, %s: 32-bit state %s%%, 8-bit %s%%" % (
		flavour, "/".join("%.1f" % a for a in full), "/".join("%.1f" % a for a in bits8)))
	assert min(full) > 70  # it learns at all (chance is 10%)
	assert np.mean(bits8) >= np.mean(full) - 1.0, (full, bits8)
