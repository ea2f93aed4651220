"""What our checkpoint files hold beyond PuzzleLib's layout, shared by writing and reading: escaped names, the
SHA-256 table of each group (HDF5 checksums no data), the tag of 8-bit codes, and the rules of names and values."""
import hashlib
import json

import h5py
import numpy as np

from .Errors import OptimizerError

#: states that cannot be negative (a mean of squares)
NON_NEGATIVE = frozenset({"ms"})
#: the attribute of our ``.attrs`` and ``.states`` groups holding each dataset's SHA-256 (HDF5 checksums no data)
DIGESTS = "sha256"


def digest(array, tag: str = "") -> str:
	"""SHA-256 of a dataset's dtype, shape, bytes and (8-bit codes) their tag."""
	array = np.ascontiguousarray(array)
	head = "%s|%s|%s|" % (array.dtype.str, array.shape, tag)
	return hashlib.sha256(head.encode() + array.tobytes()).hexdigest()


def escapeName(name: str) -> str:
	"""A parameter name as a dataset name: "%" and "/" escaped, every other name unchanged (PuzzleLib's layout)."""
	return name.replace("%", "%25").replace("/", "%2F")


def stateKey(stateName: str, entityName: str) -> str:
	return "%s.%s" % (escapeName(stateName), entityName)


def checkName(name: str) -> None:
	"""``name`` stays inside the group it is given: no absolute path, no "." or ".." or empty part."""
	if not isinstance(name, str):
		raise OptimizerError("checkpoint name must be a string, got %r" % (name, ))
	if name and (name.startswith("/") or any(part in ("", ".", "..") for part in name.split("/"))):
		raise OptimizerError("checkpoint name %r would leave the group it is saved into: give a relative name "
							 "without '.', '..' or empty parts" % name)


def quantTag(fmt: str, block: int) -> str:
	return "quant8=%s,block=%d" % (fmt, block)


def digestsOf(grp, problems: list):
	"""The group's table of SHA-256 (None where it has none: PuzzleLib's files, older files)."""
	if DIGESTS not in grp.attrs:
		return None
	try:
		aid = grp.attrs.get_id(DIGESTS)  # a fixed-size string of a bounded size, checked before reading it
		kind = aid.get_type()
		if not isinstance(kind, h5py.h5t.TypeStringID) or kind.is_variable_str() or aid.shape != () or kind.get_size() > 1 << 24:
			raise ValueError("not a fixed-size string")
		raw = grp.attrs[DIGESTS]
		table = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
		if isinstance(table, dict) and all(isinstance(v, str) for v in table.values()):
			return table
	except (ValueError, TypeError, UnicodeDecodeError):
		pass
	problems.append("the checksum table of %r is damaged" % grp.name)
	return {}


def checkedData(ds, key: str, digests, problems: list, tag: str = ""):
	"""The dataset's data (read now, after its checks), verified against its SHA-256 where the file has them."""
	data = ds[()]
	if digests is not None and digests.get(key) != digest(data, tag):
		problems.append("%r does not match its checksum: the file is damaged" % key)
		return None
	return data
