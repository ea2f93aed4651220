"""Mutation check, one mutant at a time: ``python tests/mutants.py [NAME ...]``. Each mutant is one textual break of
the package, applied alone to a copy of the checkout; the tests named for it run there against the mutated package
(PYTHONPATH puts the copy first) and must fail. Prints killed or SURVIVED per mutant; exits 1 if any survived.
Not part of the test command (minutes); the results are recorded in docs/verification.md."""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: name: (file, text, replacement, tests that must fail)
MUTANTS = {
	"unknown attribute accepted": ("puzzlelib_rmsprop/CheckpointRead.py", 'problems.append("unknown attribute %r" % attrName)',
								   "pass", ["tests/test_Checkpoint.py", "tests/test_Checkpoint_files.py"]),
	"no fsync of the file": ("puzzlelib_rmsprop/AtomicFile.py", "		os.fsync(fd)\n", "		pass\n",
							 ["tests/test_Checkpoint_disk.py"]),
	"no fsync of the directory": ("puzzlelib_rmsprop/AtomicFile.py", "		fsyncDirectory(directory)\n", "		pass\n",
								  ["tests/test_Checkpoint_disk.py"]),
	"state dtype not compared": ("puzzlelib_rmsprop/CheckpointRead.py", "or not quantizedEntity and ds.dtype == entity.dtype:",
								 "or not quantizedEntity:", ["tests/test_Checkpoint.py", "tests/test_Checkpoint_files.py"]),
	"non-finite hyperparameter accepted": ("puzzlelib_rmsprop/Validation.py", "		if not math.isfinite(value):\n",
										   "		if False:\n", ["tests/test_Checkpoint_options.py", "tests/test_Optimizer.py"]),
	"replaced variable not followed": ("puzzlelib_rmsprop/StateLayouts.py",
									   "			if now is not var or now.data is not data or now.grad is not grad:\n",
									   "			if False:\n", ["tests/test_drop_in.py", "tests/test_replaced_arrays.py"]),
	"multiplier assignment not seen": ("puzzlelib_rmsprop/MultiplierWatch.py", "					watch.version += 1\n",
									   "					pass\n", ["tests/test_multiplier_watch.py", "tests/test_Optimizer.py"]),
	"flavour kept after an option changes": ("puzzlelib_rmsprop/RMSProp.py", '			self.__dict__.pop("_flavour", None)\n',
											 "			pass\n", ["tests/test_flavours.py", "tests/test_RMSProp.py", "tests/test_Optimizer.py"]),
	"step count not advanced": ("puzzlelib_rmsprop/Optimizer.py", 'object.__setattr__(self, "t", self.t + 1)',
								'object.__setattr__(self, "t", self.t)', ["tests/test_Optimizer.py", "tests/test_Checkpoint.py"]),
}

UNCOPIED = shutil.ignore_patterns(".git", ".venv", ".hypothesis", ".pytest_cache", "build", "dist", "__pycache__")


def run(name: str, work: Path) -> bool:
	"""Applies mutant ``name`` to a fresh copy under ``work``; True if its tests fail there (killed)."""
	path, text, replacement, tests = MUTANTS[name]
	copy = work / "checkout"
	if copy.exists():
		shutil.rmtree(copy)
	shutil.copytree(ROOT, copy, symlinks=True, ignore=UNCOPIED)
	source = copy / path
	original = source.read_text()
	if original.count(text) != 1:
		raise SystemExit("mutant %r: its text is not in %s exactly once (the code changed: update MUTANTS)" % (name, path))
	source.write_text(original.replace(text, replacement))

	env = dict(os.environ, PYTHONPATH=str(copy), PYTEST_ADDOPTS="")
	result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests], cwd=copy,
							env=env, capture_output=True, text=True, timeout=1800)
	imported = subprocess.run([sys.executable, "-c", "import puzzlelib_rmsprop; print(puzzlelib_rmsprop.__file__)"],
							  cwd=copy, env=env, capture_output=True, text=True).stdout.strip()
	if not imported.startswith(str(copy)):
		raise SystemExit("the copy's package was not the one imported (%s)" % imported)
	return result.returncode != 0


def main(names) -> int:
	survived = []
	with tempfile.TemporaryDirectory() as work:
		for name in names or MUTANTS:
			killed = run(name, Path(work))
			print("%-40s %s" % (name, "killed" if killed else "SURVIVED"), flush=True)
			if not killed:
				survived.append(name)
	return 1 if survived else 0


if __name__ == "__main__":
	sys.exit(main(sys.argv[1:]))
