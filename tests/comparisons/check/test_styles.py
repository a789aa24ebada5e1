"""The class protocol and the attribute mapping; Sequential accepts a layer with the protocol."""

import numpy as np
import pytest

import reference as ref
from comparisons.check import styles
from tests.comparisons.check.fixtures import attr_layers, class_layers


def test_constructor_refusal_is_not_covered():
    style = styles.ClassStyle(class_layers.Conv2d)
    with pytest.raises(styles.NotCovered, match="unexpected keyword argument 'groups'"):
        style.build("Conv2d", {"in_channels": 2, "out_channels": 2, "kernel_size": 1, "groups": 2})


def test_attribute_style_puts_and_takes_attributes():
    style = styles.AttributeStyle(attr_layers.Linear, {"weight": "W", "bias": "b"}, {"weight": "dW", "bias": "db"})
    subject = style.build("Linear", {"in_features": 3, "out_features": 2})
    subject.params = {"weight": np.ones((3, 2)), "bias": np.zeros(2)}
    assert subject.forward(np.ones((1, 3))).tolist() == [[3.0, 3.0]]
    subject.backward(np.ones((1, 2)))
    assert subject.grads["weight"].shape == (3, 2) and subject.grads["bias"].tolist() == [1.0, 1.0]


@pytest.mark.parametrize("pairs, message", [(["weight"], "REFERENCE_KEY=ATTRIBUTE"), (["weight=1x"], "weight=1x")])
def test_bad_mapping(pairs, message):
    with pytest.raises(ValueError, match=message):
        styles.parse_mapping(pairs, "--param")


def test_unmatched_param_and_grad():
    with pytest.raises(ValueError, match="unmatched keys"):
        styles.AttributeStyle(attr_layers.Linear, {"weight": "W"}, {})


def test_sequential_takes_a_protocol_layer_once():
    mine = class_layers.Linear(4, 3)
    mine.params["weight"] = np.arange(12.0).reshape(4, 3) / 10
    model = ref.Sequential([ref.ReLU(), mine])
    x = np.linspace(-1, 1, 8).reshape(2, 4)
    out = model.forward(x)
    dx = model.backward(np.ones_like(out))
    assert dx.shape == x.shape and set(model.grads) == {"1.weight", "1.bias"}
    with pytest.raises(ValueError, match="same Linear instance"):
        ref.Sequential([mine, ref.ReLU(), mine])
    with pytest.raises(TypeError, match="must be a Layer or have forward, backward, params and grads"):
        ref.Sequential([object()])
