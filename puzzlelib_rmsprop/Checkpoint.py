"""HDF5 checkpoints in PuzzleLib's layout: ``<name>.attrs/<attr>`` and ``<name>.states/<param>.<state>`` (and, to
load, PuzzleLib's global-state files: ``<name>.states/<dtype>.<state>``, see PuzzleLibCheckpoint). A "/" (or "%") in
a parameter name is stored escaped ("%2F", "%25"), so that it cannot place a dataset elsewhere.

This module writes; CheckpointRead reads (``load``, re-exported here). A path is written safely: the whole file is
built in memory first (h5py never touches the disk), then AtomicFile replaces the old one. Each group carries a
table of its datasets' SHA-256 (attribute ``sha256``, which PuzzleLib ignores), since HDF5 checksums no data: a
damaged value is refused, not loaded (CheckpointFormat). See docs/checkpoints.md.
"""
import json
import os
from typing import Dict

import h5py
import numpy as np

from .AtomicFile import replaceFile
from .CheckpointFormat import DIGESTS, checkName, digest, quantTag, stateKey
from .CheckpointRead import load  # noqa: F401 (the read side, re-exported: Checkpoint.save and Checkpoint.load)
from .Errors import OptimizerError
from .Quantized8 import QUANT_BLOCK, QuantizedState, hostArray


def _write(hdf, name: str, attrs: Dict, states: Dict) -> None:
	if attrs:
		attrGrp, digests = hdf.create_group(name + ".attrs"), {}
		for attrName, attr in attrs.items():
			digests[attrName] = digest(attrGrp.create_dataset(attrName, data=attr)[()])
		attrGrp.attrs[DIGESTS] = np.bytes_(json.dumps(digests, sort_keys=True))

	if states:
		stateGrp, digests = hdf.create_group(name + ".states"), {}
		for stateName, state in states.items():
			for entityName, entity in state.items():
				_writeState(stateGrp, stateKey(stateName, entityName), entity, digests)
		stateGrp.attrs[DIGESTS] = np.bytes_(json.dumps(digests, sort_keys=True))


def _writeState(stateGrp, key: str, entity, digests: Dict) -> None:
	"""A state array as it is; 8-bit state as its codes (shaped as the parameter, tagged with their code) plus
	``<key>.scales``, so it reloads exactly."""
	if not isinstance(entity, QuantizedState):
		digests[key] = digest(stateGrp.create_dataset(key, data=entity.get())[()])
		return
	codes = stateGrp.create_dataset(key, data=hostArray(entity.codes).reshape(entity.shape))
	codes.attrs["quant8"], codes.attrs["block"] = entity.format, QUANT_BLOCK
	digests[key] = digest(codes[()], quantTag(entity.format, QUANT_BLOCK))
	digests[key + ".scales"] = digest(stateGrp.create_dataset(key + ".scales", data=hostArray(entity.scales))[()])


def fileImage(name: str, attrs: Dict, states: Dict) -> bytes:
	"""The bytes of the HDF5 file holding the checkpoint, built in memory (h5py's core driver, no backing store)."""
	with h5py.File("checkpoint-image.h5", "w", driver="core", backing_store=False) as f:
		_write(f, name, attrs, states)
		f.flush()
		return f.id.get_file_image()


def save(hdf, name: str, attrs: Dict, states: Dict) -> None:
	"""Writes into an open h5py File/Group (checked first: nothing is written if it cannot all be), or safely into
	the file at path ``hdf`` (see the module's docstring)."""
	checkName(name)
	if isinstance(hdf, (str, os.PathLike)):
		replaceFile(os.fspath(hdf), fileImage(name, attrs, states))
	else:
		_saveToGroup(hdf, name, attrs, states)


def _saveToGroup(hdf, name: str, attrs: Dict, states: Dict) -> None:
	where = _describe(hdf)
	try:
		valid = bool(hdf.id.valid)
	except Exception:  # noqa: BLE001 (anything that is not an open h5py object)
		valid = False
	if not valid:
		raise OptimizerError("cannot save the checkpoint into %r: not an open h5py File or Group" % (hdf, ))
	if hdf.file.mode != "r+":
		raise OptimizerError("cannot save the checkpoint into %s: the file is open read-only" % where)

	targets = ([name + ".attrs"] if attrs else []) + ([name + ".states"] if states else [])
	parts = name.split("/")[:-1]
	for i in range(len(parts)):
		parent = hdf.get("/".join(parts[:i + 1]), getlink=True)
		if parent is not None and not isinstance(hdf.get("/".join(parts[:i + 1])), h5py.Group):
			raise OptimizerError("cannot save the checkpoint %r into %s: %r is not a group" % (name, where, "/".join(parts[:i + 1])))
	taken = [target for target in targets if hdf.get(target, getlink=True) is not None]
	if taken:
		raise OptimizerError("cannot save the checkpoint %r into %s: %s already there (delete it or use another name)" % (
			name, where, ", ".join(repr(t) for t in taken)))

	try:
		_write(hdf, name, attrs, states)
	except Exception as e:  # noqa: BLE001 (undone, then re-raised as OptimizerError)
		for target in targets:
			try:
				if hdf.get(target, getlink=True) is not None:
					del hdf[target]
			except Exception:  # noqa: BLE001 (best effort: the first error is the one to report)
				pass
		raise OptimizerError("could not save the checkpoint %r into %s: %s: %s" % (name, where, type(e).__name__, e)) from e


def _describe(hdf) -> str:
	try:
		return "%s:%s" % (hdf.file.filename, hdf.name)
	except Exception:  # noqa: BLE001
		return repr(hdf)
