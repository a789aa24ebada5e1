"""ONNX Runtime at both levels (:mod:`comparisons.frameworks.onnx_runtime`): a subset of the case matrix (every
layer kind, float32 and float64 where the CPU provider allows, both implementations), its gradient records "not
applicable", and its limits pinned: each skip reason still holds (the comparison, forced, raises or fails), and
the CPU provider still has no float64 Conv, ConvTranspose, AveragePool, GlobalAveragePool, InstanceNormalization,
Erf or HardSigmoid (a test fails when it gains one, so the pin is revisited).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from comparisons import cases, harness
from comparisons.bench.measure import Unavailable
from comparisons.bench.shapes import Shape
from comparisons.frameworks import REGISTRY
from comparisons.frameworks.onnx_runtime import KINDS
from comparisons.frameworks.protocol import RunInputs
from tests.frameworks import framework_or_skip

pytestmark = pytest.mark.onnxruntime
NAMES = [pytest.param("onnxruntime", id="onnxruntime"),
         pytest.param("onnxruntime-optimized", id="optimized", marks=getattr(pytest.mark, "onnxruntime-optimized"))]


@pytest.fixture(scope="module", params=NAMES)
def ort_framework(request):
    """The entry's Framework, PyTorch (the exporter) on one thread."""
    framework = framework_or_skip(request.param)
    import torch

    torch.set_num_threads(1)
    return framework


def _by_id() -> dict[str, cases.Case]:
    return {c.id: c for c in cases.all_cases()}


SUBSET = [  # every layer kind at least once
    "softmax-dim1-2x5x3x4-scale1-batch", "conv-k3x3-s1-p1-d1-batch-bias",
    "conv-grouped-c4-f6-g2-k3x3-s1-p1-d1-batch-bias", "conv-reflect-p1-k3-batch",
    "maxpool-k3x3-s2-p1-single", "maxpool-k2-s2-p1-ceil-indices-single", "avgpool-k3-s2-p1-ceil",
    "globalavgpool-batch-2x3x5x4", "adaptiveavg-6x6-to-3-divisible", "adaptivemax-6x6-to-3-divisible",
    "globalmax-5x7", "batchnorm-eval-eps1e-05-m0.1-batch-2x3x5x4", "dropout-train-p0.5-batch-2x3x5x4",
    "flatten-dropout-linear-train", "relu-single", "leakyrelu-slope0.2-scale1-single", "sigmoid-scale30-batch",
    "tanh-scale10-batch", "flatten-linear-single", "linear-flat-batch", "cross-entropy-scale10000",
    "ce-idx-N8C5-mean-weight-ign-100", "ce-idx-N3C4d2x3-none", "maxpool-k3-s2-p1-d2-ceil-indices",
    "tutorial-cnn-batch", "vgg-cnn-eval",
    "convtranspose-c3-f4-k3-s2-p1-op1-d1-g1-single-nobias", "convtranspose-c4-f6-k2x3-s2x3-p1x0-op1x2-d1-g2-batch-bias",
    "layernorm-3x4x5-in2x3x4x5", "layernorm-6-in3x4x6-biasFalse", "groupnorm-g2-batch-2x6x4x5",
    "groupnorm-g2-batch-2x4x3x5-affineFalse", "gelu-none-scale5-single", "gelu-tanh-scale5-batch",
    "hardsigmoid-scale4-batch", "upsample-nearest-scale_factor0.6-batch-2x2x5x7",
    "upsample-bilinear-acFalse-size3x2-single-2x7x5", "upsample-bilinear-acTrue-scale_factor1.7-batch-2x2x5x6",
    "upsample-bilinear-acFalse-scale_factor0.6-recompute_scale_factorTrue-batch-2x2x5x7",
    "bce-logits-N6C5-none-weight-posweight", "bce-logits-N3C4H2W3-mean-weight-posweight",
]
TRIPLES = [t for t in cases.expand([_by_id()[cid] for cid in SUBSET])]


def test_subset_covers_every_layer_kind_it_builds():
    kinds = {s.kind for cid in SUBSET for s in _by_id()[cid].specs}
    assert kinds == {s.kind for c in cases.all_cases() for s in c.specs} & KINDS


