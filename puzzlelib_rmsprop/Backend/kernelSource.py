"""Where the kernel sources (kernels/*.cu, *.h) are: inside the installed package, or beside it in a checkout."""
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def kernelDir() -> Path:
	"""The directory holding rmsprop.cu and the headers it includes."""
	for candidate in (_PACKAGE_DIR / "kernels", _PACKAGE_DIR.parent / "kernels"):
		if (candidate / "rmsprop.cu").is_file():
			return candidate

	raise FileNotFoundError("puzzlelib_rmsprop's kernel sources are missing (looked in %s and %s)" % (
		_PACKAGE_DIR / "kernels", _PACKAGE_DIR.parent / "kernels"
	))
