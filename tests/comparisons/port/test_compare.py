"""comparisons.port.compare: compare_models locates a planted mistake at its layer, names the audit finding that
explains it, says where two structures differ, and writes its report as Markdown and JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from comparisons import harness, layouts
from comparisons.audit.base import PROBES
from comparisons.port import compare, compare_models, framework_port, torch_to_keras
from comparisons.port.compare import groups
from comparisons.port.layers import PortLayer

from .helpers import TORCH_CNN_INPUT, batch, torch_cnn

pytestmark = [pytest.mark.torch, pytest.mark.keras]


def keras_with(dtype: str, change) -> tuple:
    """torch_cnn and its Keras port built from the neutral layers after ``change(layers)``: a hand port's mistake."""
    model = torch_cnn(dtype)
    layers = framework_port("torch").read(model)
    change(layers)
    return model, framework_port("keras").build(layers, TORCH_CNN_INPUT, dtype)


def row_named(report, type_name: str):
    return next(row for row in report.rows if row.type == type_name)


def test_rows_follow_the_first_model_with_padding_folded_into_the_layer_it_serves():
    model = torch_cnn("float64")
    report = compare_models(model, torch_to_keras(model, TORCH_CNN_INPUT), batch(TORCH_CNN_INPUT))
    assert [row.type for row in report.rows] == [
        "ZeroPad2d+Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "MaxPool2d", "AvgPool2d", "Dropout", "Flatten", "Linear",
        "ReLU", "Linear"]
    assert [row.other for row in report.rows][:6] == ["ZeroPadding2D+Conv2D", "BatchNormalization", "ReLU", "Conv2D",
                                                      "MaxPooling2D", "ZeroPadding2D+AveragePooling2D"]
    assert [row.name for row in report.rows][3:5] == ["4.0", "4.1"]  # nested Sequential: dotted paths
    assert report.rows[0].output_shape == (2, 4, 5, 5) and report.rows[-1].output_shape == (2, 5)
    assert report.first_divergence is None and report.agree
    # the bound of a row is the harness's tolerance for the reductions up to it: non-decreasing, float64 rounding
    bounds = [row.bound for row in report.rows]
    # the padding layer counts 1 (no sum), the conv its longest sum: 2*5*5 output positions > 4*3*3 > 3*3*3
    assert bounds == sorted(bounds) and bounds[0] == harness.tolerance("float64", 1 + 2 * 5 * 5)
    assert any("batchnorm-running-variance" in note for note in report.notes)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_keras_default_batch_norm_epsilon_is_located_at_the_batch_norm(dtype):
    def default_epsilon(layers):
        next(layer for layer in layers if layer.kind == "batchnorm").options["eps"] = 1e-3  # Keras' default

    model, keras_model = keras_with(dtype, default_epsilon)
    report = compare_models(model, keras_model, batch(TORCH_CNN_INPUT))
    bn = row_named(report, "BatchNorm2d")
    assert report.first_divergence == (bn.index, "2")
    assert all(row.passed for row in report.rows[:bn.index]) and not bn.passed
    assert bn.finding == "batchnorm-momentum-epsilon" and "eps 1e-05 vs 0.001" in bn.note
    assert "batchnorm-momentum-epsilon" in report.to_markdown() and not report.agree


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_unpermuted_dense_rows_after_flatten_are_located_at_the_dense_layer(dtype):
    model = torch_cnn(dtype)
    keras_model = torch_to_keras(model, TORCH_CNN_INPUT)
    dense = next(layer for layer in keras_model.layers if type(layer).__name__ == "Dense")
    torch_rows = layouts.linear_from_torch(model[8].weight.detach().numpy())  # C, H, W order: Keras wants H, W, C
    dense.set_weights([torch_rows, dense.get_weights()[1]])
    for grads in (False, True):
        report = compare_models(model, keras_model, batch(TORCH_CNN_INPUT), grads=grads)
        linear = row_named(report, "Linear")
        assert report.first_divergence == (linear.index, "8")
        # the outputs before it agree; with gradients, those before it differ too (the backward runs through it)
        assert all(row.max_rel_error <= row.bound for row in report.rows[:linear.index])
        with_params = [row for row in report.rows[:linear.index] if row.grad_errors]
        assert len(with_params) == (3 if grads else 0) and not any(row.passed for row in with_params)
        assert linear.finding == "layout-flatten-order"


