"""PuzzleLib 1.0.3 on its CPU backend, as a peer (and, in the tests, as the reference).

Its CPU kernels are compiled by gcc on first use and link ``-lpython3.Xm``, a library Python stopped shipping
in 3.8; an empty archive of that name on LIBRARY_PATH is enough."""
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional


def prepareLinker(directory: Optional[Path] = None) -> None:
	"""Puts an empty libpython3.Xm.a on LIBRARY_PATH for PuzzleLib's kernel builds."""
	directory = Path(directory or tempfile.mkdtemp(prefix="puzzlelib-libstub-"))
	directory.mkdir(parents=True, exist_ok=True)
	archive = directory / ("libpython%d.%dm.a" % sys.version_info[:2])
	if not archive.exists():
		subprocess.run(["ar", "rcs", str(archive)], check=True)

	os.environ["LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(directory), os.environ.get("LIBRARY_PATH")]))


def importCpuPuzzleLib():
	"""PuzzleLib's (Config, gpuarray, rmspropKer) on its CPU backend, or None if PuzzleLib is not importable."""
	try:
		from PuzzleLib import Config
	except ImportError:
		return None

	Config.backend = Config.Backend.cpu
	Config.systemLog = False
	prepareLinker()

	from PuzzleLib.Backend import gpuarray
	from PuzzleLib.Backend.Kernels.ElementWise import rmspropKer
	return Config, gpuarray, rmspropKer
