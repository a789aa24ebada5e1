"""GlobalAvgPool2d: the channel means, loop == im2col, gradients, errors."""

from __future__ import annotations

import numpy as np
import pytest

from reference import GlobalAvgPool2d, max_rel_error
from tests.reference.helpers import assert_gradients_match


@pytest.mark.parametrize("shape", [(2, 3, 5, 4), (3, 7, 6), (2, 4, 1, 1)], ids=["batch", "single", "1x1"])
@pytest.mark.parametrize("impl", ["loop", "im2col"])
def test_is_the_mean_over_height_and_width(shape, impl):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    out = GlobalAvgPool2d(impl).forward(x)
    assert out.shape == shape[:-2]
    assert max_rel_error(out, x.mean(axis=(-2, -1))) < 1e-15
    assert_gradients_match(GlobalAvgPool2d(impl), x, rng)


def test_loop_equals_im2col():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2, 6, 5))
    dout = rng.standard_normal((3, 2))
    loop, fast = GlobalAvgPool2d("loop"), GlobalAvgPool2d("im2col")
    assert max_rel_error(loop.forward(x), fast.forward(x)) < 1e-15
    assert max_rel_error(loop.backward(dout), fast.backward(dout)) < 1e-15


def test_backward_spreads_evenly():
    layer = GlobalAvgPool2d()
    layer.forward(np.zeros((1, 2, 2, 5)))
    np.testing.assert_array_equal(layer.backward(np.array([[10.0, 20.0]]))[0, 1], np.full((2, 5), 2.0))


@pytest.mark.parametrize("call,error,match", [
    (lambda: GlobalAvgPool2d("fast"), ValueError, r"impl must be one of \('loop', 'im2col'\), got 'fast'"),
    (lambda: GlobalAvgPool2d().forward(np.zeros((4, 4))), ValueError, r"3 or 4 dims .* got shape \(4, 4\)"),
    (lambda: GlobalAvgPool2d().backward(np.zeros((1, 2))), RuntimeError, "backward called before forward"),
])
def test_bad_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
