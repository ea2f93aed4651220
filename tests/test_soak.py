"""The short soak in CI (tests/soak.py has the long one and the derivation of the bound)."""
import pytest

from soak import soak


@pytest.mark.parametrize("useGlobalState", [True, False])
def test_short_soak_against_float64(useGlobalState):
	"""float32 against float64 within Hoeffding's bound (tests/soak.py): 5.7e-5 here, measured 4.9e-6."""
	result = soak(5000, useGlobalState=useGlobalState)
	assert 0 < result["maxAbsError"] <= result["bound"], result


@pytest.mark.parametrize("useGlobalState", [True, False])
def test_short_soak_with_8_bit_state(quant8Report, useGlobalState):
	"""stateBits=8 against float64 RMSProp: the derived worst-case bounds of tests/soak.py's soak8, every step."""
	from soak import soak8
	result = soak8(3000, useGlobalState=useGlobalState)
	quant8Report.append("soak, 3000 steps, useGlobalState=%s: " % useGlobalState + "ms8/ms64 in [%.3f, %.3f] (bound [%.2f, %.2f]); max |param error| %.2g = %.2f of "
						"its bound" % (*result["msRatio"], *result["msRatioBounds"], result["maxAbsError"], result["errorOverBound"]))
	assert result["msRatioBounds"][0] <= result["msRatio"][0] <= result["msRatio"][1] <= result["msRatioBounds"][1], result
	assert 0 < result["errorOverBound"] <= 1, result
