"""One MPI rank for tests/test_Grid_devices.py: ``grid_devices_rank.py OUTDIR [DEVICEIDX]``.

Sets Config.deviceIdx to DEVICEIDX if given, joins the grid, and writes what backend and device the rank got
(rankN.json: or the BackendError the grid raised) and, after the demo's data-parallel training, its parameters
(rankN.npz)."""
import json
import os
import sys

import numpy as np

from puzzlelib_rmsprop import Config, demo
from puzzlelib_rmsprop.Backend import getBackend
from puzzlelib_rmsprop.Errors import BackendError
from puzzlelib_rmsprop.Grid import MPINodeInfo


def main(out, deviceIdx=None):
	if deviceIdx is not None:
		Config.deviceIdx = int(deviceIdx)
	rank = int(os.environ.get("PMI_RANK", os.environ.get("OMPI_COMM_WORLD_RANK", "0")))
	try:
		nodeinfo = MPINodeInfo(timeout=120, abortOnError=False)
	except BackendError as e:
		with open(os.path.join(out, "rank%d.json" % rank), "w") as f:
			json.dump({"error": str(e)}, f)
		return

	backend = getBackend()
	info = {"backend": backend.name, "visible": os.environ.get("CUDA_VISIBLE_DEVICES")}
	if backend.name == "cuda":
		info.update(device=backend.deviceIndex, bus=backend.device.pci_bus_id(), name=backend.device.name())
	with open(os.path.join(out, "rank%d.json" % nodeinfo.index), "w") as f:
		json.dump(info, f)

	errors, net = demo.train(iterations=10, report=lambda line: None, nodeinfo=nodeinfo)
	params = {names[0]: var.data.get() for var, names in net.getVarTable().items()}
	np.savez(os.path.join(out, "rank%d.npz" % nodeinfo.index), errors=np.array(errors), **params)


if __name__ == "__main__":
	main(*sys.argv[1:])
