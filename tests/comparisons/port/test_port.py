"""comparisons.port: the tutorial CNN, the VGG-style CNN and a PyTorch CNN with every ported layer kind, ported to
Keras and back (and through the reference), compute the same outputs (evaluation mode) and parameter gradients
(training mode) to the harness's tolerance: float32 rounding, and rounding (~1e-13) in float64."""

from __future__ import annotations

import re

import numpy as np
import pytest

from comparisons import harness, layouts
from comparisons.port import (
    compare_models,
    keras_to_reference,
    keras_to_torch,
    reference_to_keras,
    reference_to_torch,
    torch_to_keras,
    torch_to_reference,
)

from .helpers import TORCH_CNN_INPUT, TUTORIAL_INPUT, VGG_INPUT, batch, reference_cnn, torch_cnn

pytestmark = [pytest.mark.torch, pytest.mark.keras]
DTYPES = ("float32", "float64")


def assert_agree(a, b, x) -> None:
    """Outputs (evaluation mode) and parameter gradients (training mode) of every layer within the harness's bound."""
    for grads in (False, True):
        report = compare_models(a, b, x, grads=grads)
        failed = [row for row in report.rows if not row.passed]
        assert report.structure is None and not failed and report.agree, report.to_markdown()
        if grads:
            assert all(row.grad_max_rel_error is not None for row in report.rows if row.grad_errors)
            assert any(row.grad_errors for row in report.rows)


def final_error(torch_model, keras_model, x) -> float:
    """Relative error of the two models' final outputs, each run whole by its framework (not layer by layer)."""
    import torch

    dtype = next(torch_model.parameters()).dtype
    with torch.no_grad():
        expected = torch_model.eval()(torch.from_numpy(x).to(dtype)).numpy()
    got = np.asarray(keras_model(layouts.nchw_to_nhwc(x).astype(str(dtype).removeprefix("torch."))))
    return harness.errors(got, expected)[1]


@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_cnn_ports_to_keras_and_back(dtype):
    model, x = torch_cnn(dtype), batch(TORCH_CNN_INPUT)
    keras_model = torch_to_keras(model, TORCH_CNN_INPUT)
    assert {layer.compute_dtype for layer in keras_model.layers} == {dtype}
    assert_agree(model, keras_model, x)
    back = keras_to_torch(keras_model)
    assert_agree(model, back, x)
    bound = compare_models(model, keras_model, x).rows[-1].bound
    assert final_error(model, keras_model, x) <= bound
    assert final_error(back, keras_model, x) <= bound
    if dtype == "float64":
        assert bound < 1e-12


@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_cnn_ports_through_the_reference(dtype):
    model, x = torch_cnn(dtype), batch(TORCH_CNN_INPUT)
    reference = torch_to_reference(model)
    assert_agree(model, reference, x)
    assert_agree(reference, reference_to_torch(reference), x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,shape", [("tutorial", TUTORIAL_INPUT), ("vgg", VGG_INPUT)])
def test_case_matrix_cnns_port_to_keras_and_torch_and_back(name, shape, dtype):
    model, x = reference_cnn(name, dtype), batch(shape, n=3)
    keras_model = reference_to_keras(model, shape)
    assert_agree(model, keras_model, x)
    assert_agree(model, keras_to_reference(keras_model), x)
    torch_model = reference_to_torch(model)
    assert_agree(model, torch_model, x)
    assert_agree(keras_model, torch_model, x)


def test_batch_norm_options_survive_the_round_trip():
    from torch import nn

    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3, eps=1e-3, momentum=0.01)).double()
    back = keras_to_torch(torch_to_keras(model, (2, 5, 5)))
    keras_bn = torch_to_keras(model, (2, 5, 5)).layers[1]
    assert (keras_bn.epsilon, keras_bn.momentum) == (1e-3, 0.99)
    assert (back[1].eps, back[1].momentum) == (1e-3, 0.01)


@pytest.mark.parametrize("build,reason", [
    (lambda nn: nn.MaxPool2d(3, stride=1, padding=1, dilation=2), "dilated max pool"),
    (lambda nn: nn.AvgPool2d(2, stride=2, padding=1, count_include_pad=False), "count_include_pad=False"),
    (lambda nn: nn.AvgPool2d(2, divisor_override=3), "divisor_override=3"),
    (lambda nn: nn.Conv2d(4, 4, 3, stride=2, dilation=2), "dilation_rate > 1"),
    (lambda nn: nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"), "padding_mode='reflect'"),
    (lambda nn: nn.MaxPool2d(2, ceil_mode=True), "ceil_mode=True"),
    (lambda nn: nn.GELU(), "no port for this module type"),
])
def test_an_unportable_layer_is_refused_naming_it(build, reason):
    import torch
    from torch import nn

    layer = build(nn)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), layer, nn.Flatten()).double()
    with pytest.raises(ValueError, match=r"layer 2\b.*\(" + type(layer).__name__ + r"\).*" + re.escape(reason)):
        torch_to_keras(model, (3, 9, 9))
    assert isinstance(model[0].weight, torch.nn.Parameter)  # the source model is left alone


def test_average_pooling_that_excludes_same_padding_is_keras_same_pooling():
    from torch import nn

    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)).double()
    keras_model = torch_to_keras(model, (1, 9, 9))
    assert keras_model.layers[-1].padding == "same"
    assert_agree(model, keras_model, batch((1, 9, 9)))


def test_leaky_relu_with_a_slope_keras_cannot_hold_in_float64_is_refused():
    from torch import nn

    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.LeakyReLU(0.1)).double()
    with pytest.raises(ValueError, match=r"layer 1 '1' \(LeakyReLU\).*float32"):
        torch_to_keras(model, (1, 5, 5))
    half = nn.Sequential(nn.Conv2d(1, 2, 3), nn.LeakyReLU(0.5)).double()  # 0.5 is a float32
    assert_agree(half, torch_to_keras(half, (1, 5, 5)), batch((1, 5, 5)))
