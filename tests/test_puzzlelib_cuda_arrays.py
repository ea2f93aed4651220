"""PuzzleLib's own CUDA arrays (``CudaDriver.GPUArray``) updated in place by our CUDA backend, in both state modes,
bit-exact against the NumPy reference. The arrays are tests/puzzlelib_standin/CudaDriver.py's faithful stand-in,
over the emulated CUDA driver in CI (tests/test_cuda_emulated.py) or over a GPU; the variables are PuzzleLib's own
Variable class. Skipped, with the reason, where the CUDA backend is not in use."""
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from reference import flavourStep, rmspropStep
from puzzlelib_rmsprop import OptimizerError, RMSProp, RMSPropGraves, WeightDecay
from puzzlelib_rmsprop.Backend import getBackend
from puzzlelib_rmsprop.Modules.Module import Module

pytestmark = [pytest.mark.gpu, pytest.mark.puzzlelib]
if getBackend().name != "cuda":
	pytest.skip("needs the CUDA backend (PUZZLELIB_RMSPROP_BACKEND=cuda, on a GPU or the emulated driver: "
				"tests/test_cuda_emulated.py runs it there)", allow_module_level=True)

# unsorted, upper and lower case: global state orders them as PuzzleLib does (a plain string sort)
SPECS = {"fc.W": (7, 5), "fc.b": (5, ), "Out.W": (5, 3), "act.alpha": (1, ), "emb.table": (13, 8)}


@pytest.fixture(scope="module")
def CudaDriver():
	sys.path.insert(0, str(Path(__file__).resolve().parent / "puzzlelib_standin"))
	import CudaDriver
	CudaDriver.setDevice(getBackend().deviceIndex)
	return CudaDriver


@pytest.fixture(scope="module")
def Variable(puzzlelib):
	from PuzzleLib.Variable import Variable
	return Variable


def makeNet(CudaDriver, Variable, dtype, rng):
	"""A module whose variables are PuzzleLib Variables of PuzzleLib CUDA arrays; returns it and host copies."""
	net, host = Module(None), {}  # unnamed: its variables are named as SPECS
	for name, shape in SPECS.items():
		data = rng.standard_normal(shape).astype(dtype)
		net.setVar(name, Variable(CudaDriver.GPUArray.toGpu(data), grad=CudaDriver.GPUArray.zeros(shape, dtype)))
		host[name] = data
	return net, host


def setGrads(net, rng):
	grads = {}
	for name in SPECS:
		var = net.getVar(name)
		grads[name] = rng.standard_normal(var.grad.shape).astype(var.grad.dtype)
		var.grad.set(grads[name])
	return grads


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("useGlobalState", [False, True])
def test_updated_in_place_bit_exact(CudaDriver, Variable, dtype, useGlobalState, rng):
	net, params = makeNet(CudaDriver, Variable, dtype, rng)
	multipliers = {"fc.b": 0.5, "act.alpha": 0.0}
	for name, value in multipliers.items():
		net.getVar(name).learnRate = value
	net.getVar("fc.W").wc = 0.25
	before = {name: net.getVar(name) for name in SPECS}

	opt = RMSProp(learnRate=1e-2)
	opt.setupOn(net, useGlobalState=useGlobalState)
	ms = {name: np.zeros(SPECS[name], dtype) for name in SPECS}

	for _ in range(3):
		grads = setGrads(net, rng)
		opt.update()
		for name in SPECS:
			rate = 1e-2 * multipliers.get(name, 1.0)
			if rate > 0:
				params[name], ms[name] = rmspropStep(params[name], grads[name], ms[name], rate)
			np.testing.assert_array_equal(net.getVar(name).data.get(), params[name], err_msg=name)
			np.testing.assert_array_equal(opt.states[name]["ms"].get(), ms[name], err_msg=name)

	for name in SPECS:
		var = net.getVar(name)
		assert type(var.data).__module__ == "CudaDriver" and type(var).__module__ == "PuzzleLib.Variable"
		assert (var.learnRate, var.wc) == (before[name].learnRate, before[name].wc), "multipliers carried over"
		if useGlobalState:
			flat = opt.globalVar[dtype].data
			assert type(flat).__module__ == "CudaDriver", "the packed buffer is PuzzleLib's memory"
			assert flat.ptr <= var.data.ptr < flat.ptr + flat.nbytes and (var.data.ptr - flat.ptr) % 16 == 0
		else:
			assert var is before[name], "local state keeps the module's own arrays"


@pytest.mark.parametrize("make", [
	lambda: RMSProp(learnRate=1e-2, momentum=0.9, centered=True, weightDecay=0.01),
	lambda: RMSPropGraves(learnRate=1e-2),
])
@pytest.mark.parametrize("useGlobalState", [False, True])
def test_flavours_and_graves(CudaDriver, Variable, make, useGlobalState, rng):
	net, params = makeNet(CudaDriver, Variable, np.float32, rng)
	opt = make()
	opt.setupOn(net, useGlobalState=useGlobalState)
	graves = isinstance(opt, RMSPropGraves)
	states = {name: [np.zeros(SPECS[name], np.float32) for _ in range(3)] for name in SPECS}

	for _ in range(3):
		grads = setGrads(net, rng)
		opt.update()
		for name in SPECS:
			ms, mg, mom = states[name]
			options = dict(centered=True, epsilonInSqrt=graves, momentumMode=2 if graves else 1,
						   weightDecay=0.0 if graves else 0.01)
			momentum = opt.momRate if graves else opt.momentum
			factor = opt.alpha if graves else opt.factor
			params[name], *states[name] = flavourStep(params[name], grads[name], ms, mg, mom, 1e-2, momentum, factor,
													  opt.epsilon, **options)
			np.testing.assert_array_equal(net.getVar(name).data.get(), params[name], err_msg=name)


