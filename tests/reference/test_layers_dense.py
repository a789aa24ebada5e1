"""Linear, Flatten, ReLU: gradients and the tutorial's flattening convention."""

from __future__ import annotations

import numpy as np
import pytest

from reference import Flatten, Linear, ReLU, max_rel_error
from tests.reference.helpers import assert_gradients_match


@pytest.mark.parametrize("shape", [(4, 7), (3, 2, 3, 2), (7,), (1, 7)], ids=["flat-batch", "image-batch",
                                                                           "vector", "row"])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradients(shape, bias):
    rng = np.random.default_rng(0)
    d = 7 if shape in [(4, 7), (7,), (1, 7)] else 12
    assert_gradients_match(Linear(d, 5, bias=bias, rng=1), rng.standard_normal(shape), rng)


def test_linear_single_image_is_one_row_as_in_the_tutorial():
    rng = np.random.default_rng(2)
    layer = Linear(8 * 13 * 13, 10, rng=3)
    x = rng.standard_normal((8, 13, 13))
    out = layer.forward(x)
    assert out.shape == (1, 10)
    expected = x.flatten()[np.newaxis, :] @ layer.params["weight"] + layer.params["bias"]
    assert max_rel_error(out, expected) < 1e-14
    assert layer.backward(np.ones((1, 10))).shape == x.shape


def test_linear_batch_flattens_each_sample_channels_first():
    rng = np.random.default_rng(4)
    layer = Linear(3 * 4 * 5, 6, rng=5)
    x = rng.standard_normal((2, 3, 4, 5))
    out = layer.forward(x)
    for n in range(2):
        assert max_rel_error(out[n], x[n].reshape(-1) @ layer.params["weight"] + layer.params["bias"]) < 1e-14


@pytest.mark.parametrize("shape,flat", [((3, 4, 5), (1, 60)), ((2, 3, 4, 5), (2, 60)), ((2, 6), (2, 6))])
def test_flatten_shapes_and_gradient(shape, flat):
    rng = np.random.default_rng(6)
    x = rng.standard_normal(shape)
    layer = Flatten()
    out = layer.forward(x)
    assert out.shape == flat
    assert np.array_equal(out.reshape(-1), x.reshape(-1))  # channels-first order
    assert_gradients_match(layer, x, rng)


def test_relu_gradients_and_zero():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 4)) + 0.05 * np.sign(rng.standard_normal((2, 3, 4)))
    assert_gradients_match(ReLU(), x, rng)
    relu = ReLU()
    relu.forward(np.array([-1.0, 0.0, 2.0]))
    assert relu.backward(np.ones(3)).tolist() == [0.0, 0.0, 1.0]  # gradient at exactly 0 is 0
