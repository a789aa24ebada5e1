"""`cnnref audit`: every probe run, and the convention it found pinned by an independent formula.

Each test recomputes what the installed framework should show from a small formula of its own
(the tie winner by a first-maximum scan, Adam's step by the update rule, Keras' 'same' padding
from ceil(n/s)) and checks the probe's numbers. A framework upgrade that changes a convention turns
the test red with a message naming the probe, the side and the rule that no longer holds.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import os
import signal
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest

import reference as ref
from comparisons import audit
from comparisons.audit import (
    PROBES,
    activations,
    base,
    batchnorm,
    command,
    initializers,
    isolation,
    layout,
    losses,
    optimizers,
    padding,
    pooling,
    pooling_global,
    report,
)

torch_only, keras_only = pytest.mark.torch, pytest.mark.keras


@pytest.fixture(autouse=True)
def _frameworks_present(request):
    """A test marked torch/keras skips (with the reason) when that framework is missing."""
    for framework in ("torch", "keras"):
        if request.node.get_closest_marker(framework):
            request.getfixturevalue(f"{framework}_adapter")


@functools.cache
def finding(pid: str) -> audit.Finding:
    """Each probe runs once per test process, only if a test asks for it."""
    return audit.run_probe(PROBES[pid])


def ev(pid: str, side: str) -> dict:
    e = getattr(finding(pid), side)
    assert "skipped" not in e, f"{pid}: the {side} side was skipped: {e['skipped']}"
    return e


def reported(pid: str, side: str, e: dict, keys: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """``keys[side]``, after checking that the probe reported every one of them (a renamed or dropped
    key must fail, not leave a loop with nothing to check)."""
    missing = set(keys[side]) - set(e)
    assert not missing, f"{pid} [{side}] reports {sorted(e)}: {sorted(missing)} missing"
    return keys[side]


def check(pid: str, side: str, what: str, actual, expected, rule: str, rtol: float = 0.0, atol: float = 0.0) -> None:
    """Equal (or close with ``rtol``/``atol``, same shape: no broadcasting); the message says which convention
    changed."""
    if rtol or atol:
        assert np.shape(actual) == np.shape(expected), (f"{pid} [{side}]: {what} has shape {np.shape(actual)}, "
                                                        f"expected {np.shape(expected)}")
        ok = np.allclose(np.asarray(actual, float), np.asarray(expected, float), rtol=rtol, atol=atol)
    else:
        ok = actual == expected
    versions = ", ".join(f"{k} {v}" for k, v in base.versions().items())
    assert ok, (f"{pid} [{side}]: {what} is {actual}, expected {expected} by the rule '{rule}' ({versions}). "
                "The installed version changed this convention: update the probe's advice.")


# -- convolution padding -------------------------------------------------------
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
    assert f.differs and f.reference_follows == "torch"
    assert f.comparison["max_abs_diff_keras_same_vs_torch_symmetric"] > 0.1, "shifted windows gave equal outputs"


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


# -- layouts -----------------------------------------------------------------------
F32_TOL = 1e-5  # float32 conv/matmul of O(1) values with <= 27 terms, against float64


@pytest.mark.torch
@pytest.mark.keras
def test_layout_conv_kernel():
    pid, c = "layout-conv-kernel", layout.CONV
    check(pid, "torch", "kernel shape", ev(pid, "torch")["kernel_shape"], [c["f"], c["c"], c["k"], c["k"]], "OIHW")
    check(pid, "keras", "kernel shape", ev(pid, "keras")["kernel_shape"], [c["k"], c["k"], c["c"], c["f"]], "HWIO")
    assert ev(pid, "torch")["max_err_as_is"] < F32_TOL
    assert ev(pid, "keras")["max_err_oihw_to_hwio"] < F32_TOL
    assert ev(pid, "keras")["max_err_naive_reshape"] > 0.1, "a naive reshape should scramble the taps"
    assert finding(pid).reference_follows == "torch"


@pytest.mark.torch
@pytest.mark.keras
def test_layout_dense_weight():
    pid, d = "layout-dense-weight", layout.DENSE
    check(pid, "torch", "weight shape", ev(pid, "torch")["weight_shape"], [d["out"], d["in"]], "(out, in)")
    check(pid, "keras", "weight shape", ev(pid, "keras")["weight_shape"], [d["in"], d["out"]], "(in, out)")
    assert ev(pid, "torch")["max_err_transpose"] < F32_TOL and ev(pid, "keras")["max_err_as_is"] < F32_TOL
    assert ev(pid, "torch")["max_err_naive_reshape"] > 0.1
    assert finding(pid).reference_follows == "keras"


@pytest.mark.torch
@pytest.mark.keras
def test_layout_flatten_order():
    pid, c, hw = "layout-flatten-order", layout.FLAT["c"], layout.FLAT["hw"]
    chw = [ci * hw * hw + h * hw + w for ci in range(c) for h in range(hw) for w in range(hw)]
    hwc = [ci * hw * hw + h * hw + w for h in range(hw) for w in range(hw) for ci in range(c)]
    check(pid, "torch", "flatten order", ev(pid, "torch")["flatten_order_chw_index"], chw, "C, H, W")
    check(pid, "keras", "flatten order", ev(pid, "keras")["flatten_order_chw_index"], hwc, "H, W, C")
    check(pid, "reference", "flatten order", ev(pid, "reference")["flatten_order_chw_index"], chw, "C, H, W")
    assert ev(pid, "keras")["max_err_dense_rows_chw_to_hwc"] < F32_TOL
    assert ev(pid, "keras")["max_err_naive_copy"] > 0.1


@pytest.mark.torch
@pytest.mark.keras
def test_layout_channels_last():
    pid = "layout-channels-last"
    check(pid, "torch", "output shape", ev(pid, "torch")["out_shape_for_nchw_input"], [1, 4, 8 - 2, 8 - 2], "NCHW")
    # Keras reads (1, 3, 8, 8) as H=3, W=8, C=8: a valid 3x3 conv gives (1, 3-2, 8-2, 4)
    check(pid, "keras", "output shape", ev(pid, "keras")["out_shape_for_nchw_input"], [1, 3 - 2, 8 - 2, 4], "NHWC")
    check(pid, "keras", "data format", ev(pid, "keras")["data_format"], "channels_last", "Keras default")


# -- pooling ----------------------------------------------------------------------
def first_max_winners(x: np.ndarray, k: int = 2) -> list[list[int]]:
    """The first maximum of each non-overlapping k x k window, scanning rows then columns."""
    winners = []
    for i in range(0, x.shape[0], k):
        for j in range(0, x.shape[1], k):
            best, where = -math.inf, None
            for a in range(k):
                for b in range(k):
                    if x[i + a, j + b] > best:
                        best, where = x[i + a, j + b], a * k + b
            winners.append([where])
    return winners


def overlap_counts(hw: int, k: int, s: int) -> list[list[float]]:
    """Constant input: every window's first maximum is its top-left element."""
    counts = np.zeros((hw, hw))
    for i in range(0, hw - k + 1, s):
        for j in range(0, hw - k + 1, s):
            counts[i, j] += 1
    return counts.tolist()


