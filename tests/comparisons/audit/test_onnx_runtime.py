"""ONNX Runtime probes (audit/onnx_runtime.py): graph optimisations on a small CNN in float32, max pooling with
``ceil_mode=True`` after the export."""

from __future__ import annotations

import math

import pytest

from comparisons.audit import onnx_runtime
from tests.frameworks import framework_or_skip

from .helpers import check, ev, finding, require, verdict_is

pytestmark = [pytest.mark.onnxruntime, getattr(pytest.mark, "onnxruntime-optimized"), pytest.mark.torch]
ALL = ["torch", "onnxruntime", "onnxruntime-optimized"]  # registry order


@pytest.fixture(autouse=True, scope="module")
def _onnxruntime_present():
    framework_or_skip("onnxruntime")
    require("torch")


def test_optimisations_fold_batch_norm_and_stay_within_float32():
    pid = "onnxruntime-graph-optimizations"
    plain, optimized = ev(pid, "onnxruntime")["ops"], ev(pid, "onnxruntime-optimized")["ops"]
    check(pid, "onnxruntime", "BatchNormalization run", "BatchNormalization" in plain, True, "ORT_DISABLE_ALL runs "
          "the graph as exported")
    check(pid, "onnxruntime-optimized", "ops", [op for op in optimized if "BatchNormalization" in op or
                                                  op.endswith("Relu")], [],
          "ORT_ENABLE_ALL folds batch norm into the conv and fuses each ReLU into its conv")
    for side in [*ALL, "reference"]:
        e = ev(pid, side)
        check(pid, side, "within float32's tolerance", e["within_float32_tolerance"], True,
              "every side within 4 * eps32 * K of the float64 result")
        check(pid, side, "output shape", e["out_shape"], [4, 10], "(N, classes)")
    comparison = finding(pid).comparison
    diff = comparison["max_rel_diff_onnxruntime_vs_onnxruntime-optimized"]
    check(pid, "onnxruntime-optimized", "bitwise equal to the unoptimised output",
          comparison["bitwise_equal_onnxruntime_vs_onnxruntime-optimized"], False,
          "the folded graph rounds differently in the last bits")
    assert 0 < diff < 1e-5, f"{pid}: optimised vs unoptimised relative difference {diff}"
    verdict_is(pid, False, ALL)


def _ceil_size(n: int, k: int, s: int, p: int) -> int:
    """PyTorch's ceil-mode output size, dropping a last window that starts in the padding."""
    out = math.ceil((n + 2 * p - k) / s) + 1
    return out - 1 if (out - 1) * s >= n + p else out


@pytest.mark.parametrize("side", [*ALL, "reference"])
def test_ceil_mode_sizes_are_pytorchs(side):
    pid = "onnxruntime-maxpool-ceil-mode"
    results = ev(pid, side)["results"]
    for cid, shape, kwargs in onnx_runtime.CEIL:
        k, p = kwargs["kernel_size"], kwargs.get("padding", 0)
        s = kwargs.get("stride", k)
        want = [*shape[:2], _ceil_size(shape[2], k, s, p), _ceil_size(shape[3], k, s, p)]
        check(pid, side, f"{cid} output shape", results[cid]["shape"], want, "PyTorch's ceil-mode size")


def test_ceil_mode_values_and_indices_agree():
    pid = "onnxruntime-maxpool-ceil-mode"
    attributes = ev(pid, "onnxruntime")["exported_maxpool_attributes"]
    check(pid, "onnxruntime", "ceil_mode attributes", {a["ceil_mode"] for a in attributes.values()}, {1},
          "the exporter writes MaxPool(ceil_mode=1)")
    verdict_is(pid, False, ALL)
