"""softmax_cross_entropy: value against an extended-precision definition, gradient, large logits."""

from __future__ import annotations

import numpy as np
import pytest

from reference import max_rel_error, numerical_gradient, softmax_cross_entropy


def loss_in_long_double(scores, y):
    """-mean(log softmax(scores)[y]) computed in numpy's long double, straight from the definition."""
    s = np.asarray(scores, dtype=np.longdouble)
    m = s.max(axis=1, keepdims=True)
    logz = m[:, 0] + np.log(np.exp(s - m).sum(axis=1))
    return float(np.mean(logz - s[np.arange(len(y)), y]))


@pytest.mark.parametrize("scale", [1.0, 30.0, 1e4])
def test_value_matches_definition(scale):
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((6, 10)) * scale
    y = rng.integers(0, 10, 6)
    loss, _ = softmax_cross_entropy(scores, y)
    assert np.isfinite(loss)
    assert loss == pytest.approx(loss_in_long_double(scores, y), rel=1e-13)


@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_gradient_matches_finite_differences(scale):
    rng = np.random.default_rng(1)
    scores = rng.standard_normal((5, 4)) * scale
    y = rng.integers(0, 4, 5)
    _, dscores = softmax_cross_entropy(scores, y)
    assert np.isfinite(dscores).all()
    numeric = numerical_gradient(lambda: np.array(softmax_cross_entropy(scores, y)[0]), scores, np.array(1.0),
                                 h=1e-6 if scale == 1 else 1e-3)
    assert max_rel_error(dscores, numeric) < 1e-7
    assert np.allclose(dscores.sum(axis=1), 0.0, atol=1e-15)  # each row of softmax - onehot sums to 0


def test_tutorial_shape_single_sample():
    loss, d = softmax_cross_entropy(np.zeros((1, 10)), np.array([3]))
    assert loss == pytest.approx(np.log(10), rel=1e-15)
    assert d.shape == (1, 10) and d[0, 3] == pytest.approx(0.1 - 1, rel=1e-15)
