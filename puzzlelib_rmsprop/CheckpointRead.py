"""Reading a checkpoint: the file's structure is checked before any data is read (no links leading out, no external
storage, no virtual datasets, every dataset of the expected shape and dtype), then every value, and only then is
anything returned: a refused file changes nothing (see docs/checkpoints.md)."""
import logging
import math
import os
import posixpath
from typing import Dict, Tuple

import h5py
import numpy as np

from .CheckpointFormat import NON_NEGATIVE, checkName, checkedData, digestsOf, quantTag, stateKey
from .Errors import OptimizerError
from .PuzzleLibCheckpoint import dtypeOfKey
from .Quantized8 import FORMATS, QUANT_BLOCK, QuantizedState, blocksOf, hostArray

logger = logging.getLogger("puzzlelib_rmsprop")


def _linkProblem(grp, key: str, allowed: Tuple[str, ...]):
	"""Why the link ``key`` in ``grp`` may not be followed (None: it may): external links never, soft links only
	to inside the checkpoint's own groups ``allowed`` (absolute paths)."""
	link = grp.get(key, getlink=True)
	if isinstance(link, h5py.ExternalLink):
		return "%r is an external link (to %s:%s): a checkpoint does not read other files" % (key, link.filename, link.path)
	if isinstance(link, h5py.SoftLink):
		dest = posixpath.normpath(posixpath.join(grp.name, link.path))
		if not any(dest == a or dest.startswith(a + "/") for a in allowed):
			return "%r is a soft link to %r, outside the checkpoint" % (key, link.path)
	return None


def _dataset(grp, key: str, allowed, problems: list):
	"""The dataset ``key`` of ``grp`` if it is one that may be read: reached without leaving the checkpoint, its
	data in this file (no external raw storage, not virtual). Else None, with the problem noted. Reads no data."""
	problem = _linkProblem(grp, key, allowed)
	if problem is None:
		ds = grp.get(key)
		if not isinstance(ds, h5py.Dataset):
			problem = "%r is %s, not a dataset" % (key, "a group" if isinstance(ds, h5py.Group) else "a dangling link")
		else:
			plist = ds.id.get_create_plist()
			if plist.get_external_count() > 0:
				problem = "%r keeps its data in another file (external storage): a checkpoint does not read other files" % key
			elif plist.get_layout() == h5py.h5d.VIRTUAL:
				problem = "%r is a virtual dataset (its data lives in other datasets or files)" % key
			else:
				return ds
	problems.append(problem)
	return None


def _readAttr(ds, key: str, template, rule, digests, problems: list):
	"""An attribute's value: a scalar of a real type (checked before reading), converted like the optimizer's."""
	kind = ds.dtype.kind
	wantInt = isinstance(template, (int, np.integer)) and not isinstance(template, bool)
	if ds.shape != () or kind not in "biuf" or ds.dtype.itemsize > 8:
		problems.append("attribute %r is %s %s in the file, not a real scalar" % (key, ds.shape, ds.dtype))
		return None
	raw = checkedData(ds, key, digests, problems)
	if raw is None:
		return None
	if kind == "f" and not math.isfinite(float(raw)):
		problems.append("attribute %r is %r: not finite" % (key, float(raw)))
		return None
	if wantInt and kind == "f" and float(raw) != int(raw):
		problems.append("attribute %r is %r in the file, but it is an integer" % (key, float(raw)))
		return None
	value = type(template)(raw.item())
	if rule is not None:
		try:
			rule.check("checkpoint", key, value)
		except OptimizerError as e:
			problems.append("attribute %r: %s" % (key, e))
			return None
	return value


def _read(hdf, name: str, attrs: Dict, states: Dict, rules: Dict, optional=frozenset(), layout=None) -> Tuple[Dict, Dict]:
	problems, newAttrs, newStates = [], {}, {}
	base = hdf.name.rstrip("/")
	allowed = tuple("%s/%s%s" % (base, name, suffix) for suffix in (".attrs", ".states"))

	if hdf.get(name + ".attrs", getlink=True) is not None:
		attrGrp = _group(hdf, name + ".attrs", allowed, problems)
		digests = digestsOf(attrGrp, problems) if attrGrp is not None else None
		for attrName in (attrGrp.keys() if attrGrp is not None else ()):
			if attrName not in attrs:
				problems.append("unknown attribute %r" % attrName)
				continue
			ds = _dataset(attrGrp, attrName, allowed, problems)
			if ds is not None:
				value = _readAttr(ds, attrName, attrs[attrName], rules.get(attrName), digests, problems)
				if value is not None:
					newAttrs[attrName] = value

	if states:
		stateGrp = None
		if hdf.get(name + ".states", getlink=True) is None:
			problems.append("no group %r (the optimizer has %d states)" % (name + ".states", len(states)))
		else:
			stateGrp = _group(hdf, name + ".states", allowed, problems)
		if stateGrp is not None:
			_readStates(stateGrp, states, optional, layout, allowed, problems, newStates)

	if problems:
		raise OptimizerError("checkpoint %s does not fit this optimizer: %s" % (
			getattr(hdf, "filename", hdf), "; ".join(problems)
		))
	return newAttrs, newStates


