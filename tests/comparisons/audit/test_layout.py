"""Layout probes (audit/layout.py): kernel and weight layouts, Flatten order, channels-last inputs."""

from __future__ import annotations

import pytest

from comparisons.audit import layout

from .helpers import check, ev, finding

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
    assert finding(pid).reference_follows == ["torch"]


@pytest.mark.torch
@pytest.mark.keras
def test_layout_dense_weight():
    pid, d = "layout-dense-weight", layout.DENSE
    check(pid, "torch", "weight shape", ev(pid, "torch")["weight_shape"], [d["out"], d["in"]], "(out, in)")
    check(pid, "keras", "weight shape", ev(pid, "keras")["weight_shape"], [d["in"], d["out"]], "(in, out)")
    assert ev(pid, "torch")["max_err_transpose"] < F32_TOL and ev(pid, "keras")["max_err_as_is"] < F32_TOL
    assert ev(pid, "torch")["max_err_naive_reshape"] > 0.1
    assert finding(pid).reference_follows == ["keras"]


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
