"""RMSprop, Adagrad and AdamW: the formulas (PyTorch's and, with the switches, Keras'), bad arguments by name.
Parity with torch.optim over 300 steps: tests/comparisons/test_optimizer_parity.py."""

from __future__ import annotations

import numpy as np
import pytest

from reference import Adagrad, Adam, AdamW, RMSprop
from tests.reference.helpers import assert_refused_by_name, is_bool, is_real


def run(opt_class, steps=3, **kw):
    p = {"w": np.array([1.0, -2.0, 0.5])}
    opt = opt_class(p, **kw)
    grads = [np.array([0.3, -0.1, 2.0]) * (k + 1) for k in range(steps)]
    for g in grads:
        opt.step({"w": g})
    return p["w"], grads


def test_rmsprop_keras_form():
    """eps inside the square root and lr inside the momentum buffer, centered: Keras' update written out."""
    got, grads = run(RMSprop, lr=0.01, alpha=0.9, eps=1e-7, momentum=0.5, centered=True, eps_in_sqrt=True,
                     momentum_holds_lr=True)
    p, v, a, m = np.array([1.0, -2.0, 0.5]), 0.0, 0.0, 0.0
    for g in grads:
        v = 0.9 * v + 0.1 * g * g
        a = 0.9 * a + 0.1 * g
        m = 0.5 * m + 0.01 * g / np.sqrt(v - a * a + 1e-7)
        p = p - m
    np.testing.assert_allclose(got, p, rtol=1e-14)


def test_adagrad_torch_and_keras_forms():
    got, grads = run(Adagrad, lr=0.1, lr_decay=0.5, initial_accumulator_value=0.1, eps=1e-10)
    p, s = np.array([1.0, -2.0, 0.5]), 0.1
    for t, g in enumerate(grads):
        s = s + g * g
        p = p - 0.1 / (1 + t * 0.5) * g / (np.sqrt(s) + 1e-10)
    np.testing.assert_allclose(got, p, rtol=1e-14)
    keras, _ = run(Adagrad, lr=0.1, initial_accumulator_value=0.1, eps=1e-7, eps_in_sqrt=True)
    p, s = np.array([1.0, -2.0, 0.5]), 0.1
    for g in grads:
        s = s + g * g
        p = p - 0.1 * g / np.sqrt(s + 1e-7)
    np.testing.assert_allclose(keras, p, rtol=1e-14)


def test_adamw_is_decay_then_adam():
    got, grads = run(AdamW, lr=0.01, weight_decay=0.1)
    p = {"w": np.array([1.0, -2.0, 0.5])}
    adam = Adam(p, lr=0.01)
    for g in grads:
        p["w"] *= 1 - 0.01 * 0.1
        adam.step({"w": g})
    np.testing.assert_array_equal(got, p["w"])


@pytest.mark.parametrize("make", [RMSprop, Adagrad, AdamW])
def test_a_bad_gradient_changes_nothing(make):
    p = {"w": np.ones(3)}
    opt = make(p)
    with pytest.raises(ValueError, match=r"grads\['w'\]"):
        opt.step({"w": np.ones(4)})
    np.testing.assert_array_equal(p["w"], 1.0)


PARAMS = {"w": np.zeros(3)}


@pytest.mark.parametrize("make, arg, valid", [
    (RMSprop, "lr", is_real(0.0, strict=True)), (RMSprop, "alpha", is_real(0.0, maximum=1.0)),
    (RMSprop, "eps", is_real(0.0)), (RMSprop, "weight_decay", is_real(0.0)), (RMSprop, "momentum", is_real(0.0)),
    (RMSprop, "centered", is_bool), (RMSprop, "eps_in_sqrt", is_bool), (RMSprop, "momentum_holds_lr", is_bool),
    (Adagrad, "lr", is_real(0.0, strict=True)), (Adagrad, "lr_decay", is_real(0.0)),
    (Adagrad, "weight_decay", is_real(0.0)), (Adagrad, "initial_accumulator_value", is_real(0.0)),
    (Adagrad, "eps", is_real(0.0)), (Adagrad, "eps_in_sqrt", is_bool),
    (AdamW, "lr", is_real(0.0, strict=True)), (AdamW, "eps", is_real(0.0)), (AdamW, "weight_decay", is_real(0.0)),
    (AdamW, "eps_hat", is_bool),
])
def test_bad_arguments_are_refused_by_name(make, arg, valid):
    assert_refused_by_name(lambda **kw: make(PARAMS, **kw), {}, arg, valid)