def _group(hdf, key: str, allowed, problems: list):
	problem = _linkProblem(hdf, key, allowed)
	grp = hdf.get(key) if problem is None else None
	if problem is None and not isinstance(grp, h5py.Group):
		problem = "%r is not a group" % key
	if problem is not None:
		problems.append(problem)
		return None
	return grp


def _readStates(stateGrp, states: Dict, optional, layout, allowed, problems: list, newStates: Dict) -> None:
	expected = {stateKey(s, e): (s, e) for s, state in states.items() for e in state}
	keys = list(stateGrp.keys())
	# PuzzleLib's global state (keyed by dtype) by its structure: none of this module's keys, all keys dtype keys
	if layout is not None and keys and not any(k in expected for k in keys) and all(
			"." in k and dtypeOfKey(k.rsplit(".", 1)[0]) is not None for k in keys):
		datasets = {}
		for key in keys:
			ds = _dataset(stateGrp, key, allowed, problems)
			if ds is not None:
				datasets[key] = ds
		source, splitProblems = layout.split(datasets)
		problems += splitProblems
		if splitProblems or len(datasets) < len(keys):
			return
	else:
		source, digests = None, digestsOf(stateGrp, problems)

	for key, (stateName, entityName) in expected.items():
		entity, value = states[stateName][entityName], None
		if source is not None:
			plain = "%s.%s" % (stateName, entityName)  # split() keys by the names themselves
			present = plain in source
			if present:
				value = _checkedFull(key, source[plain], entity, problems)
		else:
			present = stateGrp.get(key, getlink=True) is not None
			ds = _dataset(stateGrp, key, allowed, problems) if present else None
			if ds is not None:
				value = _readState(stateGrp, key, ds, entity, allowed, digests, problems)

		if not present and entityName in optional:
			logger.info("checkpoint has no %r: it starts at its initial value", key)
		elif not present:
			problems.append("missing state %r" % key)
		elif value is not None and _checkValues(key, entityName, value, problems):
			newStates.setdefault(stateName, {})[entityName] = value

	if source is None:
		known = set(expected) | {key + ".scales" for key in expected if _isQuantized(stateGrp, key, allowed)}
		extra = sorted(set(keys) - known)
		if extra and not problems:
			logger.warning("checkpoint has states this optimizer does not: %s", extra[:10])


def _checkedFull(key: str, value: np.ndarray, entity, problems: list):
	"""A full-width array cut from PuzzleLib's global state, for ``entity`` (its dtype was checked by the layout)."""
	if isinstance(entity, QuantizedState):
		return value.astype(np.float32)
	if value.dtype != np.dtype(entity.dtype):
		problems.append("state %r holds %s values, the optimizer's are %s" % (key, value.dtype, entity.dtype))
		return None
	return value


def _checkValues(key: str, entityName: str, value, problems: list) -> bool:
	"""States finite, ms (and every 8-bit scale) non-negative."""
	if isinstance(value, QuantizedState):
		scales = hostArray(value.scales)
		if not np.isfinite(scales).all() or (scales < 0).any():
			problems.append("state %r: its 8-bit scales must be finite and non-negative" % key)
			return False
		decoded = value.get()
	else:
		decoded = np.asarray(value, dtype=np.float32) if np.asarray(value).dtype.kind != "f" else np.asarray(value)
	if not np.isfinite(decoded).all():
		problems.append("state %r holds %d non-finite values" % (key, int((~np.isfinite(decoded)).sum())))
		return False
	if entityName in NON_NEGATIVE and (decoded < 0).any():
		problems.append("state %r holds %d negative values (a mean of squares cannot be)" % (key, int((decoded < 0).sum())))
		return False
	return True


def _isQuantized(stateGrp, key: str, allowed) -> bool:
	if _linkProblem(stateGrp, key, allowed) is not None:
		return False
	ds = stateGrp.get(key)
	return isinstance(ds, h5py.Dataset) and "quant8" in ds.attrs