@pytest.mark.parametrize("side,prefix", [pytest.param("torch", "", marks=torch_only),
                                         pytest.param("keras", "", marks=keras_only),
                                         ("reference", ""), ("reference", "im2col_")])
def test_maxpool_tie_gradient(side, prefix):
    pid, o = "maxpool-tie-gradient", pooling.OVERLAP
    e = ev(pid, side)
    check(pid, side, f"{prefix}tie winners", e[f"{prefix}winners"], first_max_winners(pooling.tie_input()[0, 0]),
          "gradient to the first maximum in row-major window order")
    check(pid, side, f"{prefix}overlap gradient counts", e[f"{prefix}overlap_grad_counts"],
          overlap_counts(o["hw"], o["k"], o["s"]), "each overlapping window sends its gradient to its first maximum")


@pytest.mark.parametrize("side", [pytest.param("torch", marks=torch_only), pytest.param("keras", marks=keras_only),
                                  "reference"])
def test_maxpool_padding_never_wins(side):
    pid = "maxpool-padding"
    e = ev(pid, side)
    check(pid, side, "output max", e["out_max"], float(pooling._negative_input().max()), "padding is -inf")
    check(pid, side, "output shape", e["out_shape"], [1, 1, 4, 4], "stride 1, padding 1 keeps 4x4")