@pytest.mark.parametrize("triple", TRIPLES, ids=[cases.triple_id(t) for t in TRIPLES])
def test_matches_the_reference(triple, ort_framework):
    case, impl, dtype = triple
    reason = harness.skip_reason(ort_framework, case, dtype)
    if reason:
        assert dtype == "float64", f"{case.id}: only float64 may be refused here, got {reason}"
        pytest.skip(reason)
    records = harness.compare(case, impl, dtype, ort_framework)
    compared = [r for r in records if r.applicable]
    assert compared and all(r.passed for r in compared), [r for r in compared if not r.passed]
    gradients = {r.quantity for r in records if not r.applicable}
    params = {harness.quantity_name(k, case) for k in harness.run_reference(case, impl, dtype).params}
    assert gradients == {"dx", *params}, "every gradient is listed as not applicable, none left out"
    assert all(r.passed is None and r.max_rel_err is None for r in records if not r.applicable)


def test_float64_runs_where_the_provider_has_kernels(ort_framework):
    """Not every float64 case is refused: max pooling, batch norm with a float32-exact eps, the dense layers."""
    allowed = [cid for cid in SUBSET if not harness.skip_reason(ort_framework, _by_id()[cid], "float64")]
    assert {"maxpool-k3x3-s2-p1-single", "linear-flat-batch", "tanh-scale10-batch", "dropout-train-p0.5-batch-2x3x5x4",
            "ce-idx-N3C4d2x3-none", "gelu-tanh-scale5-batch", "softmax-dim1-2x5x3x4-scale1-batch",
            "bce-logits-N6C5-none-weight-posweight"} <= set(allowed)
    assert "tutorial-cnn-batch" not in allowed  # its conv has no float64 kernel


# -- the limits, pinned ---------------------------------------------------------------------------------------
def _case(cid: str) -> cases.Case:
    return _by_id()[cid]


REFUSED = [  # (case id, dtype): a skip reason of each kind
    ("conv-k3x3-s1-p1-d1-batch-bias", "float64"), ("avgpool-k2-s2-ceil", "float64"),
    ("globalavgpool-batch-2x3x5x4", "float64"), ("leakyrelu-slope0.01-scale1-batch", "float64"),
    ("batchnorm-eval-eps1e-05-m0.1-batch-2x3x5x4", "float64"), ("batchnorm-train-eps1e-05-m0.1-batch-2x3x5x4",
                                                                 "float32"),
    ("adaptiveavg-5x7-to-3x4", "float32"), ("adaptivemax-10x10-to-4x6", "float32"),
    ("avgpool-k2x3-s1-p1-divisor5", "float32"), ("conv-same-k3-d2-batch", "float32"),
    ("ce-idx-N6C5-mean-ls1", "float32"), ("ce-prob-N6C5-mean", "float32"),
    ("convtranspose-c3-f4-k3-s1-p0-op0-d1-g1-batch-bias", "float64"),
    ("convtranspose-c2-f4-k3-s1-p0-op1-d3-g1-batch-nobias", "float32"),
    ("layernorm-4x5-in2x3x4x5-eps0.001", "float64"), ("groupnorm-g2-batch-2x6x4x5", "float64"),
    ("gelu-none-scale1-batch", "float64"), ("hardsigmoid-scale1-batch", "float64"),
    ("upsample-nearest-scale_factor2.0-batch-2x3x4x5", "float64"),
    ("upsample-nearest-exact-size7x9-batch-2x2x4x5", "float32"),
    ("upsample-nearest-scale_factor2.1x1.1-batch-2x2x5x6", "float32"),
    ("upsample-bilinear-acFalse-scale_factor2.1x1.1-batch-2x2x5x6", "float32"),
    ("bce-probs-N6C5-mean", "float32"), ("bce-probs-N6C5-none-edges", "float64"),
    ("bce-logits-N6C5-mean-scale40", "float32"), ("bce-logits-N6C5-sum-weight-soft-edges-scale800", "float64"),
]


@pytest.mark.parametrize("cid,dtype", REFUSED, ids=[f"{c}-{d}" for c, d in REFUSED])
def test_each_refusal_still_holds(cid, dtype, ort_framework):
    """Forced past its skip reason, the comparison raises or fails: when it passes, the runtime or the exporter
    learned the case, and the reason in :mod:`.capability` is to be revisited."""
    case = _case(cid)
    assert harness.skip_reason(ort_framework, case, dtype)
    try:
        records = harness.compare(case, "im2col" if case.spatial else None, dtype, ort_framework)
    except Exception:  # noqa: BLE001  (the exporter, the runtime or a missing buffer: each is a refusal)
        return
    assert not all(r.passed for r in records if r.applicable), f"{cid} {dtype} now passes: revisit the skip reason"


