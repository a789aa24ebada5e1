"""Convolution padding probes (audit/padding.py): Keras' 'same' from ceil(n/s), symmetric padding, output sizes."""

from __future__ import annotations

import numpy as np
import pytest

from comparisons.audit import padding

from .helpers import check, ev, finding, keras_only, reported, torch_only, verdict_is


def keras_same(n: int, k: int, s: int) -> tuple[int, list[int]]:
    """Keras/TensorFlow 'same': out = ceil(n/s), total pad = max((out-1)*s + k - n, 0), less on top."""
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return out, [total // 2, total - total // 2] * 2


def symmetric(n: int, k: int, s: int, p: int) -> tuple[int, list[int]]:
    """Symmetric padding p; the bottom padding counted is only what the last window reaches."""
    out = (n + 2 * p - k) // s + 1
    return out, [p, (out - 1) * s + k - n - p] * 2


def test_infer_padding_reads_back_np_pad():
    x = padding.shift_input(5)[0, 0]
    xp = np.pad(x, ((2, 0), (1, 0)))
    out = xp[::2, ::2][:3, :3]  # what a 3x3 shift kernel at stride 2 reads with top 2, left 1
    assert padding.infer_padding(out, x, 3, 2) == [2, (3 - 1) * 2 + 3 - 5 - 2, 1, (3 - 1) * 2 + 3 - 5 - 1]


@pytest.mark.parametrize("side", [pytest.param("torch", marks=torch_only), pytest.param("keras", marks=keras_only)])
def test_conv_same_even_kernel(side):
    pid, n = "conv-same-even-kernel", padding.EVEN["n"]
    for k in padding.EVEN["kernels"]:
        out, pad = keras_same(n, k, 1)
        got = ev(pid, side)[f"k{k}"]
        check(pid, side, f"k={k} padding", got["pad"], pad, "extra row/column at the bottom/right")
        check(pid, side, f"k={k} output size", got["out_size"], out, "'same' keeps the size at stride 1")


def test_conv_same_even_kernel_reference():
    pid, n = "conv-same-even-kernel", padding.EVEN["n"]
    for k in padding.EVEN["kernels"]:
        got = ev(pid, "reference")[f"k{k}"]
        out, pad = keras_same(n, k, 1)
        check(pid, "reference", f"k={k} 'same' padding", got["pad"], pad, "extra row/column at the bottom/right")
        check(pid, "reference", f"k={k} 'same' size", got["out_size"], out, "'same' keeps the size at stride 1")
        out, pad = symmetric(n, k, 1, k // 2)
        check(pid, "reference", f"k={k} padding=k//2", got["symmetric_k//2_pad"], pad, "symmetric padding")
        check(pid, "reference", f"k={k} padding=k//2 size", got["symmetric_k//2_out_size"], out, "n + 2p - k + 1")


@pytest.mark.torch
@pytest.mark.keras
def test_conv_same_stride():
    pid, (n, k, s) = "conv-same-stride", (padding.STRIDED[key] for key in ("n", "k", "s"))
    out, pad = keras_same(n, k, s)
    check(pid, "keras", "padding", ev(pid, "keras")["pad"], pad, "Keras 'same' from ceil(n/s)")
    check(pid, "keras", "output size", ev(pid, "keras")["out_size"], out, "ceil(n/s)")
    for side in ("torch", "reference"):
        sym_out, sym_pad = symmetric(n, k, s, k // 2)
        check(pid, side, "padding", ev(pid, side)["pad"], sym_pad, "symmetric padding k//2")
        check(pid, side, "output size", ev(pid, side)["out_size"], sym_out, "floor((n + 2p - k)/s) + 1")
    f = finding(pid)
    verdict_is(pid, True, ["torch"])
    assert f.comparison["max_abs_diff_torch_vs_keras"] > 0.1, "shifted windows gave equal outputs"


@pytest.mark.torch
@pytest.mark.keras
def test_conv_same_strided_torch():
    pid = "conv-same-strided-torch"
    t, k = ev(pid, "torch"), ev(pid, "keras")
    check(pid, "torch", "padding='same' with stride 2 accepted", t["accepted"], False, "PyTorch refuses it")
    assert "strided" in t["error"], t["error"]
    check(pid, "keras", "output size", k["out_size"], keras_same(6, 3, 2)[0], "ceil(n/s)")
    check(pid, "reference", "accepted", ev(pid, "reference")["accepted"], False, "integer padding only")


def rounding_expected(n: int, k: int, s: int) -> dict:
    valid = (n - k) // s + 1
    return {"valid": valid, "same": -(-n // s), "padding_k//2": (n + 2 * (k // 2) - k) // s + 1,
            "unread_rows_valid": n - ((valid - 1) * s + k)}


@pytest.mark.parametrize("side", [pytest.param("torch", marks=torch_only), pytest.param("keras", marks=keras_only),
                                  "reference"])
def test_conv_output_rounding(side):
    pid, k, s = "conv-output-rounding", padding.ROUNDING["k"], padding.ROUNDING["s"]
    e = ev(pid, side)
    keys = reported(pid, side, e, {"torch": ("valid", "padding_k//2", "unread_rows_valid"),
                                   "keras": ("valid", "same", "unread_rows_valid"),
                                   "reference": ("valid", "padding_k//2", "unread_rows_valid")})
    for key in keys:
        expected = [rounding_expected(n, k, s)[key] for n in padding.ROUNDING["sizes"]]
        check(pid, side, key, e[key], expected, f"{key} size arithmetic")
