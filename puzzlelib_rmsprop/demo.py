"""The example from PuzzleLib's RMSProp page, with only the imports changed: ``python -m puzzlelib_rmsprop.demo``."""
import argparse
import logging
from typing import List

import numpy as np
from tqdm import tqdm

from puzzlelib_rmsprop import Config, RMSProp
from puzzlelib_rmsprop.Backend import getBackend, gpuarray
from puzzlelib_rmsprop.Containers.Graph import Graph
from puzzlelib_rmsprop.Cost.MSE import MSE
from puzzlelib_rmsprop.Modules.Activation import Activation, relu
from puzzlelib_rmsprop.Modules.Linear import Linear


def buildNet() -> Graph:
	fc1 = Linear(128, 64, name="fc1").node()
	act = Activation(relu, name="act").node(fc1)
	fc2 = Linear(64, 1, name="fc2").node(act)
	return Graph(inputs=fc1, outputs=fc2, name="net")


def train(iterations: int = 100, seed: int = 0, useGlobalState: bool = True, report=print) -> List[float]:
	"""Trains the seed's net on 16x128 synthetic data; returns the error of every iteration."""
	np.random.seed(seed)
	data = gpuarray.to_gpu(np.random.randn(16, 128).astype(np.float32))
	target = gpuarray.to_gpu(np.random.randn(16, 1).astype(np.float32))

	net = buildNet()
	optimizer = RMSProp(learnRate=0.001, factor=0.9)
	optimizer.setupOn(net, useGlobalState=useGlobalState)
	loss = MSE()

	errors = []
	for i in tqdm(range(iterations), desc="training", unit="it"):
		predictions = net(data)
		error, grad = loss(predictions, target)
		errors.append(error)

		optimizer.zeroGradParams()
		net.backward(grad)
		optimizer.update()

		if (i + 1) % 5 == 0:
			report("Iteration #%d error: %s" % (i + 1, error))

	return errors


def main(argv=None) -> None:
	parser = argparse.ArgumentParser(prog="python -m puzzlelib_rmsprop.demo", description=__doc__)
	parser.add_argument("--iterations", type=int, default=100)
	parser.add_argument("--seed", type=int, default=0)
	parser.add_argument("--local", action="store_true", help="local state instead of global state")
	parser.add_argument("--backend", choices=["cuda", "cpu"], help="overrides PUZZLELIB_RMSPROP_BACKEND")
	args = parser.parse_args(argv)

	logging.basicConfig(level=logging.WARNING)
	if args.backend:
		Config.backend = args.backend

	backend = getBackend()
	print("Backend: %s (%s)" % (backend.name, backend.deviceName))
	train(args.iterations, args.seed, useGlobalState=not args.local, report=tqdm.write)


if __name__ == "__main__":
	main()
