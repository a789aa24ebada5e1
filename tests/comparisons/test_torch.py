"""Every case of the matrix against PyTorch: forward, dx and every parameter gradient."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from comparisons import cases, harness
from reference import max_rel_error
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
def test_matches_torch(triple, torch_framework):
    case, impl, dtype = triple
    records = harness.compare(case, impl, dtype, torch_framework)
    expected = {"forward", "dx"} | ({"loss"} if case.loss else set())
    assert expected <= {r.quantity for r in records}
    assert_all_pass(records)


@given(case=strategies.conv_cases(), impl=strategies.impls, dtype=strategies.dtypes)
def test_conv_property_matches_torch(case, impl, dtype, torch_framework):
    assert_all_pass(harness.compare(case, impl, dtype, torch_framework))


@given(case=strategies.pool_cases("maxpool", options=True), impl=strategies.impls, dtype=strategies.dtypes)
def test_maxpool_property_matches_torch(case, impl, dtype, torch_framework):
    assert_all_pass(harness.compare(case, impl, dtype, torch_framework))


@given(case=strategies.pool_cases("avgpool", options=True), impl=strategies.impls, dtype=strategies.dtypes)
def test_avgpool_property_matches_torch(case, impl, dtype, torch_framework):
    assert_all_pass(harness.compare(case, impl, dtype, torch_framework))


def test_float64_tolerance_is_rounding_level():
    """Every float64 tolerance the matrix uses is at most 1e-10 relative."""
    worst = max(harness.tolerance("float64", harness.run_reference(c, impl, "float64").reduction_length)
                for c, impl, dt in TRIPLES if dt == "float64")
    assert worst <= 1e-10


def test_new_layers_are_in_the_matrix_with_their_buffers(torch_framework):
    """Batch norm compares its running statistics after the forward, in training and in evaluation mode."""
    layers = {c.layer for c, _, _ in TRIPLES}
    assert {"BatchNorm2d", "Dropout", "LeakyReLU", "Sigmoid", "Tanh", "GlobalAvgPool2d", "VGGStyleCNN"} <= layers
    for case in cases.batchnorm_cases()[:1] + [c for c in cases.batchnorm_cases() if c.eval_mode][:1]:
        quantities = {r.quantity for r in harness.compare(case, "n/a", "float64", torch_framework)}
        assert {"running_mean", "running_var", "weight", "bias"} <= quantities
    vgg = harness.compare(cases.vgg_cases()[0], "im2col", "float64", torch_framework)
    assert {"1.running_var", "5.running_mean", "12.weight"} <= {r.quantity for r in vgg}


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_torch_dropout_is_inverted_dropout(p, torch_framework):
    """What the adapter's fixed-mask dropout assumes: nn.Dropout scales kept elements by 1/(1-p) and is the
    identity in eval mode."""
    import torch

    x = torch.from_numpy(np.random.default_rng(0).uniform(1, 2, (50, 40)))  # no element is 0
    layer = torch.nn.Dropout(p)
    torch.manual_seed(0)
    out = layer(x)
    kept = out != 0
    assert 0 < int(kept.sum()) < x.numel()
    # PyTorch multiplies by the rounded 1/(1-p) rather than dividing: equal to within one rounding
    assert max_rel_error(out.numpy(), (x * kept / (1 - p)).numpy()) <= 2 * np.finfo(np.float64).eps
    assert torch.equal(layer.eval()(x), x)


def test_torch_keeps_unbiased_running_variance(torch_framework):
    """The reference's default is PyTorch's convention; the Keras one is refused with the reason."""
    import dataclasses

    case = cases.batchnorm_cases()[0]
    biased = dataclasses.replace(case, specs=(cases.spec("batchnorm", **{**case.specs[0].kwargs,
                                                                          "unbiased_running_var": False}),))
    assert "unbiased" in torch_framework.unsupported(biased)
    assert torch_framework.reference_case(case) is case


def test_option_cases_are_in_the_matrix_with_indices(torch_framework):
    """Issue 10's options are matrix cases; return_indices adds an exactly compared "indices" record."""
    layers = {c.layer for c, _, _ in TRIPLES}
    assert {"Conv2d(padding)", "Conv2d(padding_mode)", "MaxPool2d(options)", "AvgPool2d(options)",
            "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "GlobalMaxPool2d"} <= layers
    modes = {c.specs[0].kwargs.get("padding_mode") for c in cases.conv_padding_mode_cases()}
    assert modes == {"zeros", "reflect", "replicate", "circular"}
    case = next(c for c in cases.pool_option_cases() if c.specs[0].kwargs.get("return_indices"))
    records = harness.compare(case, "loop", "float64", torch_framework)
    indices = [r for r in records if r.quantity == "indices"]
    assert len(indices) == 1 and indices[0].max_abs_err == 0.0 and indices[0].passed
