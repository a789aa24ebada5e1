"""Linear, Flatten, ReLU: gradients and the tutorial's flattening convention; argument and size checks."""

from __future__ import annotations

import numpy as np
import pytest

from reference import BatchNorm2d, Conv2d, Flatten, LeakyReLU, Linear, ReLU, max_rel_error
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


def test_flatten_refuses_a_scalar_by_name():
    with pytest.raises(ValueError, match=r"Flatten.forward: x must have at least 1 dim .* got a scalar"):
        Flatten().forward(1.0)


@pytest.mark.parametrize("build", [lambda: Linear(2**31 - 1, 2**31 - 1),
                                   lambda: Conv2d(1, 1, 2**31 - 1),
                                   lambda: Conv2d(2**31 - 1, 2**31 - 1, 1),
                                   lambda: BatchNorm2d(2**31 - 1)],
                         ids=["Linear", "Conv2d-kernel", "Conv2d-channels", "BatchNorm2d"])
def test_parameters_larger_than_the_memory_are_refused_before_allocation(build):
    """Sizes within the int bound whose parameters could not fit: a clear error, not numpy's "array is too
    big", a MemoryError or the process killed mid-allocation."""
    with pytest.raises(ValueError, match=r"would need [\d.e+]+ GiB .* more than this machine's .* GiB of memory"):
        build()


def test_numpy_scalars_are_accepted_where_numbers_are():
    layer = BatchNorm2d(3, eps=np.float32(1e-3), momentum=np.float64(0.2))
    assert (layer.eps, layer.momentum) == (float(np.float32(1e-3)), 0.2)
    assert LeakyReLU(np.float32(0.5)).negative_slope == 0.5
