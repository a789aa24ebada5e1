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
    assert {o.id for o in cases_options.BINARY_CROSS_ENTROPY_OPTIONS} <= ids


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


def test_binary_cross_entropy_configurations_cover_every_option():
    options = cases_options.BINARY_CROSS_ENTROPY_OPTIONS
    for logits in (True, False):
        chosen = [o for o in options if o.logits == logits]
        assert {o.reduction for o in chosen} == {"mean", "sum", "none"}
        assert {o.targets for o in chosen} == {"binary", "soft"}
        assert {o.weight for o in chosen} == {o.edges for o in chosen} == {True, False}
        assert {len(o.scores_shape) for o in chosen} == {2, 4}
    assert {o.pos_weight for o in options if o.logits} == {True, False}
    assert max(o.scale for o in options if o.logits) >= 40  # sigmoid rounds to exactly 0 and 1 in float32
    assert all(o.clip_epsilon is None for o in options)  # Keras' switch, set by its reference_case only


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_binary_edges_are_exactly_zero_and_one_with_every_pairing(dtype):
    """Under ``edges`` every probability is exactly 0.0 or 1.0, the first four paired with targets 0 and 1 every
    way; binary targets are exactly 0.0 and 1.0 everywhere, soft ones in [0, 1] with those four planted."""
    import numpy as np

    for opt in (o for o in cases_options.BINARY_CROSS_ENTROPY_OPTIONS if o.edges):
        rng = np.random.default_rng(opt.seed)
        target = cases_options.bce_targets(opt, opt.scores_shape, dtype, rng)[0]
        assert target.dtype == dtype and 0 <= target.min() and target.max() <= 1
        assert [float(v) for v in target.flat[:4]] == [t for _, t in cases_options.EDGE_PAIRS]
        if opt.targets == "binary":
            assert set(np.unique(target)) == {0.0, 1.0}
        if not opt.logits:
            p = cases_options.bce_probabilities(opt, opt.scores_shape, dtype, rng)
            assert set(np.unique(p)) == {0.0, 1.0}
            assert [float(v) for v in p.flat[:4]] == [q for q, _ in cases_options.EDGE_PAIRS]


def test_binary_option_refuses_what_the_loss_has_not():
    with pytest.raises(ValueError, match="pos_weight needs logits=True"):
        cases_options.BinaryCrossEntropyOption("x", (2, 3), logits=False, pos_weight=True)
    with pytest.raises(ValueError, match="reduction must be one of .* got 'avg'"):
        cases_options.BinaryCrossEntropyOption("x", (2, 3), logits=True, reduction="avg")
    with pytest.raises(ValueError, match="clip_epsilon applies to probabilities only"):
        cases_options.BinaryCrossEntropyOption("x", (2, 3), logits=True, clip_epsilon=1e-7)
    with pytest.raises(ValueError, match=r"scores_shape must be \(N, C\) or \(N, C, H, W\), got \(2, 3, 4\)"):
        cases_options.BinaryCrossEntropyOption("x", (2, 3, 4), logits=True)
