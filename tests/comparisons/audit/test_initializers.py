"""Default-initialisation probes (audit/initializers.py): the distribution of fresh kernels and biases."""

from __future__ import annotations

import math

import pytest

from comparisons.audit import initializers

from .helpers import check, ev, keras_only, torch_only


def check_uniform(pid: str, side: str, what: str, stats: dict, bound: float) -> None:
    """Samples of U(-bound, bound): max |w| just under bound, std bound/sqrt(3), excess kurtosis -1.2."""
    check(pid, side, f"{what} max |w|", stats["max_abs"], bound, f"U(-{bound:.4g}, {bound:.4g})", rtol=0.02)
    assert stats["max_abs"] <= bound * (1 + 1e-6), f"{pid} [{side}]: {what} exceeds the bound {bound}"
    check(pid, side, f"{what} std", stats["std"], bound / math.sqrt(3), "uniform std", rtol=0.15 if
          stats["count"] < 1000 else 0.02)
    if stats["count"] >= 1000:
        check(pid, side, f"{what} kurtosis", stats["excess_kurtosis"], -1.2, "uniform distribution", atol=0.05)


@pytest.mark.parametrize("pid", ["init-conv", "init-dense"])
@pytest.mark.parametrize("side", [pytest.param("torch", marks=torch_only), pytest.param("keras", marks=keras_only),
                                  "reference"])
def test_default_init(pid, side):
    if pid == "init-conv":
        c = initializers.CONV
        fan_in, fan_out = c["in"] * c["k"] ** 2, c["out"] * c["k"] ** 2
    else:
        fan_in, fan_out = initializers.DENSE["in"], initializers.DENSE["out"]
    e = ev(pid, side)
    if side == "keras":
        check_uniform(pid, side, "kernel", e["weight"], math.sqrt(6 / (fan_in + fan_out)))
        check(pid, side, "bias max |b|", e["bias"]["max_abs"], 0.0, "zeros")
    else:
        check_uniform(pid, side, "weight", e["weight"], 1 / math.sqrt(fan_in))
        check_uniform(pid, side, "bias", e["bias"], 1 / math.sqrt(fan_in))