def test_zero_grads_and_weight_decay(CudaDriver, Variable, rng):
	net, params = makeNet(CudaDriver, Variable, np.float32, rng)
	net.getVar("fc.W").wc = 1.0
	opt = RMSProp(learnRate=1e-2)
	opt.addHook(WeightDecay(0.1))
	opt.setupOn(net, useGlobalState=True)

	setGrads(net, rng)
	opt.zeroGradParams()
	assert not any(net.getVar(name).grad.get().any() for name in SPECS)

	grads = setGrads(net, rng)
	opt.update()
	g = (grads["fc.W"] - np.float32(0.1) * params["fc.W"]).astype(np.float32)
	expected, _ = rmspropStep(params["fc.W"], g, np.zeros(SPECS["fc.W"], np.float32), 1e-2)
	np.testing.assert_array_equal(net.getVar("fc.W").data.get(), expected)


def test_a_second_context_is_refused_with_the_reason(CudaDriver, Variable, rng):
	"""PuzzleLib's memory lives in the primary context: a backend working in another context could not reach it."""
	from puzzlelib_rmsprop.Backend.CudaBackend import CudaBackend
	net, _ = makeNet(CudaDriver, Variable, np.float32, rng)
	errors = []

	def inOwnContext():
		own = getBackend().driver.Device(getBackend().deviceIndex).make_context()
		try:
			RMSProp.checkVariable("fc.W", net.getVar("fc.W"), CudaBackend(getBackend().deviceIndex))
		except OptimizerError as e:
			errors.append(str(e))
		finally:
			own.pop()
			own.detach()

	thread = threading.Thread(target=inOwnContext)
	thread.start()
	thread.join()
	assert len(errors) == 1 and "lives in the primary context of device 0" in errors[0]
	assert "'fc.W'" in errors[0] and "runs in another context" in errors[0]


def test_an_array_on_another_device_is_refused(CudaDriver, Variable):
	if getBackend().driver.Device.count() < 2:
		pytest.skip("one CUDA device")
	CudaDriver.setDevice(1)
	try:
		foreign = CudaDriver.GPUArray.zeros((4, ), np.float32)
	finally:
		CudaDriver.setDevice(getBackend().deviceIndex)
	with pytest.raises(OptimizerError, match="'x' is on CUDA device 1, but puzzlelib_rmsprop's backend is on device 0"):
		getBackend().checkPlacement("x", foreign)


@pytest.mark.parametrize("cudaAware", ["0", "1"])
def test_mpi_node_info_takes_puzzlelib_arrays(CudaDriver, cudaAware, monkeypatch):
	"""Our MPINodeInfo on PuzzleLib's arrays: through pinned staging (its get() takes no destination), or handed to
	MPI as device memory (they have no __cuda_array_interface__: the node info describes them)."""
	from puzzlelib_rmsprop.Grid import CUDA_AWARE_ENV, MPINodeInfo, importMPI
	try:
		importMPI()
	except Exception as e:  # noqa: BLE001
		pytest.skip(str(e))
	monkeypatch.setenv(CUDA_AWARE_ENV, cudaAware)
	host = np.arange(10, dtype=np.float16) / 4
	ary = CudaDriver.GPUArray.toGpu(host)

	info = MPINodeInfo(abortOnError=False)
	info.sumTensor("grad", ary)  # one rank: the mean is the tensor itself
	info.broadcastBuffer("data", ary)
	np.testing.assert_array_equal(ary.get(), host)


def test_puzzlelib_node_info_gets_the_calls_puzzlelib_makes(CudaDriver, Variable, rng):
	"""With PuzzleLib's own nodeinfo (PuzzleLib.Grid), the calls PuzzleLib 1.0.3's Optimizer makes
	(setupGlobalState, updateGlobalState): broadcastBuffer("data", globalVar.data.gpudata) once per dtype at setup,
	sumTensor("grad", globalVar.grad) once per dtype before each update."""
	from PuzzleLib.Grid import NodeInfo

	class Recording(NodeInfo):
		def __init__(self):
			super().__init__(0, 1, 0, [])
			self.calls = []

		def broadcastBuffer(self, name, buffer):
			self.calls.append(("broadcastBuffer", name, buffer))

		def sumTensor(self, name, tensor):
			self.calls.append(("sumTensor", name, tensor))

	net, _ = makeNet(CudaDriver, Variable, np.float32, rng)
	nodeinfo = Recording()
	opt = RMSProp(nodeinfo=nodeinfo)
	opt.setupOn(net, useGlobalState=True)
	for _ in range(2):
		setGrads(net, rng)
		opt.update()

	globalVar = opt.globalVar[np.float32]
	assert [call[:2] for call in nodeinfo.calls] == [("broadcastBuffer", "data"), ("sumTensor", "grad"), ("sumTensor", "grad")]
	assert nodeinfo.calls[0][2] is globalVar.data.gpudata and type(nodeinfo.calls[0][2]).__name__ == "Buffer"
	assert all(call[2] is globalVar.grad for call in nodeinfo.calls[1:])
