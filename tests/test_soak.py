"""The short soak in CI (tests/soak.py has the long one and the derivation of the bound)."""
import pytest

from soak import soak


@pytest.mark.parametrize("useGlobalState", [True, False])
def test_short_soak_against_float64(useGlobalState):
	result = soak(5000, useGlobalState=useGlobalState)
	assert 0 < result["maxAbsError"] <= result["bound"], result
