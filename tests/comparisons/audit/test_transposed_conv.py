"""Transposed-convolution probes (audit/transposed_conv.py): output sizes and crops, kernel layout and orientation."""

from __future__ import annotations

import numpy as np
import pytest

from comparisons.audit import transposed_conv as tc

from .helpers import check, ev, finding

pytestmark = [pytest.mark.torch, pytest.mark.keras, pytest.mark.jax]


def test_full_transpose_is_the_input_gradient_of_a_convolution():
    """The probe's yardstick: <conv(y, w), x> = <y, full_transpose(x, w)> for every y (the adjoint)."""
    rng = np.random.default_rng(0)
    x, w, s = rng.standard_normal((1, 2, 3, 3)), rng.standard_normal((2, 3, 2, 3)), 2
    full = tc.full_transpose(x, w, s)
    y = rng.standard_normal(full.shape)
    conv = np.zeros_like(x)  # valid correlation of y with w, stride s: (1, 2, 3, 3)
    for i in range(3):
        for j in range(3):
            conv[0, :, i, j] = np.einsum("fab,cfab->c", y[0, :, i * s:i * s + 2, j * s:j * s + 3], w)
    assert np.isclose((conv * x).sum(), (y * full).sum(), rtol=1e-12)


def expected_crops(side: str) -> dict:
    """Per config, ``(out_size, [top, bottom] crop)`` by each convention's formula, from the probe's sizes."""
    n, s, found = tc.CROP["n"], tc.CROP["s"], {}
    for name, (k, mode, op) in tc.CONFIGS.items():
        full = (n - 1) * s + k
        if side in ("torch", "reference"):
            p, op_ = tc.torch_arguments(k, mode, op)
            found[name] = (full - 2 * p + op_, [p, p - op_])
        elif mode == "same":  # Keras/Flax: n*s rows, the odd extra row cut at the bottom
            top = (k - s) // 2
            found[name] = (n * s, [top, (k - s) - top])
        elif side == "keras" or not op:  # 'valid': n*s + max(k - s, 0) rows, then output_padding
            out = n * s + max(k - s, 0) + (op or 0)
            found[name] = (out, [0, full - out])
    return found


@pytest.mark.parametrize("side", ["torch", "keras", "jax", "reference"])
def test_conv_transpose_padding(side):
    pid, e = "conv-transpose-padding", ev("conv-transpose-padding", side)
    expected = expected_crops(side)
    if side == "jax":  # explicit padding pairs give PyTorch's crops
        torch_crops = expected_crops("torch")
        for name, (size, crop) in torch_crops.items():
            got = e[tc.EXPLICIT][name]
            check(pid, side, f"{name} with explicit pairs", (got["out_size"], got["crop"]), (size, crop * 2),
                  "pairs (k-1-p, k-1-p+output_padding) pad the dilated input as PyTorch crops the full output")
        e = {k: v for k, v in e.items() if k != tc.EXPLICIT}
    assert set(e) == set(expected), (side, sorted(e), sorted(expected))
    for name, (size, crop) in expected.items():
        check(pid, side, f"{name}: output size", e[name]["out_size"], size, "the convention's size formula")
        check(pid, side, f"{name}: crop", e[name]["crop"], crop * 2, "the convention's crop, the same on both axes")
    f = finding(pid)
    assert (f.differs, f.groups, f.reference_follows) == (True, [["torch"], ["keras", "jax"]], ["torch"]), f


def test_conv_transpose_kernel():
    pid = "conv-transpose-kernel"
    layouts = {"torch": ["C_in", "C_out", "kh", "kw"], "keras": ["kh", "kw", "C_out", "C_in"],
               "jax": ["kh", "kw", "C_in", "C_out"], "reference": ["C_in", "C_out", "kh", "kw"]}
    for side, layout in layouts.items():
        e = ev(pid, side)
        check(pid, side, "kernel layout", e["layout"], layout, "the framework's kernel axes")
        shape = [dict(C_in=tc.KERNEL["c_in"], C_out=tc.KERNEL["c_out"], kh=tc.KERNEL["kh"], kw=tc.KERNEL["kw"])[a]
                 for a in layout]
        check(pid, side, "kernel shape", e["kernel_shape"], shape, "the layout's sizes")
        check(pid, side, "orientation", e["orientation"], "flipped (kh and kw reversed)" if side == "jax" else
              "as PyTorch", "the gradient of a convolution (Flax by default: a correlation of the dilated input)")
    flagged = ev(pid, "jax")["transpose_kernel=True"]
    check(pid, "jax", "transpose_kernel=True", (flagged["layout"], flagged["orientation"]),
          (layouts["keras"], "as PyTorch"), "transpose_kernel flips the kernel and swaps its channel axes")
    f = finding(pid)
    assert (f.differs, f.groups, f.reference_follows) == (True, [["torch", "keras"], ["jax"]], ["torch", "keras"]), f
