"""Every case of the matrix against PyTorch: forward, dx and every parameter gradient."""

from __future__ import annotations

import pytest
from hypothesis import given

from comparisons import cases, harness
from tests import strategies

pytestmark = pytest.mark.torch

TRIPLES = cases.expand(cases.all_cases())


def assert_all_pass(records: list[harness.Record]) -> None:
    failed = [r for r in records if not r.passed]
    assert records, "the comparison produced no records"
    assert not failed, "\n".join(
        f"{r.layer} {r.impl} {r.dtype} {r.quantity}: rel {r.max_rel_err:.3e} > tol {r.tol:.3e} ({r.config})"
        for r in failed
    )


@pytest.mark.parametrize("triple", TRIPLES, ids=[cases.triple_id(t) for t in TRIPLES])
def test_matches_torch(triple, torch_adapter):
    case, impl, dtype = triple
    records = harness.compare(case, impl, dtype, torch_adapter)
    expected = {"forward", "dx"} | ({"loss"} if case.loss else set())
    assert expected <= {r.quantity for r in records}
    assert_all_pass(records)


@given(case=strategies.conv_cases(), impl=strategies.impls, dtype=strategies.dtypes)
def test_conv_property_matches_torch(case, impl, dtype, torch_adapter):
    assert_all_pass(harness.compare(case, impl, dtype, torch_adapter))


@given(case=strategies.pool_cases("maxpool"), impl=strategies.impls, dtype=strategies.dtypes)
def test_maxpool_property_matches_torch(case, impl, dtype, torch_adapter):
    assert_all_pass(harness.compare(case, impl, dtype, torch_adapter))


@given(case=strategies.pool_cases("avgpool"), impl=strategies.impls, dtype=strategies.dtypes)
def test_avgpool_property_matches_torch(case, impl, dtype, torch_adapter):
    assert_all_pass(harness.compare(case, impl, dtype, torch_adapter))


def test_float64_tolerance_is_rounding_level():
    """Every float64 tolerance the matrix uses is at most 1e-10 relative."""
    worst = max(harness.tolerance("float64", harness.run_reference(c, impl, "float64").reduction_length)
                for c, impl, dt in TRIPLES if dt == "float64")
    assert worst <= 1e-10