def _readState(stateGrp, key: str, ds, entity, allowed, digests, problems: list):
	"""The value of one state for ``entity`` (appending to ``problems`` if it does not fit): 8-bit codes plus scales
	become a host QuantizedState for an 8-bit entity, decoded values otherwise; full-width values are encoded by
	an 8-bit entity's set(). Shape and dtype are checked before any data is read."""
	quantizedEntity = isinstance(entity, QuantizedState)
	fullDtype = np.dtype(np.float32) if quantizedEntity else np.dtype(entity.dtype)
	quantized = "quant8" in ds.attrs
	if tuple(ds.shape) != tuple(entity.shape):
		problems.append("state %r is %s %s in the file but %s %s in the optimizer" % (
			key, tuple(ds.shape), "8-bit" if quantized else ds.dtype, tuple(entity.shape),
			"8-bit" if quantizedEntity else entity.dtype))
		return None

	if quantized:
		value = _readQuantized(stateGrp, key, ds, allowed, digests, problems)
		if value is None or quantizedEntity:
			return value
		return value.get().astype(fullDtype)

	if quantizedEntity and ds.dtype.kind == "f" and ds.dtype.itemsize <= 8 or not quantizedEntity and ds.dtype == entity.dtype:
		return checkedData(ds, key, digests, problems)
	problems.append("state %r is %s %s in the file but %s %s in the optimizer" % (
		key, tuple(ds.shape), ds.dtype, tuple(entity.shape), "8-bit" if quantizedEntity else entity.dtype))
	return None


def _readQuantized(stateGrp, key: str, ds, allowed, digests, problems: list):
	"""A host QuantizedState from 8-bit codes and their scales, or None (with the problem noted)."""
	fmt, block = ds.attrs["quant8"], ds.attrs.get("block", -1)
	fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
	signed = {name: isSigned for isSigned, name in FORMATS.items()}.get(fmt)
	size = int(np.prod(ds.shape, dtype=np.int64))
	try:
		block = int(block)
	except (TypeError, ValueError):
		block = None

	if signed is None or ds.dtype != np.uint8 or block != QUANT_BLOCK:
		problems.append("state %r: 8-bit codes of an unknown kind (%s %s, block %s)" % (key, fmt, ds.dtype, ds.attrs.get("block")))
		return None
	if stateGrp.get(key + ".scales", getlink=True) is None:
		problems.append("state %r: its %d codes need %s, float32 of (%d,), got none" % (key, size, key + ".scales", blocksOf(size)))
		return None
	scales = _dataset(stateGrp, key + ".scales", allowed, problems)
	if scales is None:
		return None
	if scales.dtype != np.float32 or tuple(scales.shape) != (blocksOf(size), ):
		problems.append("state %r: its %d codes need %s, float32 of (%d,), got %s %s" % (
			key, size, key + ".scales", blocksOf(size), scales.dtype, scales.shape))
		return None
	codes = checkedData(ds, key, digests, problems, quantTag(fmt, block))
	scaleData = checkedData(scales, key + ".scales", digests, problems)
	if codes is None or scaleData is None:
		return None
	return QuantizedState(codes.reshape(-1), scaleData, ds.shape, signed)


_H5_ERRORS = (OSError, KeyError, ValueError, RuntimeError, TypeError, AttributeError, OverflowError, MemoryError,
			  IndexError, UnicodeDecodeError)


def _readChecked(f, name: str, attrs: Dict, states: Dict, rules: Dict, optional, layout) -> Tuple[Dict, Dict]:
	"""_read, with whatever a damaged file makes h5py raise turned into an OptimizerError."""
	try:
		return _read(f, name, attrs, states, rules, optional, layout)
	except OptimizerError:
		raise
	except _H5_ERRORS as e:
		raise OptimizerError("checkpoint %s is unreadable: %s: %s" % (getattr(f, "filename", f), type(e).__name__, e)) from e


def load(hdf, name: str, attrs: Dict, states: Dict, rules: Dict, optional=frozenset(), layout=None) -> Tuple[Dict, Dict]:
	"""(attrs, states) read from ``hdf`` (a path or an open h5py File/Group), checked against the optimizer's
	attributes, states and hyperparameter ``rules``; an OptimizerError lists every mismatch. States named in
	``optional`` may be missing (they keep their initial values). With ``layout`` (a GlobalLayout of the module),
	PuzzleLib's global-state files, keyed by dtype, are mapped to the variables too."""
	checkName(name)
	if not isinstance(hdf, (str, os.PathLike)):
		try:
			valid = bool(hdf.id.valid)
		except Exception:  # noqa: BLE001
			valid = False
		if not valid:
			raise OptimizerError("cannot load a checkpoint from %r: not an open h5py File or Group" % (hdf, ))
		return _readChecked(hdf, name, attrs, states, rules, optional, layout)

	path = os.fspath(hdf)
	try:
		f = h5py.File(path, "r")
	except _H5_ERRORS as e:
		raise OptimizerError("cannot open checkpoint %s as HDF5: %s" % (path, e)) from e

	try:
		return _readChecked(f, name, attrs, states, rules, optional, layout)
	finally:
		try:
			f.close()
		except _H5_ERRORS:
			pass
