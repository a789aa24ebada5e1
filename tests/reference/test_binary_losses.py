"""Binary cross-entropy (probabilities and logits): gradients against finite differences, PyTorch's values at
probabilities and labels of exactly 0 and 1, Keras' clipping, bad arguments by name."""

from __future__ import annotations

import numpy as np
import pytest

from reference import binary_cross_entropy, binary_cross_entropy_with_logits
from tests.reference.helpers import assert_refused_by_name, is_real

REDUCTIONS = ("mean", "sum", "none")


def _check_gradient(loss_fn, x, reduction, rng):
    dloss = rng.standard_normal(x.shape) if reduction == "none" else 1.7
    _, grad = loss_fn(x, dloss)

    def scalar(v):
        loss, _ = loss_fn(v, dloss)
        return float(np.sum(np.asarray(loss) * dloss))

    numeric = np.empty_like(x)
    h = 1e-6
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        numeric[i] = (scalar(up) - scalar(down)) / (2 * h)
    assert np.max(np.abs(grad - numeric)) <= 1e-8 * max(1.0, np.max(np.abs(numeric)))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_bce_gradients(reduction, weighted):
    rng = np.random.default_rng(0)
    p, t = rng.uniform(0.05, 0.95, (4, 3)), rng.uniform(0, 1, (4, 3))
    w = rng.uniform(0.5, 2, 3) if weighted else None
    _check_gradient(lambda v, d: binary_cross_entropy(v, t, w, reduction, d), p, reduction, rng)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weights", ["none", "weight", "pos_weight", "both"])
def test_bce_with_logits_gradients(reduction, weights):
    rng = np.random.default_rng(1)
    x, t = 3 * rng.standard_normal((4, 3)), rng.uniform(0, 1, (4, 3))
    w = rng.uniform(0.5, 2, (4, 1)) if weights in ("weight", "both") else None
    c = rng.uniform(0.5, 3, 3) if weights in ("pos_weight", "both") else None
    _check_gradient(lambda v, d: binary_cross_entropy_with_logits(v, t, w, c, reduction, d), x, reduction, rng)


def test_bce_at_exact_zero_and_one():
    """PyTorch's values: each log clamped at -100, the gradient's denominator at 1e-12."""
    p = np.array([0.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    t = np.array([0.0, 1.0, 0.0, 1.0, 0.5, 0.5])
    loss, grad = binary_cross_entropy(p, t, reduction="none")
    np.testing.assert_array_equal(loss, [0, 100, 100, 0, 50, 50])
    np.testing.assert_array_equal(grad, np.array([0, -1, 1, 0, -0.5, 0.5]) / np.float32(1e-12).item())


def test_bce_keras_clipping():
    p = np.array([0.0, 1e-9, 0.3, 1.0])
    t = np.array([1.0, 1.0, 1.0, 0.0])
    loss, grad = binary_cross_entropy(p, t, reduction="none", clip_epsilon=1e-7)
    np.testing.assert_allclose(loss, [-np.log(1e-7), -np.log(1e-7), -np.log(0.3), -np.log(1e-7)], rtol=1e-9)
    np.testing.assert_array_equal(grad[[0, 1, 3]], 0)
    assert np.isclose(grad[2], -1 / 0.3)


def test_bce_with_logits_is_finite_for_huge_logits():
    x = np.array([-1e4, 1e4, -1e4, 1e4])
    t = np.array([0.0, 1.0, 1.0, 0.0])
    loss, grad = binary_cross_entropy_with_logits(x, t, reduction="none")
    np.testing.assert_array_equal(loss, [0, 0, 1e4, 1e4])
    np.testing.assert_array_equal(grad, [0, 0, -1, 1])


def test_errors_name_the_argument():
    p = np.full((2, 3), 0.5)
    with pytest.raises(ValueError, match="probs must hold probabilities"):
        binary_cross_entropy(p + 1, p)
    with pytest.raises(ValueError, match="target must hold probabilities"):
        binary_cross_entropy(p, p - 1)
    with pytest.raises(ValueError, match="target must have the input's shape"):
        binary_cross_entropy_with_logits(p, p[0])
    with pytest.raises(ValueError, match="weight of shape"):
        binary_cross_entropy(p, p, weight=np.ones(2))
    with pytest.raises(ValueError, match="pos_weight of shape"):
        binary_cross_entropy_with_logits(p, p, pos_weight=np.ones((4, 2, 3)))
    with pytest.raises(TypeError, match="scores"):
        binary_cross_entropy_with_logits(np.ones((2, 3), dtype=int), p)
    with pytest.raises(ValueError, match="dloss"):
        binary_cross_entropy(p, p, reduction="none", dloss=np.ones(3))
    for fn in (binary_cross_entropy, binary_cross_entropy_with_logits):
        assert_refused_by_name(lambda reduction, fn=fn: fn(p, p, reduction=reduction), {}, "reduction",
                               lambda v: isinstance(v, str) and v in REDUCTIONS)
    assert_refused_by_name(lambda clip_epsilon: binary_cross_entropy(p, p, clip_epsilon=clip_epsilon), {},
                           "clip_epsilon", lambda v: v is None or (is_real(0.0, strict=True)(v) and v < 0.5))