def real_count(i: int, j: int, hw: int, k: int, p: int) -> int:
    """How many real (unpadded) inputs the k x k window at output (i, j) covers."""
    rows = min(i - p + k, hw) - max(i - p, 0)
    cols = min(j - p + k, hw) - max(j - p, 0)
    return rows * cols


@pytest.mark.torch
@pytest.mark.keras
def test_avgpool_padding_divisor():
    pid, hw, k = "avgpool-padding-divisor", pooling.AVG["hw"], pooling.AVG["k"]
    spots = {"corner": (0, 0), "edge": (0, 1), "centre": (1, 1)}
    real = {name: real_count(i, j, hw, k, 1) for name, (i, j) in spots.items()}
    full = dict.fromkeys(spots, k * k)
    check(pid, "torch", "divisor (default)", ev(pid, "torch")["count_include_pad=True"], full, "k*k always")
    check(pid, "torch", "divisor (exclude pad)", ev(pid, "torch")["count_include_pad=False"], real, "real inputs")
    check(pid, "keras", "divisor ('same')", ev(pid, "keras")["same"], real, "real inputs only")
    check(pid, "reference", "divisor", ev(pid, "reference")["padding=1"], full, "count_include_pad=True")


@pytest.mark.parametrize("side", [pytest.param("torch", marks=torch_only), pytest.param("keras", marks=keras_only),
                                  "reference"])