def test_symmetric_padding_against_same_at_stride_2_is_located_at_the_convolution():
    from torch import nn

    model = nn.Sequential(nn.Conv2d(2, 3, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten()).double()
    layers = framework_port("torch").read(model)
    layers[0].options["pads"] = ((0, 1), (0, 1))  # Keras "same" at stride 2 on an even input
    keras_model = framework_port("keras").build(layers, (2, 6, 6))
    assert keras_model.layers[0].padding == "same"
    report = compare_models(model, keras_model, batch((2, 6, 6)))
    assert report.first_divergence == (0, "0")
    assert report.rows[0].finding == "conv-same-stride"
    assert report.rows[0].note == "padding ((1, 1), (1, 1)) vs ((0, 1), (0, 1))"


def test_structural_mismatch_says_where():
    from torch import nn

    a = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()).double()
    b = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten()).double()
    b[0].load_state_dict(a[0].state_dict())
    report = compare_models(a, torch_to_keras(b, (1, 6, 6)), batch((1, 6, 6)))
    assert report.structure.startswith("layer 2: 2 (MaxPool2d) is a maxpool, ") and "avgpool" in report.structure
    assert len(report.rows) == 2 and all(row.passed for row in report.rows) and not report.agree
    shorter = nn.Sequential(a[0], a[1])
    report = compare_models(a, shorter, batch((1, 6, 6)))
    assert report.structure == "torch has 4 layers, torch 2" and len(report.rows) == 2


def test_gradients_with_dropout_on_are_refused_naming_the_layer():
    model = torch_cnn("float64", dropout=0.5)
    with pytest.raises(ValueError, match=r"layer 6 \(Dropout\) drops at random \(p=0.5\)"):
        compare_models(model, torch_to_keras(model, TORCH_CNN_INPUT), batch(TORCH_CNN_INPUT), grads=True)
    report = compare_models(model, torch_to_keras(model, TORCH_CNN_INPUT), batch(TORCH_CNN_INPUT))
    assert report.agree  # evaluation mode: dropout is the identity


def test_comparing_leaves_both_models_as_they_were():
    import torch

    model = torch_cnn("float64")
    keras_model = torch_to_keras(model, TORCH_CNN_INPUT)
    before_torch = {k: v.clone() for k, v in model.state_dict().items()}
    before_keras = [w.numpy().copy() for w in keras_model.weights]
    compare_models(model, keras_model, batch(TORCH_CNN_INPUT), grads=True)
    assert all(torch.equal(before_torch[k], v) for k, v in model.state_dict().items())
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before_keras, keras_model.weights, strict=True))
    assert not model.training and all(p.grad is None for p in model.parameters())


def test_report_to_json_and_markdown():
    model = torch_cnn("float32")
    report = compare_models(model, torch_to_keras(model, TORCH_CNN_INPUT), batch(TORCH_CNN_INPUT), grads=True)
    found = json.loads(report.to_json())
    assert found["agree"] is True and found["first_divergence"] is None and found["dtype"] == "float32"
    assert len(found["rows"]) == 11 and found["rows"][0]["type"] == "ZeroPad2d+Conv2d"
    assert set(found["rows"][0]["grad_errors"]) == {"weight", "bias"}
    table = report.to_markdown()
    assert table.count("\n| ") == 12 and "grad max rel err" in table  # header + 11 rows
    assert "first divergence: none" in table


def test_every_finding_a_row_can_name_is_an_audit_probe():
    quoted = set(re.findall(r'"([a-z0-9]+(?:-[a-z0-9]+)+)"', Path(compare.__file__).read_text()))
    assert {"batchnorm-momentum-epsilon", "layout-flatten-order", "conv-same-stride"} <= quoted
    assert quoted <= set(PROBES), quoted - set(PROBES)


def test_groups_fold_padding_into_the_layer_it_serves():
    pad, conv, relu = PortLayer("zeropad"), PortLayer("conv"), PortLayer("relu")
    assert groups([pad, conv, relu]) == [[0, 1], [2]]
    assert groups([pad, relu, pad, pad, conv, pad]) == [[0], [1], [2, 3, 4], [5]]


def test_bad_input_is_refused():
    model = torch_cnn("float64")
    with pytest.raises(ValueError, match=r"x must be a float \(N, C, H, W\) batch, got float64 shape \(3, 10, 10\)"):
        compare_models(model, model, np.zeros(TORCH_CNN_INPUT))
    with pytest.raises(ValueError, match="a model must be a torch nn.Sequential"):
        compare_models(model, object(), batch(TORCH_CNN_INPUT))
