"""The option configurations (:mod:`comparisons.cases_options`) in the case matrix, and against every
registered framework: each configuration on random inputs is a case of the matrix, and ``return_indices``
adds an exactly compared ``indices`` record (run with the rest of the matrix by ``test_matrix``).

The tie rules, on inputs the matrix does not draw, are framework-specific: ``frameworks/test_pytorch.py`` and
``frameworks/test_keras3.py``.
"""

from __future__ import annotations

import pytest

from comparisons import cases, cases_options, harness
from tests.comparisons.helpers import FRAMEWORK_PARAMS, framework

ALL_CASES = cases.all_cases()


def test_option_cases_are_in_the_matrix():
    layers = {c.layer for c in ALL_CASES}
    assert {"Conv2d(padding)", "Conv2d(padding_mode)", "MaxPool2d(options)", "AvgPool2d(options)",
            "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "GlobalMaxPool2d"} <= layers
    modes = {c.specs[0].kwargs.get("padding_mode") for c in cases.conv_padding_mode_cases()}
    assert modes == {"zeros", "reflect", "replicate", "circular"}


def test_every_option_configuration_without_ties_is_a_matrix_case():
    """Each pooling and cross-entropy configuration on random inputs is a case (tied inputs are not drawn)."""
    ids = {c.id for c in ALL_CASES}
    pools = cases_options.POOL2D_OPTIONS + cases_options.POOL_OPTIONS
    assert {o.id for o in pools if not o.ties} <= ids
    assert not {o.id for o in pools if o.ties} & ids
    assert {o.id for o in cases_options.CROSS_ENTROPY_OPTIONS} <= ids


@pytest.mark.parametrize("name", FRAMEWORK_PARAMS)
def test_return_indices_are_compared_exactly(name):
    """A return_indices case the framework runs gives one "indices" record, passed only when equal; one it
    cannot run it refuses with a reason."""
    fw = framework(name)
    with_indices = [c for c in cases.pool_option_cases() if c.specs[0].kwargs.get("return_indices")]
    assert with_indices
    for case in with_indices:
        if fw.unsupported(case) is not None:
            continue
        impl = "loop" if case.spatial else None
        indices = [r for r in harness.compare(case, impl, "float64", fw) if r.quantity == "indices"]
        assert len(indices) == 1 and indices[0].max_abs_err == 0.0 and indices[0].passed, case.id
