"""The tutorial's defects, each pinned by a test that the tutorial's own code fails."""

from __future__ import annotations

import numpy as np
import pytest

from reference import Conv2d, MaxPool2d, max_rel_error, numerical_gradient
from tests.reference import tutorial_original as tutorial
from tests.reference.test_conv import direct_conv


def padded_conv_is_correct(forward, weight, bias, x) -> bool:
    """Does ``forward(x)`` equal the definition of a 3x3 conv with 1 pixel of spatial zero padding?"""
    try:
        out = forward(x)
    except ValueError:  # shapes that do not broadcast
        return False
    expected = direct_conv(x[None], weight, bias, (1, 1), (1, 1), (1, 1))[0]
    return out.shape == expected.shape and max_rel_error(out, expected) < 1e-12


@pytest.mark.parametrize("impl", ["loop", "im2col"])
def test_padding_is_spatial_only(impl):
    """The tutorial's ``np.pad(x, pad)`` on a CHW array pads the channel axis too."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 6, 6))
    ours = Conv2d(2, 3, 3, padding=1, impl=impl, rng=1)
    theirs = tutorial.Conv(2, 3, 3, pad=1)
    theirs.filters, theirs.bias = ours.params["weight"], ours.params["bias"]
    assert padded_conv_is_correct(ours.forward, ours.params["weight"], ours.params["bias"], x)
    assert not padded_conv_is_correct(theirs.forward, theirs.filters, theirs.bias, x)


@pytest.mark.parametrize("impl", ["loop", "im2col"])
def test_overlapping_max_pool_windows_accumulate(impl):
    """With overlapping windows a shared maximum must receive the sum of their gradients; the tutorial's
    backward assigns, keeping only the last window's."""
    rng = np.random.default_rng(2)
    x = rng.permutation(25).reshape(1, 5, 5) / 25.0
    pool = MaxPool2d(3, stride=1, impl=impl)
    out = pool.forward(x)
    dout = rng.standard_normal(out.shape)
    expected = numerical_gradient(lambda: pool.forward(x), x, dout)
    assert max_rel_error(pool.backward(dout), expected) < 1e-8
    assert max_rel_error(tutorial.maxpool_backward_assigning(x, dout, 3, 1), expected) > 0.1


@pytest.mark.parametrize("impl", ["loop", "im2col"])
def test_batches_are_supported(impl):
    """The tutorial's formulas unpack ``_, H, W = x.shape``: one image only."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 2, 6, 6))
    ours = Conv2d(2, 3, 3, impl=impl, rng=4)
    out = ours.forward(x)
    assert out.shape == (4, 3, 4, 4)
    for n in range(4):
        assert max_rel_error(out[n], ours.forward(x[n])) < 1e-14
    with pytest.raises(ValueError):
        tutorial.Conv(2, 3, 3).forward(x)
