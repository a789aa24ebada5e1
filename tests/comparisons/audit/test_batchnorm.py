"""Batch-norm probes (audit/batchnorm.py): momentum and epsilon, the running variance, the default mode."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest

import reference as ref
from comparisons.audit import batchnorm

from .helpers import check, ev, finding, verdict_is


@pytest.mark.torch
@pytest.mark.keras
def test_batchnorm_momentum_epsilon():
    import keras
    import torch

    pid = "batchnorm-momentum-epsilon"
    tbn, kbn = torch.nn.BatchNorm2d(1), keras.layers.BatchNormalization()
    t, k = ev(pid, "torch"), ev(pid, "keras")
    # the probes run in float64: the weights agree to rounding (measured 9e-16); eps is read off
    # (x / out)**2 - 1, a difference of O(1) terms, so eps64 / eps ~ 2e-11 relative (measured 1.6e-11)
    check(pid, "torch", "batch weight", t["batch_weight"], tbn.momentum, "running = (1-m)*running + m*batch",
          rtol=1e-12)
    check(pid, "keras", "batch weight", k["batch_weight"], 1 - kbn.momentum, "moving = m*moving + (1-m)*batch",
          rtol=1e-12)
    check(pid, "torch", "measured eps", t["eps_measured"], tbn.eps, "out = x / sqrt(var + eps)", rtol=1e-9)
    check(pid, "keras", "measured eps", k["eps_measured"], kbn.epsilon, "out = x / sqrt(var + eps)", rtol=1e-9)
    verdict_is(pid, True, ["torch"])


@pytest.mark.torch
@pytest.mark.keras
def test_batchnorm_running_variance():
    pid, n = "batchnorm-running-variance", int(np.prod(batchnorm.SHAPE))
    check(pid, "torch", "running var / biased var", ev(pid, "torch")["running_var_used_over_biased_var"], n / (n - 1),
          "unbiased variance (n/(n-1)) in running_var", rtol=1e-12)  # float64 probe: rounding (measured 2e-16)
    check(pid, "keras", "moving var / biased var", ev(pid, "keras")["running_var_used_over_biased_var"], 1.0,
          "biased variance in moving_variance", rtol=1e-12)
    verdict_is(pid, True, ["torch"])


@pytest.mark.torch
@pytest.mark.keras
def test_batchnorm_default_mode():
    pid, x = "batchnorm-default-mode", batchnorm.batch()
    t, k = ev(pid, "torch"), ev(pid, "keras")
    # a float64 mean of normalised values: 0 to rounding (measured 1e-16)
    check(pid, "torch", "output mean", t["out_mean"], 0.0, "training mode: batch statistics", atol=1e-12)
    check(pid, "torch", "running mean", t["running_mean_after"], 0.1 * x.mean(), "training mode updates",
          rtol=1e-12)  # float64 probe: rounding (measured 0)
    check(pid, "keras", "output mean", k["out_mean"], x.mean() / math.sqrt(1 + 1e-3),
          "inference mode: x / sqrt(1 + eps)", rtol=1e-12)
    check(pid, "keras", "moving mean", k["running_mean_after"], 0.0, "inference mode updates nothing")
    verdict_is(pid, True, ["torch"])


def test_batchnorm_reference():
    """reference.BatchNorm2d: PyTorch's momentum (weight of the batch) and eps, the unbiased running variance
    by default and the biased one with unbiased_running_var=False, training mode when fresh."""
    defaults = {k: v.default for k, v in inspect.signature(ref.BatchNorm2d).parameters.items()}
    x, n = batchnorm.batch(), int(np.prod(batchnorm.SHAPE))
    e = ev("batchnorm-momentum-epsilon", "reference")
    check("batchnorm-momentum-epsilon", "reference", "batch weight", e["batch_weight"], defaults["momentum"],
          "running = (1-m)*running + m*batch", rtol=1e-12)
    check("batchnorm-momentum-epsilon", "reference", "measured eps", e["eps_measured"], defaults["eps"],
          "out = x / sqrt(var + eps)", rtol=1e-9)  # read off (x / out)**2 - 1: ~2e-11 relative, see above
    pid, key = "batchnorm-running-variance", "running_var_used_over_biased_var"
    check(pid, "reference", "running var / biased var", ev(pid, "reference")[key], n / (n - 1),
          "unbiased variance (n/(n-1)) by default", rtol=1e-12)
    check(pid, "reference", "running var / biased var (biased switch)",
          ev(pid, "reference")[f"{key} (unbiased_running_var=False)"], 1.0, "biased variance when asked", rtol=1e-12)
    pid, e = "batchnorm-default-mode", ev("batchnorm-default-mode", "reference")
    check(pid, "reference", "output mean", e["out_mean"], 0.0, "training mode: batch statistics", atol=1e-12)
    check(pid, "reference", "output std", e["out_std"], math.sqrt(x.var() / (x.var() + defaults["eps"])),
          "xhat = (x - mean) / sqrt(var + eps)", rtol=1e-12)
    check(pid, "reference", "running mean", e["running_mean_after"], defaults["momentum"] * x.mean(),
          "training mode updates", rtol=1e-12)


@pytest.mark.torch
@pytest.mark.keras
@pytest.mark.jax
def test_batchnorm_frozen():
    """Keras' trainable=False switches to inference mode; PyTorch's requires_grad_(False) and Flax's train mode do
    not."""
    pid, x = "batchnorm-frozen", batchnorm.batch()
    for side in ("torch", "jax", "reference"):
        # batch statistics: a float64 mean of normalised values, 0 to rounding (measured 2e-16)
        check(pid, side, "output mean", ev(pid, side)["out_mean"], 0.0, "batch statistics", atol=1e-12)
    check(pid, "torch", "running mean", ev(pid, "torch")["running_mean_after"], 0.1 * x.mean(), "updates", rtol=1e-12)
    check(pid, "jax", "running mean", ev(pid, "jax")["running_mean_after"], 0.01 * x.mean(), "updates", rtol=1e-12)
    k = ev(pid, "keras")
    check(pid, "keras", "output mean", k["out_mean"], x.mean() / math.sqrt(1 + 1e-3), "moving statistics",
          rtol=1e-12)
    check(pid, "keras", "moving mean", k["running_mean_after"], 0.0, "a frozen layer updates nothing")
    check(pid, "keras", "trainable layer, training=True", k["trainable=True, training=True"]["out_mean"], 0.0,
          "batch statistics", atol=1e-12)
    f = finding(pid)
    assert (f.differs, f.groups, f.reference_follows) == (True, [["torch", "jax"], ["keras"]], ["torch", "jax"]), f