def test_pool_output_size(side):
    pid, e = "pool-output-size", ev("pool-output-size", side)
    floor = [(n - 2) // 2 + 1 for n in pooling.POOL_SIZES]
    ceil = [-(-(n - 2) // 2) + 1 for n in pooling.POOL_SIZES]
    expected = {"ceil_mode=False": floor, "valid": floor, "ceil_mode=True": ceil, "same": ceil}
    torch_keys = ("ceil_mode=False", "ceil_mode=True")
    for key in reported(pid, side, e, {"torch": torch_keys, "keras": ("valid", "same"), "reference": torch_keys}):
        check(pid, side, key, e[key], expected[key], "floor" if expected[key] is floor else "ceil")


def dilated_taps(n: int, k: int, s: int, p: int, d: int) -> list[list[int]]:
    """Per output position along one axis, the input indices its dilated window reads (floor output size)."""
    out = (n + 2 * p - d * (k - 1) - 1) // s + 1
    return [[i * s - p + a * d for a in range(k)] for i in range(out)]


@pytest.mark.torch
def test_maxpool_dilated_window_in_padding_torch():
    pid, d = "maxpool-dilated-window-in-padding", pooling.DILATED
    (_, _, h, w), (dh, dw) = d["shape"], d["dilation"]
    rows = dilated_taps(h, d["kernel_size"], d["stride"], d["padding"], dh)
    cols = dilated_taps(w, d["kernel_size"], d["stride"], d["padding"], dw)
    assert all(r < 0 or r >= h for taps in rows for r in taps), "the probe's geometry no longer hides the input"
    e = ev(pid, "torch")
    assert "crashed" not in e, f"{pid} [torch]: the forward crashed the child process: {e}"
    check(pid, "torch", "output", e["out"], [[-math.inf] * len(cols)] * len(rows), "every window is padding (-inf)")
    check(pid, "torch", "indices outside the plane", e["indices_out_of_range"], len(rows) * len(cols),
          "no window has an input cell to point at")
    assert all(i < 0 or i >= h * w for row in e["indices"] for i in row), e["indices"]


def test_maxpool_dilated_window_in_padding_reference():
    """reference/pool.py refuses a window whose taps along an axis all lie in the padding."""
    pid, e = "maxpool-dilated-window-in-padding", ev("maxpool-dilated-window-in-padding", "reference")
    check(pid, "reference", "exception", e.get("raises"), "ValueError", "a window entirely in the padding is refused")
    assert "padding" in e["message"] and "window" in e["message"], e["message"]
    assert finding(pid).reference_follows == "neither" and finding(pid).differs is None


@pytest.mark.parametrize("side", [pytest.param("torch", marks=torch_only), "reference"])
def test_adaptive_maxpool_gradient(side):
    pid, e = "adaptive-maxpool-gradient-keras", ev("adaptive-maxpool-gradient-keras", side)
    x = pooling_global.adaptive_input()
    check(pid, side, "forward", e["forward"], float(x.max()), "max of the map")
    check(pid, side, "gradients equal to the one-hot at the maximum", e["trials_equal_one_hot"], e["trials"],
          "d max / dx = 1 at the (unique) maximum, 0 elsewhere")
    check(pid, side, "largest error", e["largest_finite_error"], 0.0, "exact one-hot")


@pytest.mark.keras
def test_adaptive_maxpool_gradient_keras():
    """The forward is the max; the cause of the garbage gradient is pinned (a pooling window longer than the
    input, hence an empty pool whose gradient is uninitialised memory). The garbage itself varies from call
    to call and is sometimes absent, so its size is reported, not asserted."""
    pid, e = "adaptive-maxpool-gradient-keras", ev("adaptive-maxpool-gradient-keras", "keras")
    x = pooling_global.adaptive_input()
    check(pid, "keras", "float64 forward", e["forward"], float(x.max()), "max of the map")
    small, big = e["window_rows_small_big"]
    check(pid, "keras", "largest pooling window", big > e["input_rows"], True,
          "one window longer than the input (an empty pool): Keras fixed it if this fails")
    assert 0 <= e["trials_equal_one_hot"] <= e["trials_finite"] <= e["trials"], e
    if e["trials_equal_one_hot"] == e["trials"]:
        assert e["largest_finite_error"] == 0.0 and e["nonfinite_values"] == 0, e
    if "crashed" in e:
        check(pid, "keras", "crash", (e["crashed"], e["crashed_before"]), ("SIGFPE", "float32 forward"),
              "only the float32 forward (oneDNN) dies")
    else:
        check(pid, "keras", "float32 forward", e["float32_forward"], float(np.float32(x.max())), "max of the map")
    broken = e["trials_equal_one_hot"] < e["trials"] or "crashed" in e
    assert finding(pid).differs == broken and finding(pid).reference_follows == ("torch" if broken else "both")


def split_ties(x: np.ndarray) -> np.ndarray:
    """The gradient of max(x) split evenly among all cells equal to the maximum."""
    tied = x == x.max()
    return tied / tied.sum()


def first_max(x: np.ndarray) -> np.ndarray:
    """The gradient of max(x) given wholly to the first maximum in row-major order (a scan)."""
    g, best, where = np.zeros_like(x), -math.inf, None
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            if x[i, j] > best:
                best, where = x[i, j], (i, j)
    g[where] = 1.0
    return g


@pytest.mark.parametrize("side", [pytest.param("torch", marks=torch_only), pytest.param("keras", marks=keras_only),
                                  "reference"])
def test_global_maxpool_ties(side):
    pid, x = "global-maxpool-ties", pooling_global.tie_plane()[0, 0]
    rules = {"layer_grad": {"torch": first_max, "keras": split_ties, "reference": first_max}[side],
             "max_pool2d_grad": first_max, "adaptive_max_pool_grad": first_max, "amax_grad": split_ties,
             "reduce_max_grad": split_ties}
    e = ev(pid, side)
    for key in reported(pid, side, e, {"torch": ("layer_grad", "max_pool2d_grad", "amax_grad"),
                                       "keras": ("layer_grad", "reduce_max_grad"),
                                       "reference": ("layer_grad", "adaptive_max_pool_grad")}):
        rule = rules[key]
        check(pid, side, key, e[key], rule(x).tolist(), rule.__doc__.split(" (")[0], rtol=1e-15)


@pytest.mark.torch
@pytest.mark.keras
def test_global_maxpool_ties_verdict():
    f = finding("global-maxpool-ties")
    assert f.differs and f.reference_follows == "torch"


# -- losses -------------------------------------------------------------------------
# Framework losses are float32: a sum of ten exponentials rounds to a few float32 eps (rtol 1e-6), and a
# loss near 0 (-log p, p near 1) resolves eps32 / 2 = 6e-8 absolute; Keras' clip at 1 - 1e-7 moves such a
# loss by 1.2e-7, which the absolute bound still catches (measured errors: 3.8e-8 absolute, 2.6e-8
# relative). The reference side is float64 and agrees to rounding (measured 2.5e-17 absolute).
LOSS_TOL = {"rtol": 1e-6, "atol": 6e-8}
LOSS_TOL_FLOAT64 = {"rtol": 1e-12, "atol": 1e-15}


def loss_tol(side: str) -> dict[str, float]:
    return LOSS_TOL_FLOAT64 if side == "reference" else LOSS_TOL


def softmax64(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def ce_on_logits(label: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-row -log softmax(z)[label] and the norm of its gradient softmax - onehot, in float64."""
    z = losses.logits().astype(np.float64)
    p = softmax64(z)
    onehot = np.eye(losses.K)[label]
    return -np.log(p[:, label]), np.linalg.norm(p - onehot, axis=1)


@pytest.mark.parametrize("side", [pytest.param("torch", marks=torch_only), "reference"])
def test_loss_on_logits_is_not_clipped(side):
    pid = "loss-cce-probability-clipping"
    for name, label in (("right", 0), ("wrong", 1)):
        loss, grad = ce_on_logits(label)
        check(pid, side, f"loss ({name} label)", ev(pid, side)[f"loss_{name}"], loss, "-log softmax",
              **loss_tol(side))
        check(pid, side, f"grad norm ({name})", ev(pid, side)[f"grad_norm_{name}"], grad, "softmax - onehot",
              **loss_tol(side))


@pytest.mark.keras
def test_keras_clips_probabilities():
    pid, e = "loss-cce-probability-clipping", ev("loss-cce-probability-clipping", "keras")
    eps = e["epsilon"]
    import keras

    check(pid, "keras", "epsilon", eps, keras.config.epsilon(), "keras.config.epsilon()")
    lo, hi = eps, float(np.float32(1.0) - np.float32(eps))  # the clip bounds as float32 holds them
    p = softmax64(losses.logits().astype(np.float64))
    for name, label in (("right", 0), ("wrong", 1)):
        q = p[:, label]
        clipped = np.clip(q, lo, hi)
        check(pid, "keras", f"loss ({name} label)", e[f"loss_{name}"], -np.log(clipped),
              "-log(clip(p, eps, 1 - eps))", **LOSS_TOL)
        # where the clip is active the loss is flat: no gradient reaches the logits
        inside = (q > lo) & (q < hi)
        _, grad = ce_on_logits(label)
        check(pid, "keras", f"grad norm ({name})", e[f"grad_norm_{name}"], np.where(inside, grad, 0.0),
              "zero gradient where clipped", **LOSS_TOL)
    assert finding(pid).differs


@pytest.mark.parametrize("side", [pytest.param("torch", marks=torch_only), pytest.param("keras", marks=keras_only)])
def test_loss_from_logits_agrees(side):
    pid = "loss-cce-from-logits"
    for name, label in (("right", 0), ("wrong", 1)):
        loss, grad = ce_on_logits(label)
        check(pid, side, f"loss ({name})", ev(pid, side)[f"loss_{name}"], loss, "-log softmax", **loss_tol(side))
        check(pid, side, f"grad ({name})", ev(pid, side)[f"grad_norm_{name}"], grad, "softmax - onehot",
              **loss_tol(side))


def smoothed_cross_entropy(ls: float) -> dict:
    """Mean of -sum_c q_c log softmax(z)_c with q = (1 - ls) onehot + ls/C, and the norm of its gradient
    (softmax - q) / N, in float64."""
    z, y = losses.smoothing_batch()
    n, c = z.shape
    q = (1 - ls) * np.eye(c)[y] + ls / c
    p = softmax64(z)
    return {"loss": float(np.mean(-(q * np.log(p)).sum(axis=1))), "grad_norm": float(np.linalg.norm((p - q) / n))}


@pytest.mark.parametrize("side", [pytest.param("torch", marks=torch_only), pytest.param("keras", marks=keras_only),
                                  "reference"])
def test_cross_entropy_label_smoothing(side):
    pid, e = "cross-entropy-label-smoothing", ev("cross-entropy-label-smoothing", side)
    for ls in losses.SMOOTH["label_smoothing"]:
        expected = smoothed_cross_entropy(ls)
        for key in ("loss", "grad_norm"):  # float64 sums of 5 terms: agree to ~1e-15
            check(pid, side, f"{key} (ls={ls})", e[f"ls={ls}"][key], expected[key], "y*(1 - ls) + ls/C", rtol=1e-12)


@pytest.mark.keras
def test_sparse_cross_entropy_has_no_label_smoothing():
    import keras

    pid = "cross-entropy-label-smoothing"
    with pytest.raises(TypeError, match="label_smoothing"):
        keras.losses.SparseCategoricalCrossentropy(label_smoothing=0.1)
    check(pid, "keras", "sparse_has_label_smoothing", ev(pid, "keras")["sparse_has_label_smoothing"], False,
          "SparseCategoricalCrossentropy(label_smoothing=...) is a TypeError")


# -- optimizers ---------------------------------------------------------------------
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


# -- batch norm -------------------------------------------------------------------------
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
    assert finding(pid).differs and finding(pid).reference_follows == "torch"


@pytest.mark.torch
@pytest.mark.keras
def test_batchnorm_running_variance():
    pid, n = "batchnorm-running-variance", int(np.prod(batchnorm.SHAPE))
    check(pid, "torch", "running var / biased var", ev(pid, "torch")["running_var_used_over_biased_var"], n / (n - 1),
          "unbiased variance (n/(n-1)) in running_var", rtol=1e-12)  # float64 probe: rounding (measured 2e-16)
    check(pid, "keras", "moving var / biased var", ev(pid, "keras")["running_var_used_over_biased_var"], 1.0,
          "biased variance in moving_variance", rtol=1e-12)
    assert finding(pid).differs and finding(pid).reference_follows == "torch"


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
    assert finding(pid).differs and finding(pid).reference_follows == "torch"


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


# -- activations and dropout -------------------------------------------------------------
@pytest.mark.parametrize("side", [pytest.param("torch", marks=torch_only), pytest.param("keras", marks=keras_only),
                                  "reference"])
def test_leaky_relu_slope(side):
    """PyTorch and the reference: 0.01 applied in float64; Keras: 0.3, and any slope rounded to float32."""
    pid, e, ported = "leaky-relu-slope", ev("leaky-relu-slope", side), activations.PORTED_SLOPE
    if side == "keras":
        import keras

        default = keras.layers.LeakyReLU().negative_slope
        expected, rule = (float(np.float32(default)), float(np.float32(ported))), "slope rounded to float32"
    else:
        default = inspect.signature(ref.LeakyReLU).parameters["negative_slope"].default
        expected, rule = (default, ported), "slope applied in float64"
    check(pid, side, "default slope attribute", e["default_attr"], default, "the layer's default")
    check(pid, side, "default slope (float64 layer)", e["default_slope"], expected[0], rule)
    check(pid, side, "default gradient slope", e["default_grad_slope"], expected[0], rule)
    check(pid, side, f"slope with negative_slope={ported}", e[f"slope_with_{ported}"], expected[1], rule)
    check(pid, side, "its relative error", e["its_relative_error"], (expected[1] - ported) / ported, rule)


@pytest.mark.torch
@pytest.mark.keras
def test_leaky_relu_defaults_differ():
    f = finding("leaky-relu-slope")
    assert f.differs and f.reference_follows == "torch"
    assert f.keras["default_attr"] != f.torch["default_attr"]


@pytest.mark.parametrize("side", [pytest.param("torch", marks=torch_only), pytest.param("keras", marks=keras_only),
                                  "reference"])
def test_dropout_scaling(side):
    """Kept elements are x * float32(1/(1-p)): at most 1 ulp from x/(1-p), as often as over the whole input."""
    pid, e, p, x = "dropout-scaling", ev("dropout-scaling", side), activations.DROPOUT["p"], activations.dropout_input()
    check(pid, side, "eval mode", e["eval_is_identity"], True, "inverted dropout: eval is the identity")
    check(pid, side, "kept outputs", e["equals_x_times_float32_scale"], True, "x * float32(1/(1-p))")
    check(pid, side, "output dtype", e["output_dtype"], "float32", "keeps the input's dtype")
    by_scale = (x * np.float32(1 / (1 - p))).astype(np.float64)
    by_division = (x.astype(np.float64) / (1 - p)).astype(np.float32).astype(np.float64)
    spacing = np.spacing(by_division.astype(np.float32)).astype(np.float64)
    check(pid, side, "max ulps from x/(1-p)", e["max_ulps_from_x_over_keep"],
          int(np.max(np.abs(by_scale - by_division) / spacing)), "two roundings: at most 1 ulp")
    # the kept elements are a random ~90% subset: their off-by-an-ulp fraction matches the whole input's
    # within 6 binomial standard deviations
    whole = float(np.mean(by_scale != by_division))
    sigma = math.sqrt(whole * (1 - whole) / (len(x) * (1 - p)))
    check(pid, side, "fraction 1 ulp off", e["fraction_off_by_an_ulp"], whole, "as over the whole input",
          atol=6 * sigma)
    keep_sigma = math.sqrt(p * (1 - p) / len(x))
    check(pid, side, "kept fraction", e["kept_fraction"], 1 - p, "keep with probability 1 - p", atol=6 * keep_sigma)


# -- initialisation ----------------------------------------------------------------------
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


# -- numerics --------------------------------------------------------------------------
@pytest.mark.parametrize("side", [pytest.param("torch", marks=torch_only), pytest.param("keras", marks=keras_only),
                                  "reference"])
def test_relu_grad_at_zero(side):
    pid = "relu-grad-at-zero"
    expected = (np.array(ev(pid, side)["x"]) > 0).astype(float).tolist()
    check(pid, side, "gradient", ev(pid, side)["grad"], expected, "d relu/dx = 1 if x > 0 else 0 (0 at 0)")


@pytest.mark.torch
@pytest.mark.keras
def test_float_dtypes():
    import torch

    pid, t, k = "float-dtypes", ev("float-dtypes", "torch"), ev("float-dtypes", "keras")
    default = str(torch.get_default_dtype()).removeprefix("torch.")
    check(pid, "torch", "parameter dtype", t["parameter_dtype"], default, "torch.get_default_dtype()")
    check(pid, "torch", "from_numpy(float64)", t["tensor_from_float64_numpy"], "float64", "keeps the numpy dtype")
    assert t["dense_on_float64_input"].startswith("RuntimeError"), f"{pid} [torch]: {t['dense_on_float64_input']}"
    check(pid, "keras", "parameter dtype", k["parameter_dtype"], k["floatx"], "keras.config.floatx()")
    check(pid, "keras", "float64 batch through Dense", k["dense_on_float64_input"], k["floatx"], "cast to floatx")
    check(pid, "reference", "parameter dtype", ev(pid, "reference")["parameter_dtype"], "float64", "float64 default")


@pytest.mark.parametrize("side", [pytest.param("torch", marks=torch_only), pytest.param("keras", marks=keras_only),
                                  "reference"])
def test_determinism(side):
    pid = "determinism"
    for key in ("forward_spread", "dx_spread", "seeded_init_spread"):
        check(pid, side, key, ev(pid, side)[key], 0.0, "bitwise repeatable on CPU")


# -- the registry, the runner and the report ------------------------------------------------
TESTED = {
    "conv-same-even-kernel", "conv-same-stride", "conv-same-strided-torch", "conv-output-rounding",
    "layout-conv-kernel", "layout-dense-weight", "layout-flatten-order", "layout-channels-last",
    "maxpool-tie-gradient", "maxpool-padding", "avgpool-padding-divisor", "pool-output-size",
    "loss-cce-probability-clipping", "loss-cce-from-logits", "adam-epsilon", "sgd-momentum", "sgd-weight-decay",
    "batchnorm-momentum-epsilon", "batchnorm-running-variance", "batchnorm-default-mode", "init-conv", "init-dense",
    "relu-grad-at-zero", "float-dtypes", "determinism", "leaky-relu-slope", "maxpool-dilated-window-in-padding",
    "adaptive-maxpool-gradient-keras", "global-maxpool-ties", "cross-entropy-label-smoothing", "dropout-scaling",
}


def test_every_probe_has_a_test_and_there_are_enough():
    assert set(PROBES) == TESTED, f"untested: {set(PROBES) - TESTED}, unknown: {TESTED - set(PROBES)}"
    assert len(PROBES) >= 15
    assert {p.area for p in PROBES.values()} == set(audit.AREAS)


def test_a_missing_side_is_reported_as_skipped():
    from comparisons.frameworks import FrameworkUnavailable

    def missing():
        raise FrameworkUnavailable("keras is not installed here (test)")

    p = base.Probe("fake", "fake", "numerics", "q", "a", torch=lambda: {"v": 1}, keras=missing, reference=None,
                   verdict=lambda t, k, r: (True, base.follows(r, t, k, "v")))
    f = base.run_probe(p)
    assert f.keras == {"skipped": "keras is not installed here (test)"}
    assert f.differs is None and f.reference_follows == base.NOT_IMPLEMENTED
    assert "Keras skipped" in report.summary_table([f])
    assert "*Keras: skipped (keras is not installed here (test)).*" in report.markdown([f])


def crash_after_one_step():
    """A child-process side for test_run_isolated_reports_a_crash: one line of evidence, then SIGABRT."""
    yield isolation.step("abort", before=1)
    os.abort()


def test_run_isolated_reports_a_crash(monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[2])  # the child imports this module as tests.comparisons...
    e = isolation.run_isolated(crash_after_one_step)
    assert e == {"before": 1, "crashed": signal.Signals.SIGABRT.name, "crashed_before": "abort"}


def test_command_writes_markdown_and_json(tmp_path, capsys):
    ids = ["relu-grad-at-zero", "conv-output-rounding"]
    args = Namespace(out=tmp_path / "reports", json=tmp_path / "out.json", only=ids, list=False)
    assert command.run(args) == 0
    printed = capsys.readouterr().out
    data = json.loads((tmp_path / "out.json").read_text())
    assert [d["id"] for d in data] == ["conv-output-rounding", "relu-grad-at-zero"]
    for d in data:
        assert {"id", "title", "area", "torch", "keras", "reference", "differs", "advice"} <= set(d)
        assert d["id"] in printed
    md = (tmp_path / "reports" / "audit.md").read_text()
    for d in data:
        assert f"(`{d['id']}`)" in md and d["advice"] in md
    assert f"numpy {np.__version__}" in md
