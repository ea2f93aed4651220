"""HDF5 checkpoints in PuzzleLib's layout: ``<name>.attrs/<attr>`` and ``<name>.states/<param>.<state>`` (and, to
load, PuzzleLib's global-state files: ``<name>.states/<dtype>.<state>``, see PuzzleLibCheckpoint).

A path is written atomically (a temporary file in the same directory, then a rename), so a crash mid-save
leaves the previous checkpoint intact. ``load`` reads and checks the whole file before anything changes.
"""
import logging
import os
import tempfile
from typing import Dict, Tuple

import h5py
import numpy as np

from .Errors import OptimizerError
from .PuzzleLibCheckpoint import GlobalLayout

logger = logging.getLogger("puzzlelib_rmsprop")


def _write(hdf, name: str, attrs: Dict, states: Dict) -> None:
	if attrs:
		attrGrp = hdf.create_group(name + ".attrs")
		for attrName, attr in attrs.items():
			attrGrp.create_dataset(attrName, data=attr)

	if states:
		stateGrp = hdf.create_group(name + ".states")
		for stateName, state in states.items():
			for entityName, entity in state.items():
				stateGrp.create_dataset("%s.%s" % (stateName, entityName), data=entity.get())


def save(hdf, name: str, attrs: Dict, states: Dict) -> None:
	"""Writes into an open h5py File/Group, or atomically into the file at path ``hdf``."""
	if not isinstance(hdf, (str, os.PathLike)):
		_write(hdf, name, attrs, states)
		return

	path = os.fspath(hdf)
	fd, tmpPath = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=os.path.dirname(path) or ".")
	os.close(fd)

	try:
		with h5py.File(tmpPath, "w") as f:
			_write(f, name, attrs, states)

		with open(tmpPath, "rb") as f:
			os.fsync(f.fileno())
		os.replace(tmpPath, path)

	except BaseException:
		os.unlink(tmpPath)
		raise


def _read(hdf, name: str, attrs: Dict, states: Dict, rules: Dict, optional=frozenset(), layout=None) -> Tuple[Dict, Dict]:
	problems, newAttrs, newStates, stateGrp = [], {}, {}, {}

	attrGrp = hdf.get(name + ".attrs")
	if attrGrp is not None:
		for attrName, ds in attrGrp.items():
			if attrName not in attrs:
				problems.append("unknown attribute %r" % attrName)
				continue
			try:
				newAttrs[attrName] = type(attrs[attrName])(np.array(ds))
				if attrName in rules:
					rules[attrName].check("checkpoint", attrName, newAttrs[attrName])
			except (TypeError, ValueError) as e:
				problems.append("attribute %r: %s" % (attrName, e))

	if states:
		stateGrp = hdf.get(name + ".states")
		if stateGrp is None:
			problems.append("no group %r (the optimizer has %d states)" % (name + ".states", len(states)))
			stateGrp = {}
		elif layout is not None and GlobalLayout.isGlobalFile(stateGrp):
			stateGrp, splitProblems = layout.split(stateGrp)  # PuzzleLib's global state: cut it into variables
			problems += splitProblems

		for stateName, state in states.items():
			for entityName, entity in state.items():
				key = "%s.%s" % (stateName, entityName)
				ds = stateGrp.get(key)

				if ds is None and entityName in optional:
					logger.info("checkpoint has no %r: it starts at its initial value", key)
				elif ds is None:
					problems.append("missing state %r" % key)
				elif tuple(ds.shape) != tuple(entity.shape) or ds.dtype != entity.dtype:
					problems.append("state %r is %s %s in the file but %s %s in the optimizer" % (
						key, tuple(ds.shape), ds.dtype, tuple(entity.shape), entity.dtype
					))
				else:
					newStates.setdefault(stateName, {})[entityName] = np.array(ds)

		known = {"%s.%s" % (s, e) for s, state in states.items() for e in state}
		extra = sorted(set(stateGrp) - known)
		if extra and not problems:
			logger.warning("checkpoint has states this optimizer does not: %s", extra[:10])

	if problems:
		raise OptimizerError("checkpoint %s does not fit this optimizer: %s" % (
			getattr(hdf, "filename", hdf), "; ".join(problems)
		))

	return newAttrs, newStates


def _readChecked(f, name: str, attrs: Dict, states: Dict, rules: Dict, optional, layout) -> Tuple[Dict, Dict]:
	"""_read, with whatever a damaged file makes h5py raise turned into an OptimizerError."""
	try:
		return _read(f, name, attrs, states, rules, optional, layout)
	except OptimizerError:
		raise
	except (OSError, KeyError, ValueError, RuntimeError, TypeError, AttributeError) as e:
		raise OptimizerError("checkpoint %s is unreadable: %s: %s" % (getattr(f, "filename", f), type(e).__name__, e)) from e


def load(hdf, name: str, attrs: Dict, states: Dict, rules: Dict, optional=frozenset(), layout=None) -> Tuple[Dict, Dict]:
	"""(attrs, states) read from ``hdf`` (a path or an open h5py File/Group), checked against the optimizer's
	attributes, states and hyperparameter ``rules``; an OptimizerError lists every mismatch. States named in
	``optional`` may be missing (they keep their initial values). With ``layout`` (a GlobalLayout of the module),
	PuzzleLib's global-state files, keyed by dtype, are mapped to the variables too."""
	if not isinstance(hdf, (str, os.PathLike)):
		return _readChecked(hdf, name, attrs, states, rules, optional, layout)

	try:
		f = h5py.File(os.fspath(hdf), "r")
	except (OSError, ValueError) as e:
		raise OptimizerError("cannot open checkpoint %s as HDF5: %s" % (os.fspath(hdf), e)) from e

	with f:
		return _readChecked(f, name, attrs, states, rules, optional, layout)
