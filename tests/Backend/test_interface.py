"""Both backends satisfy the one declared backend interface (Backend/Interface.py): every member, with the same
parameters (names, order, kind, which have defaults). The CUDA backend's class is checked without pycuda."""
import inspect

import pytest

from puzzlelib_rmsprop.Backend.CpuBackend import CpuBackend
from puzzlelib_rmsprop.Backend.CudaBackend import CudaBackend
from puzzlelib_rmsprop.Backend.Interface import BackendInterface

METHODS = sorted(name for name, value in vars(BackendInterface).items()
				 if inspect.isfunction(value) and not name.startswith("_"))
ATTRIBUTES = sorted(BackendInterface.__annotations__)


def parameters(function):
	"""(name, kind, has a default) of each parameter, ``self`` left out (static methods have none)."""
	params = list(inspect.signature(function).parameters.values())
	if params and params[0].name == "self":
		params = params[1:]
	return [(p.name, p.kind, p.default is not inspect.Parameter.empty) for p in params]


def test_the_interface_declares_the_members_the_code_uses():
	assert {"rmsprop", "flavour", "quant8", "prepareTable", "pointerOf", "synchronize"} <= set(METHODS)
	assert {"name", "deviceName", "GPUArray"} <= set(ATTRIBUTES)


@pytest.mark.parametrize("backend", [CpuBackend, CudaBackend], ids=["cpu", "cuda"])
@pytest.mark.parametrize("name", METHODS)
def test_backend_defines_each_method_with_its_signature(backend, name):
	member = inspect.getattr_static(backend, name, None)
	assert member is not None, "%s lacks %s" % (backend.__name__, name)
	function = inspect.unwrap(getattr(member, "__func__", member))
	assert callable(function), "%s.%s is not a method" % (backend.__name__, name)
	assert parameters(function) == parameters(getattr(BackendInterface, name)), (backend.__name__, name)


@pytest.mark.parametrize("backend", [CpuBackend, CudaBackend], ids=["cpu", "cuda"])
@pytest.mark.parametrize("name", ATTRIBUTES)
def test_backend_defines_each_attribute(backend, name):
	"""On the class, or set in __init__ (deviceName depends on the machine)."""
	assert inspect.getattr_static(backend, name, None) is not None or "self.%s =" % name in inspect.getsource(backend.__init__), \
		(backend.__name__, name)


def test_a_cpu_backend_is_a_backend():
	assert isinstance(CpuBackend(), BackendInterface)
