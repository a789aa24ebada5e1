"""Resizing probes (audit/resizing.py): nearest rounding, bilinear sample positions, antialiasing."""

from __future__ import annotations

import numpy as np
import pytest

from comparisons.audit import resizing

from .helpers import check, ev, finding

pytestmark = [pytest.mark.torch, pytest.mark.keras, pytest.mark.jax]


def floor_rule(n: int, m: int, offset: float) -> list[int]:
    """``min(floor((o + offset) * n / m), n - 1)`` for each output ``o``, in exact integer arithmetic."""
    return [min(int((2 * o + 2 * offset) * n // (2 * m)), n - 1) for o in range(m)]


def test_resize_nearest():
    pid, cases = "resize-nearest", resizing.NEAREST
    legacy = {resizing.case(n, m): floor_rule(n, m, 0) for n, m in cases}
    centre = {resizing.case(n, m): floor_rule(n, m, 0.5) for n, m in cases}
    for side, mode, expected in (("torch", "nearest", legacy), ("torch", "nearest-exact", centre),
                                 ("keras", "nearest", centre), ("jax", "nearest", centre),
                                 ("reference", "nearest", legacy), ("reference", "nearest-exact", centre)):
        check(pid, side, f"{mode} indices", ev(pid, side)[mode], expected, "floor((o + offset) * n/m)")
    check(pid, "keras", "UpSampling2D", ev(pid, "keras")["UpSampling2D(size=2)"], {"2->4": [0, 0, 1, 1]},
          "each cell repeated")
    assert legacy != centre  # the probe's sizes tell the rules apart
    f = finding(pid)
    assert (f.differs, f.groups, f.reference_follows) == (True, [["torch"], ["keras", "jax"]], ["torch"]), f


def test_resize_bilinear():
    pid = "resize-bilinear"
    for side in ("torch", "keras", "jax", "reference"):
        for n, m in resizing.BILINEAR:
            half = np.clip((np.arange(m) + 0.5) * n / m - 0.5, 0, n - 1)
            # float64 sides to rounding (measured 4e-16); Keras on TensorFlow places the samples in float32 (2e-7)
            check(pid, side, f"{n}->{m} positions", ev(pid, side)["bilinear"][f"{n}->{m}"]["positions"], half,
                  "half-pixel centres", atol=1e-6 if side == "keras" else 1e-12)
            if side in ("torch", "reference"):
                corners = np.arange(m) * (n - 1) / (m - 1)
                check(pid, side, f"{n}->{m} align_corners", ev(pid, side)["align_corners=True"][f"{n}->{m}"]
                      ["positions"], corners, "o * (n-1)/(m-1)", atol=1e-12)
    f = finding(pid)
    assert (f.differs, f.groups, f.reference_follows) == (False, [["torch", "keras", "jax"]],
                                                           ["torch", "keras", "jax"]), f


def test_resize_antialias():
    pid = "resize-antialias"
    torch_, keras_, jax_ = ev(pid, "torch"), ev(pid, "keras"), ev(pid, "jax")
    for n, m in resizing.DOWN:
        c = resizing.case(n, m)
        for side, e in (("torch", torch_["default"]), ("keras", keras_["default"]), ("jax", jax_["antialias=False"]),
                        ("reference", ev(pid, "reference")["default"])):
            check(pid, side, f"{c} taps without antialiasing", e[c]["taps"], [2] * m, "the two cells around the sample")
        assert min(jax_["default"][c]["taps"]) > 2, jax_["default"][c]
        # the evidence rounds the weights to 6 digits
        for side, e in (("torch", torch_["antialias=True"]), ("keras", keras_["antialias=True"])):
            check(pid, side, f"{c} antialiased weights", e[c]["weights_of_output_0"],
                  jax_["default"][c]["weights_of_output_0"], "JAX's default triangle filter", atol=2e-6)
    f = finding(pid)
    assert (f.differs, f.groups, f.reference_follows) == (True, [["torch", "keras"], ["jax"]], ["torch", "keras"]), f
