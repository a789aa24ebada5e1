"""Pooling probes (audit/pooling.py): tie gradients, padding in max and average pooling, output sizes, a dilated
window in the padding."""

from __future__ import annotations

import math

import numpy as np
import pytest

from comparisons.audit import pooling

from .helpers import check, ev, keras_only, reported, torch_only, verdict_is


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
    verdict_is(pid, None, [])
