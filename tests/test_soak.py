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
	"""stateBits=8 against float64 RMSProp, every step and element (tests/soak.py's soak8 derives both bounds): the
	decoded ms within [0.600, 2.429] of float64's, each param within its running bound, which stays below 0.1122
	however many steps (measured 2026-12-02: 0.0059, 0.17 of the running bound)."""
	from soak import soak8, soak8Passes
	result = soak8(3000, useGlobalState=useGlobalState)
	quant8Report.append("soak, 3000 steps, useGlobalState=%s: ms8/ms64 in [%.3f, %.3f] (bound [%.3f, %.3f]); max |param error| "
						"%.2g, %.2f of its running bound (at most %.3g here, %.4f at any step count)" % (
							useGlobalState, *result["msRatio"], *result["msRatioBounds"], result["maxAbsError"],
							result["errorOverBound"], result["largestBound"], result["bound"]))
	assert result["msRatioBounds"][0] <= result["msRatio"][0] <= result["msRatio"][1] <= result["msRatioBounds"][1], result
	assert 0 < result["errorOverBound"] <= 1, result
	assert result["largestBound"] <= result["bound"], result
	assert soak8Passes(result), result
