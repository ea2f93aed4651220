"""RMSPropFlavour (kernels/rmsprop_update.h) and its one NumPy mirror (Kernels.FLAVOUR_STRUCT): same fields, same
order, same offsets, as the C compiler lays the struct out; and the Python side's plain-PuzzleLib decision."""
import re
import shutil
import subprocess

import numpy as np
import pytest

from puzzlelib_rmsprop.Backend.kernelSource import kernelDir
from puzzlelib_rmsprop.Kernels import FLAVOUR_STRUCT, FORMULA_OPTIONS, OPTIONS, Flavour


def headerFields():
	"""The field names of RMSPropFlavour in declaration order, read from the header's text."""
	text = (kernelDir() / "rmsprop_update.h").read_text()
	body = re.search(r"typedef struct\s*\{(.*?)\}\s*RMSPropFlavour;", text, re.S).group(1)
	body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
	names = []
	for declaration in body.split(";"):
		words = declaration.replace(",", " ").split()
		names.extend(words[1:])
	return names


def test_numpy_mirror_matches_the_header_layout(tmp_path):
	compiler = shutil.which("gcc") or shutil.which("cc")
	if compiler is None:
		pytest.skip("no C compiler")
	names = headerFields()
	assert list(FLAVOUR_STRUCT.names) == names

	source = tmp_path / "layout.c"
	source.write_text('#include <stdio.h>\n#include <stddef.h>\n#include "rmsprop_update.h"\nint main(void) {\n'
					  '\tprintf("%%zu\\n", sizeof(RMSPropFlavour));\n%s\treturn 0;\n}\n' % "".join(
						  '\tprintf("%%zu %%zu\\n", offsetof(RMSPropFlavour, %s), sizeof(((RMSPropFlavour *)0)->%s));\n' % (n, n)
						  for n in names))
	program = tmp_path / "layout"
	subprocess.run([compiler, "-I", str(kernelDir()), "-o", str(program), str(source), "-lm"], check=True)
	lines = subprocess.run([str(program)], capture_output=True, text=True, check=True).stdout.split("\n")

	assert int(lines[0]) == FLAVOUR_STRUCT.itemsize
	for name, line in zip(names, lines[1:]):
		offset, size = map(int, line.split())
		assert (offset, size) == (FLAVOUR_STRUCT.fields[name][1], FLAVOUR_STRUCT.fields[name][0].itemsize), name


def test_flavour_packs_its_fields_and_decides_plain_once():
	f = Flavour(0.9, 1e-5)
	assert f.plain == 1 and len(f.struct) == FLAVOUR_STRUCT.itemsize
	record = np.frombuffer(f.struct, FLAVOUR_STRUCT)[0]
	assert record["factor"] == np.float32(0.9) and record["epsilon"] == np.float32(1e-5)
	for name in OPTIONS:
		other = Flavour(0.9, 1e-5, **{name: 1})
		# arithmetic changes how the formula is evaluated, not the formula: PuzzleLib's RMSProp stays plain
		assert other.plain == (name not in FORMULA_OPTIONS) and getattr(other, name) == 1, name
	assert set(OPTIONS) - set(FORMULA_OPTIONS) == {"arithmetic"}
	assert Flavour(0.9, 1e-5, 0.1, True) == Flavour(0.9, 1e-5, weightDecay=0.1, centered=True)
	with pytest.raises(TypeError, match="no option"):
		Flavour(0.9, 1e-5, varianceFloor=0.5)
	with pytest.raises(TypeError, match="given twice"):
		Flavour(0.9, 1e-5, 0.1, weightDecay=0.2)
