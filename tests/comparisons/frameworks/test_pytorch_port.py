"""comparisons.frameworks.pytorch.port: reading nn.Sequential models (nested, every padding spelling) into the
neutral layers and building them back."""

from __future__ import annotations

import numpy as np
import pytest

from comparisons import layouts
from comparisons.port import framework_port

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def port():
    return framework_port("torch")


def test_nested_sequentials_are_read_in_order_with_dotted_names(port):
    from torch import nn

    model = nn.Sequential(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Sequential(nn.ReLU())), nn.Flatten())
    layers = port.read(model)
    assert [(p.name, p.type, p.kind) for p in layers] == [
        ("0.0", "Conv2d", "conv"), ("0.1.0", "ReLU", "relu"), ("1", "Flatten", "flatten")]


@pytest.mark.parametrize("padding,kernel,pads", [
    (0, 3, ((0, 0), (0, 0))), (1, 3, ((1, 1), (1, 1))), ((2, 0), 3, ((2, 2), (0, 0))),
    ("same", 3, ((1, 1), (1, 1))), ("same", 4, ((1, 2), (1, 2))), ("valid", 3, ((0, 0), (0, 0))),
])
def test_every_conv_padding_spelling_reads_as_top_bottom_left_right(port, padding, kernel, pads):
    from torch import nn

    (layer,) = port.read(nn.Sequential(nn.Conv2d(1, 1, kernel, padding=padding)))
    assert layer.options["pads"] == pads


def test_asymmetric_conv_padding_is_built_as_zero_pad_before_the_conv(port):
    from torch import nn

    layers = port.read(nn.Sequential(nn.Conv2d(1, 1, 4, padding="same")))
    built = port.build(layers)
    assert [type(m).__name__ for m in built] == ["ZeroPad2d", "Conv2d"] and built[0].padding == (1, 2, 1, 2)


def test_parameters_are_converted_to_the_reference_layout(port):
    from torch import nn

    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 4)).double()
    _, linear = port.read(model)
    np.testing.assert_array_equal(linear.params["weight"],
                                  layouts.linear_from_torch(model[1].weight.detach().numpy()))
    assert linear.params["weight"].shape == (6, 4)
    rebuilt = port.build([linear])
    np.testing.assert_array_equal(rebuilt[0].weight.detach().numpy(), model[1].weight.detach().numpy())


@pytest.mark.parametrize("make,message", [
    (lambda nn: nn.BatchNorm2d(2, momentum=None), r"layer 1 \(BatchNorm2d\): momentum=None"),
    (lambda nn: nn.MaxPool2d(2, return_indices=True), r"layer 1 \(MaxPool2d\): return_indices=True"),
    (lambda nn: nn.Flatten(0), r"layer 1 \(Flatten\): only start_dim=1"),
    (lambda nn: nn.Upsample(scale_factor=2), r"layer 1 \(Upsample\): no port for this module type"),
])
def test_modules_without_a_port_are_refused_naming_them(port, make, message):
    from torch import nn

    with pytest.raises(ValueError, match=message):
        port.read(nn.Sequential(nn.Conv2d(1, 2, 3), make(nn)))


def test_a_model_that_is_not_a_sequential_is_refused(port):
    from torch import nn

    with pytest.raises(ValueError, match="the model must be an nn.Sequential, got Conv2d"):
        port.read(nn.Conv2d(1, 1, 1))
