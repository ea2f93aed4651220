"""The example from PuzzleLib's RMSProp page, with only the imports changed: ``python -m puzzlelib_rmsprop.demo``.

``--nodes N`` runs the same training data-parallel on N MPI processes (each on its shard of the batch, the
gradients averaged by MPINodeInfo), which must print the same errors as the single-process run, to float32
rounding."""
import argparse
import logging
import subprocess
import sys
from typing import List, Tuple

import numpy as np
from tqdm import tqdm

from puzzlelib_rmsprop import Config, RMSProp
from puzzlelib_rmsprop.Backend import getBackend, gpuarray
from puzzlelib_rmsprop.Containers.Graph import Graph
from puzzlelib_rmsprop.Cost.MSE import MSE
from puzzlelib_rmsprop.Modules.Activation import Activation, relu
from puzzlelib_rmsprop.Modules.Linear import Linear

BATCH = 16


def buildNet() -> Graph:
	fc1 = Linear(128, 64, name="fc1").node()
	act = Activation(relu, name="act").node(fc1)
	fc2 = Linear(64, 1, name="fc2").node(act)
	return Graph(inputs=fc1, outputs=fc2, name="net")


def train(iterations: int = 100, seed: int = 0, useGlobalState: bool = True, report=print,
		  nodeinfo=None) -> Tuple[List[float], Graph]:
	"""Trains the seed's net on 16x128 synthetic data; returns the error of every iteration (of the whole batch)
	and the trained net.

	With ``nodeinfo`` each rank trains on its shard of the batch. Shards may differ in size (16 rows over 3
	ranks), so each rank's gradient and error are weighted by its share: their mean over the ranks is then
	the whole batch's, as in a single process."""
	np.random.seed(seed)
	hostData = np.random.randn(BATCH, 128).astype(np.float32)
	hostTarget = np.random.randn(BATCH, 1).astype(np.float32)
	net = buildNet()

	rows, weight = np.arange(BATCH), 1.0
	if nodeinfo is not None:
		rows = np.array_split(rows, nodeinfo.gridsize)[nodeinfo.index]
		weight = len(rows) * nodeinfo.gridsize / BATCH

	data, target = gpuarray.to_gpu(hostData[rows]), gpuarray.to_gpu(hostTarget[rows])
	optimizer = RMSProp(learnRate=0.001, factor=0.9, nodeinfo=nodeinfo)
	optimizer.setupOn(net, useGlobalState=useGlobalState or nodeinfo is not None)
	loss = MSE()

	errors = []
	quiet = nodeinfo is not None and nodeinfo.index != 0
	# disable=None: a bar only where stderr is a terminal; in a file or pipe, the report lines alone
	for i in tqdm(range(iterations), desc="training", unit="it", disable=True if quiet else None):
		predictions = net(data)
		error, grad = loss(predictions, target)
		if nodeinfo is not None:
			grad = gpuarray.to_gpu((grad.get() * np.float32(weight)).astype(np.float32))
			error = nodeinfo.meanValue(error * weight)
		errors.append(error)

		optimizer.zeroGradParams()
		net.backward(grad)
		optimizer.update()

		if (i + 1) % 5 == 0 and not quiet:
			report("Iteration #%d error: %s" % (i + 1, error))

	return errors, net


def main(argv=None) -> None:
	parser = argparse.ArgumentParser(prog="python -m puzzlelib_rmsprop.demo", description=__doc__)
	parser.add_argument("--iterations", type=int, default=100)
	parser.add_argument("--seed", type=int, default=0)
	parser.add_argument("--local", action="store_true", help="local state instead of global state")
	parser.add_argument("--backend", choices=["cuda", "cpu"], help="overrides PUZZLELIB_RMSPROP_BACKEND")
	parser.add_argument("--nodes", type=int, default=1, help="run data-parallel on this many MPI processes")
	parser.add_argument("--data-parallel", action="store_true", help="this process is one rank of an MPI job")
	args = parser.parse_args(argv)

	logging.basicConfig(level=logging.WARNING)
	if args.backend:
		Config.backend = args.backend

	if args.nodes > 1:
		from puzzlelib_rmsprop.Grid import mpiexec
		rank = ["--data-parallel", "--iterations", str(args.iterations), "--seed", str(args.seed)]
		rank += ["--backend", args.backend] if args.backend else []
		command = [mpiexec(), "-n", str(args.nodes), sys.executable, "-m", "puzzlelib_rmsprop.demo"] + rank
		sys.exit(subprocess.call(command))

	nodeinfo = None
	if args.data_parallel:
		from puzzlelib_rmsprop.Grid import MPINodeInfo
		nodeinfo = MPINodeInfo()

	backend = getBackend()
	if nodeinfo is None or nodeinfo.index == 0:
		print("Backend: %s (%s)%s" % (backend.name, backend.deviceName,
									  "" if nodeinfo is None else ", data-parallel on %d MPI processes" % nodeinfo.gridsize))
	train(args.iterations, args.seed, useGlobalState=not args.local, report=tqdm.write, nodeinfo=nodeinfo)


if __name__ == "__main__":
	main()
