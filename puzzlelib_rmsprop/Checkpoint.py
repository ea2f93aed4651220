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
from .Quantized8 import FORMATS, QUANT_BLOCK, QuantizedState, blocksOf, hostArray

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
				_writeState(stateGrp, "%s.%s" % (stateName, entityName), entity)


def _writeState(stateGrp, key: str, entity) -> None:
	"""A state array as it is; 8-bit state as its codes (shaped as the parameter, tagged with their code) plus
	``<key>.scales``, so it reloads exactly."""
	if not isinstance(entity, QuantizedState):
		stateGrp.create_dataset(key, data=entity.get())
		return
	codes = stateGrp.create_dataset(key, data=hostArray(entity.codes).reshape(entity.shape))
	codes.attrs["quant8"], codes.attrs["block"] = entity.format, QUANT_BLOCK
	stateGrp.create_dataset(key + ".scales", data=hostArray(entity.scales))


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
				else:
					value = _readState(stateGrp, key, ds, entity, problems)
					if value is not None:
						newStates.setdefault(stateName, {})[entityName] = value

		known = {"%s.%s" % (s, e) for s, state in states.items() for e in state}
		known |= {key + ".scales" for key in known if _isQuantized(stateGrp.get(key))}
		extra = sorted(set(stateGrp) - known)
		if extra and not problems:
			logger.warning("checkpoint has states this optimizer does not: %s", extra[:10])

	if problems:
		raise OptimizerError("checkpoint %s does not fit this optimizer: %s" % (
			getattr(hdf, "filename", hdf), "; ".join(problems)
		))

	return newAttrs, newStates


def _isQuantized(ds) -> bool:
	return ds is not None and hasattr(ds, "attrs") and "quant8" in ds.attrs


def _readState(stateGrp, key: str, ds, entity, problems: list):
	"""The value of one state for ``entity`` (appending to ``problems`` if it does not fit): 8-bit codes plus scales
	become a host QuantizedState for an 8-bit entity, decoded values otherwise; full-width values are encoded by
	an 8-bit entity's set()."""
	quantizedEntity = isinstance(entity, QuantizedState)
	fullDtype = np.dtype(np.float32) if quantizedEntity else np.dtype(entity.dtype)
	if tuple(ds.shape) != tuple(entity.shape):
		problems.append("state %r is %s %s in the file but %s %s in the optimizer" % (
			key, tuple(ds.shape), "8-bit" if _isQuantized(ds) else ds.dtype, tuple(entity.shape),
			"8-bit" if quantizedEntity else entity.dtype))
		return None

	if _isQuantized(ds):
		value = _readQuantized(stateGrp, key, ds, problems)
		if value is None or quantizedEntity:
			return value
		return value.get().astype(fullDtype)

	if quantizedEntity and ds.dtype.kind == "f" or not quantizedEntity and ds.dtype == entity.dtype:
		return np.array(ds)
	problems.append("state %r is %s %s in the file but %s %s in the optimizer" % (
		key, tuple(ds.shape), ds.dtype, tuple(entity.shape), "8-bit" if quantizedEntity else entity.dtype))
	return None


def _readQuantized(stateGrp, key: str, ds, problems: list):
	"""A host QuantizedState from 8-bit codes and their scales, or None (with the problem noted)."""
	fmt = ds.attrs["quant8"]
	fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
	signed = {name: isSigned for isSigned, name in FORMATS.items()}.get(fmt)
	scales = stateGrp.get(key + ".scales")
	size = int(np.prod(ds.shape, dtype=np.int64))

	if signed is None or ds.dtype != np.uint8 or int(ds.attrs.get("block", -1)) != QUANT_BLOCK:
		problems.append("state %r: 8-bit codes of an unknown kind (%s %s, block %s)" % (key, fmt, ds.dtype, ds.attrs.get("block")))
	elif scales is None or not hasattr(scales, "dtype") or scales.dtype != np.float32 or tuple(scales.shape) != (blocksOf(size), ):
		problems.append("state %r: its %d codes need %s, float32 of (%d,), got %s" % (
			key, size, key + ".scales", blocksOf(size), None if scales is None else "%s %s" % (getattr(scales, "dtype", "a group"), getattr(scales, "shape", ""))))
	else:
		return QuantizedState(np.array(ds).reshape(-1), np.array(scales), ds.shape, signed)
	return None


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
