"""Flax-defaults probes (audit/flax_defaults.py): nnx.Conv's default padding and kernel initialiser,
nnx.BatchNorm's momentum, epsilon and running variance, nnx.avg_pool's padded divisor; each against PyTorch and
Keras."""

from __future__ import annotations

import math

import numpy as np
import pytest

from comparisons.audit import base, batchnorm, flax_defaults, pooling
from comparisons.frameworks import FrameworkUnavailable
from tests.frameworks import unavailable

from .helpers import check, ev, groups_are

pytestmark = [pytest.mark.jax, pytest.mark.torch, pytest.mark.keras]


@pytest.fixture(autouse=True)
def _jax_present():
    try:
        base.import_nnx()
    except FrameworkUnavailable as exc:
        unavailable(str(exc))


def test_flax_conv_default_padding():
    pid, n, k = "flax-conv-default-padding", flax_defaults.PAD["n"], flax_defaults.PAD["k"]
    j = ev(pid, "jax")
    check(pid, "jax", "default padding", j["padding_default"], "SAME", "nnx.Conv(padding='SAME')")
    check(pid, "jax", "output size", j["out_size"], n, "'SAME' at stride 1 keeps the size")
    check(pid, "jax", "padding read back", j["pad"], [1, 1, 1, 1], "'SAME' pads (k-1)//2 on each side")
    for side in ("torch", "keras", "reference"):
        e = ev(pid, side)
        check(pid, side, "output size", e["out_size"], n - k + 1, "no padding by default")
        check(pid, side, "padding read back", e["pad"], [0, 0, 0, 0], "no padding by default")
    groups_are(pid, [["torch", "keras"], ["jax"]], ["torch", "keras"])


def test_flax_init_conv():
    pid = "flax-init-conv"
    j, t, k = ev(pid, "jax"), ev(pid, "torch"), ev(pid, "keras")
    fan_in, fan_out = j["fan_in"], j["fan_out"]
    # 9216 samples: the sample std is within ~1.5% of the distribution's (3 standard errors)
    check(pid, "jax", "std * sqrt(fan_in)", j["std_times_sqrt_fan_in"], 1.0, "lecun_normal: variance 1/fan_in",
          rtol=0.05)
    check(pid, "jax", "max |w| within the truncation", j["weight"]["max_abs"] <= 2 / 0.87962566 / math.sqrt(fan_in),
          True, "a normal truncated at 2 standard deviations, rescaled to the target variance")
    check(pid, "jax", "bias max |b|", j["bias"]["max_abs"], 0.0, "bias_init=zeros")
    check(pid, "torch", "std * sqrt(fan_in)", t["std_times_sqrt_fan_in"], 1 / math.sqrt(3),
          "U(-1/sqrt(fan_in), 1/sqrt(fan_in))", rtol=0.05)
    check(pid, "keras", "std", k["weight"]["std"], math.sqrt(2 / (fan_in + fan_out)),
          "glorot_uniform: variance 2/(fan_in + fan_out)", rtol=0.05)
    groups_are(pid, [["torch"], ["keras"], ["jax"]], ["torch"])


def test_flax_batchnorm_momentum_epsilon():
    pid = "flax-batchnorm-momentum-epsilon"
    j = ev(pid, "jax")
    # float64 statistics: the weight agrees to rounding; eps is read off (x / out)**2 - 1 (~2e-11 relative)
    check(pid, "jax", "batch weight", j["batch_weight"], 1 - 0.99, "ra = momentum * ra + (1 - momentum) * batch",
          rtol=1e-12)
    check(pid, "jax", "measured eps", j["eps_measured"], 1e-5, "out = x / sqrt(var + epsilon)", rtol=1e-9)
    check(pid, "jax", "running statistics dtype", j["running_stats_dtype"], "float32",
          "BatchStat created float32 whatever param_dtype")
    check(pid, "torch", "batch weight", ev(pid, "torch")["batch_weight"], 0.1, "momentum weighs the batch",
          rtol=1e-12)
    check(pid, "keras", "measured eps", ev(pid, "keras")["eps_measured"], 1e-3, "Keras' epsilon", rtol=1e-9)
    groups_are(pid, [["torch"], ["keras"], ["jax"]], ["torch"])


def test_flax_batchnorm_running_variance():
    pid, n = "flax-batchnorm-running-variance", int(np.prod(batchnorm.SHAPE))
    check(pid, "jax", "running var / biased var", ev(pid, "jax")["running_var_used_over_biased_var"], 1.0,
          "biased batch variance in the running var", rtol=1e-12)  # float64 (measured 1e-15)
    check(pid, "torch", "running var / biased var", ev(pid, "torch")["running_var_used_over_biased_var"],
          n / (n - 1), "unbiased variance in running_var", rtol=1e-12)
    groups_are(pid, [["torch"], ["keras", "jax"]], ["torch"])


def test_flax_avgpool_padding():
    pid, k = "flax-avgpool-padding", pooling.AVG["k"]
    j = ev(pid, "jax")
    counted = {"corner": k * k, "edge": k * k, "centre": k * k}
    inside = {"corner": 4.0, "edge": 6.0, "centre": 9.0}
    check(pid, "jax", "divisors, explicit padding", j["count_include_pad=True"], counted,
          "count_include_pad=True by default: every window divides by k*k")
    check(pid, "jax", "divisors, 'SAME'", j["SAME"], counted, "'SAME' also counts the padding by default")
    check(pid, "jax", "divisors, count_include_pad=False", j["count_include_pad=False"], inside,
          "the real inputs of each window")
    check(pid, "keras", "divisors, 'same'", ev(pid, "keras")["same"], inside, "Keras 'same' divides by real inputs")
    groups_are(pid, [["torch", "jax"], ["keras"]], ["torch", "jax"])
