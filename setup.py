"""Builds puzzlelib_rmsprop: the Python package, its host-kernel C extension and the kernel sources."""
import os

from setuptools import Extension, find_packages, setup

KERNEL_DIR = "kernels"
# every package under puzzlelib_rmsprop/, found (a new subpackage cannot be forgotten), plus the kernel sources
# as package data: pyproject.toml maps this package to kernels/
PACKAGES = find_packages(include=["puzzlelib_rmsprop", "puzzlelib_rmsprop.*"]) + ["puzzlelib_rmsprop.kernels"]
# -fno-math-errno lets gcc vectorize sqrtf; -fno-trapping-math lets it vectorize the 8-bit codes' selects (values are
# unchanged: only floating-point exception flags may differ); -ffp-contract=off keeps results equal to a float32 NumPy
# reference.
MATH_FLAGS = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off", "-std=c11"]

cpuKernels = Extension(
	"puzzlelib_rmsprop.Backend._cpukernels",
	sources=["puzzlelib_rmsprop/Backend/cpu_extension.c"] + [os.path.join(KERNEL_DIR, name) for name in (
		"rmsprop_host.c", "rmsprop_host8.c", "host_pool.c")],
	extra_compile_args=MATH_FLAGS + ["-pthread"],  # the kernels' worker threads (kernels/host_pool.c)
	extra_link_args=["-pthread"],
	include_dirs=[KERNEL_DIR],
	depends=[os.path.join(KERNEL_DIR, name) for name in os.listdir(KERNEL_DIR) if name.endswith(".h")]
)

setup(packages=PACKAGES, ext_modules=[cpuKernels])
