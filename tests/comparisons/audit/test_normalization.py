"""Layer- and group-norm probes (audit/normalization.py): default epsilon, normalised axes, channel groups, float32
statistics of a large-mean input."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import reference as ref

from .helpers import check, ev, finding

pytestmark = [pytest.mark.torch, pytest.mark.keras, pytest.mark.jax]


def defaults() -> dict[str, dict[str, float]]:
    """Each layer's epsilon default, read from its constructor."""
    import keras
    import torch
    from flax import nnx

    return {"layernorm-epsilon": {"torch": torch.nn.LayerNorm(2).eps,
                                  "keras": keras.layers.LayerNormalization().epsilon,
                                  "jax": nnx.LayerNorm(2, rngs=nnx.Rngs(0)).epsilon,
                                  "reference": inspect.signature(ref.LayerNorm).parameters["eps"].default},
            "groupnorm-epsilon": {"torch": torch.nn.GroupNorm(1, 2).eps,
                                  "keras": keras.layers.GroupNormalization().epsilon,
                                  "jax": nnx.GroupNorm(2, num_groups=1, rngs=nnx.Rngs(0)).epsilon,
                                  "reference": inspect.signature(ref.GroupNorm).parameters["eps"].default}}


@pytest.mark.parametrize("pid", ["layernorm-epsilon", "groupnorm-epsilon"])
def test_epsilon(pid):
    for side, eps in defaults()[pid].items():
        # float64 blocks of variance 1: eps = (x/out)**2 - 1 to ~1e-10 relative (measured 1.6e-11)
        check(pid, side, "measured eps", ev(pid, side)["eps_measured"], eps, "out = x / sqrt(var + eps)", rtol=1e-8)
    f = finding(pid)
    assert (f.differs, f.groups, f.reference_follows) == (True, [["torch"], ["keras"], ["jax"]], ["torch"]), f


def test_groupnorm_channel_groups():
    pid = "groupnorm-epsilon"
    for side in ("torch", "keras", "jax", "reference"):
        check(pid, side, "channel groups", ev(pid, side)["channel_groups"], [[0, 1], [2, 3]], "consecutive channels")
    check(pid, "keras", "default groups", ev(pid, "keras")["default_groups"], 32, "GroupNormalization(groups=32)")


def test_layernorm_axes():
    pid = "layernorm-axes"
    for side, axes in (("torch", ["W"]), ("keras", ["C"]), ("jax", ["C"]), ("reference", ["W"])):
        check(pid, side, "axes of the last-axis layer", ev(pid, side)["normalized_axes"], axes,
              "the last axis of the layout")
    check(pid, "torch", "LayerNorm((C, H, W))", ev(pid, "torch")["LayerNorm((C, H, W))"]["normalized_axes"],
          ["C", "H", "W"], "the trailing normalized_shape axes")
    check(pid, "keras", "axis=[1, 2, 3]", ev(pid, "keras")["LayerNormalization(axis=[1, 2, 3])"]["normalized_axes"],
          ["C", "H", "W"], "the given axes")
    f = finding(pid)
    assert (f.differs, f.groups, f.reference_follows) == (True, [["torch"], ["keras", "jax"]], ["torch"]), f


def test_norm_float32_large_mean():
    """Two-pass statistics stay at the float32 rounding of the input (ulp(1e4) ~ 1e-3); Flax's default one-pass
    variance cancels to ~0, which scales the output by ~1/sqrt(eps) ~ 316 (errors of hundreds)."""
    pid = "norm-float32-large-mean"
    bound = 4 * float(np.spacing(np.float32(1e4)))  # a few ulps of the input, in output units (std 1)
    for side, e in (("torch", ev(pid, "torch")), ("keras", ev(pid, "keras")), ("reference", ev(pid, "reference")),
                    ("jax", ev(pid, "jax")["use_fast_variance=False"])):
        for norm in ("layer", "group"):
            check(pid, side, f"{norm} norm error", e[f"{norm}_norm_max_abs_err"] < bound, True,
                  f"two-pass statistics: within {bound:g} of the float64 result")
    j = ev(pid, "jax")
    check(pid, "jax", "use_fast_variance default", j["use_fast_variance"], True, "E[x^2] - E[x]^2 by default")
    for norm in ("layer", "group"):
        check(pid, "jax", f"{norm} norm error", j[f"{norm}_norm_max_abs_err"] > 100, True,
              "one-pass float32 variance of a mean-1e4 input cancels")
    f = finding(pid)
    assert (f.differs, f.groups, f.reference_follows) == (True, [["torch", "keras"], ["jax"]], ["torch", "keras"]), f
