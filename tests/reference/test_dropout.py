"""Dropout: inverted scaling, the mask, evaluation mode, gradients, errors."""

from __future__ import annotations

import numpy as np
import pytest

from reference import Dropout
from tests.reference.helpers import assert_gradients_match


def test_keeps_about_1_minus_p_and_scales_kept_elements():
    x = np.random.default_rng(0).uniform(1, 2, (100, 100))
    layer = Dropout(0.3, rng=1)
    out = layer.forward(x)
    kept = out != 0
    np.testing.assert_array_equal(kept, layer.mask)
    assert abs(kept.mean() - 0.7) < 0.02  # 10,000 Bernoulli(0.7) draws: std 0.0046
    np.testing.assert_allclose(out[kept], x[kept] / 0.7, rtol=1e-15)


def test_same_seed_same_mask_and_fresh_mask_each_forward():
    x = np.ones((4, 50))
    a, b = Dropout(0.5, rng=7), Dropout(0.5, rng=7)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    first = a.mask
    a.forward(x)
    assert not np.array_equal(first, a.mask)


def test_eval_is_identity():
    x = np.random.default_rng(2).standard_normal((2, 3, 4))
    layer = Dropout(0.5, rng=0).eval()
    np.testing.assert_array_equal(layer.forward(x), x)
    np.testing.assert_array_equal(layer.backward(x), x)


def test_given_mask_is_used_until_cleared():
    x = np.arange(1.0, 7.0).reshape(2, 3)
    mask = np.array([[1, 0, 1], [0, 0, 1]])
    layer = Dropout(0.25, rng=0)
    layer.set_mask(mask)
    for _ in range(2):
        np.testing.assert_array_equal(layer.forward(x), x * mask / 0.75)
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), mask / 0.75)
    layer.set_mask(None)
    assert layer.forward(np.ones((40, 40))).std() > 0  # drawing again


@pytest.mark.parametrize("p", [0.0, 0.5, 0.9])
def test_gradients_with_a_fixed_mask(p):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 4, 4))
    layer = Dropout(p, rng=4)
    layer.forward(x)
    layer.set_mask(layer.mask)
    assert_gradients_match(layer, x, rng)


def test_p_zero_is_identity_and_p_one_drops_everything():
    x = np.random.default_rng(5).standard_normal((3, 4))
    np.testing.assert_array_equal(Dropout(0.0, rng=0).forward(x), x)
    layer = Dropout(1.0, rng=0)
    assert not layer.forward(x).any() and not layer.backward(np.ones_like(x)).any()


@pytest.mark.parametrize("call,error,match", [
    (lambda: Dropout(1.5), ValueError, r"Dropout: p must be in \[0, 1\], got 1.5"),
    (lambda: Dropout(-0.1), ValueError, r"p must be in \[0, 1\], got -0.1"),
    (lambda: Dropout(True), TypeError, "p must be a real number, got True"),
    (lambda: Dropout(0.5).set_mask(np.full((2, 2), 0.5)), ValueError, "mask must be boolean or hold only 0 and 1"),
    (lambda: Dropout(0.5).forward(np.arange(4)), TypeError, "x must have a real floating dtype"),
])
def test_bad_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_given_mask_of_the_wrong_shape_is_named():
    layer = Dropout(0.5)
    layer.set_mask(np.ones((2, 3), dtype=bool))
    with pytest.raises(ValueError, match=r"the mask given to set_mask must have shape \(3, 2\), got shape \(2, 3\)"):
        layer.forward(np.ones((3, 2)))