def _single_op_model(op: str, dtype: str, shapes, **attributes) -> bytes:
    from onnx import TensorProto, helper

    elem = TensorProto.DOUBLE if dtype == "float64" else TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info(f"i{k}", elem, s) for k, s in enumerate(shapes)]
    node = helper.make_node(op, [f"i{k}" for k in range(len(shapes))], ["y"], **attributes)
    graph = helper.make_graph([node], op, inputs, [helper.make_tensor_value_info("y", elem, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


OPS = {"Conv": ([(1, 2, 5, 5), (3, 2, 3, 3)], {}), "AveragePool": ([(1, 2, 5, 5)], {"kernel_shape": [2, 2]}),
       "GlobalAveragePool": ([(1, 2, 5, 5)], {}), "MaxPool": ([(1, 2, 5, 5)], {"kernel_shape": [2, 2]}),
       "Gemm": ([(2, 3), (3, 4)], {}), "ConvTranspose": ([(1, 2, 5, 5), (2, 3, 3, 3)], {}),
       "InstanceNormalization": ([(1, 2, 5, 5), (2,), (2,)], {}), "Erf": ([(2, 3)], {}), "HardSigmoid": ([(2, 3)], {}),
       "LayerNormalization": ([(1, 2, 5, 5), (5,), (5,)], {"axis": -1}), "Tanh": ([(2, 3)], {})}
HAVE_FLOAT64 = {"MaxPool", "Gemm", "LayerNormalization", "Tanh"}


@pytest.mark.parametrize("op", list(OPS))
def test_float64_kernels_of_the_cpu_provider(op, ort_framework):
    """Conv, ConvTranspose, AveragePool, GlobalAveragePool, InstanceNormalization (GroupNorm), Erf (GELU) and
    HardSigmoid have no float64 kernel (``capability.FLOAT64_MISSING``); MaxPool, Gemm, LayerNormalization and Tanh
    (GELU's tanh form) have one. Fails when that changes."""
    import onnxruntime as ort

    from comparisons.frameworks.onnx_runtime import capability

    shapes, attributes = OPS[op]
    missing = op in capability.FLOAT64_MISSING.values()
    assert missing == (op not in HAVE_FLOAT64)
    for dtype in ("float32", "float64"):
        feeds = {f"i{k}": np.ones(s, dtype) for k, s in enumerate(shapes)}
        model = _single_op_model(op, dtype, shapes, **attributes)
        if dtype == "float64" and missing:
            with pytest.raises(ort.capi.onnxruntime_pybind11_state.NotImplemented, match="Could not find an impl"):
                ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, feeds)
        else:
            ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, feeds)


# -- forward only -------------------------------------------------------------------------------------------
def test_forward_only(ort_framework):
    assert ort_framework.gradients is False
    assert set(ort_framework.versions) == {"onnx", "onnxruntime"}
    with pytest.raises(NotImplementedError, match=f"{ort_framework.name}: a forward-only runtime cannot train"):
        ort_framework.trainer(cases.tutorial_cases()[0], {}, "float32", "adam", 0.01)
    with pytest.raises(Unavailable, match="forward-only runtime"):
        ort_framework.bench_step("conv", Shape("tiny", 1, 2, 8, 8, 3), "float32", 1)


def test_entries_share_one_load_with_a_setting():
    from comparisons.frameworks.onnx_runtime import LEVELS

    assert LEVELS == {"onnxruntime": "ORT_DISABLE_ALL", "onnxruntime-optimized": "ORT_ENABLE_ALL"}
    assert all(REGISTRY[name].environment("compare") == {} for name in LEVELS)


def test_a_changed_parameter_is_exported_again(ort_framework):
    """The graph cache is keyed by the values baked in, not only by the case."""
    case = _case("linear-flat-batch")
    run = harness.run_reference(case, None, "float32")
    first = ort_framework.run(case, RunInputs(run.params, run.x, "float32", run.dout))["forward"]
    doubled = {k: 2 * v for k, v in run.params.items()}
    second = ort_framework.run(case, RunInputs(doubled, run.x, "float32", run.dout))["forward"]
    np.testing.assert_allclose(second, 2 * first, rtol=1e-6)


def test_reference_case_is_the_case(ort_framework):
    case = _case("batchnorm-eval-eps1e-05-m0.1-batch-2x3x5x4")
    assert ort_framework.reference_case(case) is case
    biased = dataclasses.replace(case, specs=(cases.spec("batchnorm", **{**case.specs[0].kwargs,
                                                                          "unbiased_running_var": False}),))
    assert "unbiased" in ort_framework.unsupported(biased)
