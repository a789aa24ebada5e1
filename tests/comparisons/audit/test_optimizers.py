"""Optimizer probes (audit/optimizers.py): Adam's epsilon, SGD momentum and weight decay, from the update rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from comparisons.audit import optimizers

from .helpers import check, ev, keras_only, torch_only

KERAS_LR_TOL = 1e-6  # Keras holds the learning rate in a float32 variable (relative error ~3e-8)
# Keras' Adam bias correction sees beta_2 as float32: 1 - 0.999 is then 1.3e-5 off, sqrt of it 6.4e-6
# (measured 1e-5 with the other float32 roundings). PyTorch's and Keras' steps differ by 2x to 300x
# for the small gradients, so this tolerance still tells the two conventions apart.
KERAS_ADAM_TOL = 2e-5


def adam_steps(eps: float, eps_hat: bool) -> np.ndarray:
    """Adam's first steps, written from the update rules: bias-corrected (PyTorch) or eps-hat (Keras)."""
    g, lr, b1, b2 = np.array(optimizers.ADAM["grads"]), optimizers.ADAM["lr"], 0.9, 0.999
    m = v = np.zeros_like(g)
    steps = []
    for t in range(1, optimizers.ADAM["steps"] + 1):
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        if eps_hat:
            steps.append(-lr * math.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps))
        else:
            steps.append(-lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps))
    return np.array(steps)


@pytest.mark.torch
def test_adam_torch():
    import torch

    pid, e = "adam-epsilon", ev("adam-epsilon", "torch")
    eps = torch.optim.Adam([torch.zeros(1, requires_grad=True)]).defaults["eps"]
    check(pid, "torch", "default eps", e["eps_default"], eps, "torch.optim.Adam defaults")
    check(pid, "torch", "first steps", e["steps"], adam_steps(eps, eps_hat=False), "eps on sqrt(v_hat)", rtol=1e-12)
    # eps (1e-8) is recovered as a difference of O(1) terms: up to eps64 / 1e-8 ~ 2e-8 relative error
    check(pid, "torch", "implied eps", e["eps_effective_step1"], [eps, eps], "eps_eff = eps", rtol=1e-6)


@pytest.mark.keras
def test_adam_keras():
    import keras

    pid, e = "adam-epsilon", ev("adam-epsilon", "keras")
    eps = keras.optimizers.Adam().epsilon
    check(pid, "keras", "default eps", e["eps_default"], eps, "keras.optimizers.Adam().epsilon")
    check(pid, "keras", "first steps", e["steps"], adam_steps(eps, eps_hat=True),
          "eps on uncorrected sqrt(v)", rtol=KERAS_ADAM_TOL)
    # the implied eps is read off a float32 step (a 1e-6-size term): 1e-3 relative is that rounding; the
    # candidate formulas (eps vs eps / sqrt(1 - beta2)) are 30x apart
    hat = eps / math.sqrt(1 - 0.999)
    check(pid, "keras", "implied eps", e["eps_effective_step1"], [hat, hat], "eps / sqrt(1 - beta2)", rtol=1e-3)
    same = optimizers.ADAM["same_eps"] / math.sqrt(1 - 0.999)
    check(pid, "keras", "implied eps (same eps)", e["eps_effective_step1_same_eps"], [same, same],
          "eps / sqrt(1 - beta2)", rtol=1e-3)


def test_adam_reference():
    pid, e = "adam-epsilon", ev("adam-epsilon", "reference")
    check(pid, "reference", "first steps", e["steps"], adam_steps(e["eps_default"], eps_hat=False),
          "PyTorch's Adam", rtol=1e-12)  # the same float64 formula: rounding only


def sgd_trajectory(lrs, grads, mu: float, nesterov: bool, keras_form: bool, p0: float = 1.0, wd: float = 0.0):
    """SGD written from each framework's rule: PyTorch b = mu*b + g, p -= lr*b (L2 in g);
    Keras m = mu*m - lr*g, p += m (decoupled decay p -= lr*wd*p)."""
    p, buf, out = p0, 0.0, []
    for lr, g in zip(lrs, grads, strict=True):
        if keras_form:
            p -= lr * wd * p
            buf = mu * buf - lr * g
            p += mu * buf - lr * g if nesterov else buf
        else:
            g = g + wd * p
            buf = mu * buf + g
            p -= lr * (g + mu * buf if nesterov else buf)
        out.append(p)
    return out


@pytest.mark.parametrize("side", [pytest.param("torch", marks=torch_only), pytest.param("keras", marks=keras_only),
                                  "reference"])
def test_sgd_momentum(side):
    pid, s = "sgd-momentum", optimizers.SGD
    grads = [s["grad"]] * len(s["lrs"])
    for key, nesterov in (("heavy_ball", False), ("nesterov", True)):
        expected = sgd_trajectory(s["lrs"], grads, s["momentum"], nesterov, keras_form=side == "keras", p0=s["p0"])
        check(pid, side, key, ev(pid, side)[key], expected, "Keras: m = mu*m - lr*g" if side == "keras"
              else "PyTorch: b = mu*b + g, p -= lr*b", rtol=KERAS_LR_TOL if side == "keras" else 1e-12)


@pytest.mark.parametrize("side", [pytest.param("torch", marks=torch_only), pytest.param("keras", marks=keras_only),
                                  "reference"])
def test_sgd_weight_decay(side):
    pid, d = "sgd-weight-decay", optimizers.DECAY
    lrs, grads = [d["lr"]] * d["steps"], [0.0] * d["steps"]
    expected = sgd_trajectory(lrs, grads, d["momentum"], False, keras_form=side == "keras", p0=d["p0"],
                              wd=d["weight_decay"])
    check(pid, side, "trajectory", ev(pid, side)["trajectory"], expected,
          "decoupled decay" if side == "keras" else "L2 through momentum",
          rtol=KERAS_LR_TOL if side == "keras" else 1e-12)
