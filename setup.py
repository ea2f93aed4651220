"""Builds puzzlelib_rmsprop: the Python package, its host-kernel C extension and the kernel sources."""
import os
import sys

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CompileError, LinkError

KERNEL_DIR = "kernels"
# every package under puzzlelib_rmsprop/, found (a new subpackage cannot be forgotten), plus the kernel sources
# as package data: pyproject.toml maps this package to kernels/
PACKAGES = find_packages(include=["puzzlelib_rmsprop", "puzzlelib_rmsprop.*"]) + ["puzzlelib_rmsprop.kernels"]
# -fno-math-errno lets gcc vectorize sqrtf; -fno-trapping-math lets it vectorize the 8-bit codes' selects (values are
# unchanged: only floating-point exception flags may differ); -ffp-contract=off keeps results equal to a float32 NumPy
# reference.
MATH_FLAGS = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off", "-std=c11"]
OPENMP_FLAGS = ["-fopenmp"]


class BuildExtWithOptionalOpenMP(build_ext):
	"""Builds with OpenMP where the compiler has it, and single-threaded (with a warning) where it does not."""

	def build_extension(self, ext):
		try:
			self._build(ext, OPENMP_FLAGS)
		except (CompileError, LinkError):
			sys.stderr.write("puzzlelib_rmsprop: no OpenMP in this compiler, building single-threaded host kernels\n")
			self._build(ext, [])

	def _build(self, ext, parallelFlags):
		ext.extra_compile_args = MATH_FLAGS + parallelFlags
		ext.extra_link_args = parallelFlags
		super().build_extension(ext)


cpuKernels = Extension(
	"puzzlelib_rmsprop.Backend._cpukernels",
	sources=["puzzlelib_rmsprop/Backend/cpu_extension.c", os.path.join(KERNEL_DIR, "rmsprop_host.c"),
			 os.path.join(KERNEL_DIR, "rmsprop_host8.c")],
	include_dirs=[KERNEL_DIR],
	depends=[os.path.join(KERNEL_DIR, name) for name in os.listdir(KERNEL_DIR) if name.endswith(".h")]
)

setup(packages=PACKAGES, ext_modules=[cpuKernels], cmdclass={"build_ext": BuildExtWithOptionalOpenMP})
