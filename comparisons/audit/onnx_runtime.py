"""ONNX Runtime probes: what its graph optimisations change in a small CNN's float32 output, and max pooling with
``ceil_mode=True`` after the export.

Both run :mod:`comparisons.frameworks.onnx_runtime` (the case's PyTorch model exported with
``torch.onnx.export(dynamo=False)``, run on the CPU provider) at its two levels: ``onnxruntime`` (``ORT_DISABLE_ALL``)
and ``onnxruntime-optimized`` (``ORT_ENABLE_ALL``), beside PyTorch eager and the reference. Inputs ``(N, C, H, W)``
float32.
"""

from __future__ import annotations

import functools
import os
import tempfile

import numpy as np

from comparisons import frameworks as registry
from comparisons import harness
from comparisons.cases import Case, build_reference, spec
from comparisons.frameworks.protocol import RunInputs

from .base import compare_key, import_torch, pairs, probe, ran

ORT_SIDES = ("onnxruntime", "onnxruntime-optimized")


def fusion_case() -> Case:
    """conv 3->8 3x3 (no bias) -> batch norm -> ReLU -> conv 8->8 3x3 -> ReLU -> 2x2 max pool -> Linear 128->10,
    evaluation mode, on ``(4, 3, 8, 8)``: batch norm foldable into the first conv, both ReLUs into their convs."""
    conv = dict(kernel_size=3, stride=1, padding=1, dilation=1)
    return Case("fusion", "ort-fusion-cnn", (
        spec("conv", in_channels=3, out_channels=8, bias=False, **conv),
        spec("batchnorm", num_features=8, eps=1e-5, momentum=0.1, unbiased_running_var=True), spec("relu"),
        spec("conv", in_channels=8, out_channels=8, bias=True, **conv), spec("relu"),
        spec("maxpool", kernel_size=2, stride=None, padding=0), spec("flatten"),
        spec("linear", in_features=8 * 4 * 4, out_features=10, bias=True)), (4, 3, 8, 8), seed=31,
        tags=frozenset({"eval"}))


@functools.cache
def _fusion_run() -> harness.ReferenceRun:
    """The reference's float32 run of :func:`fusion_case`: parameters, running statistics, input, longest sum."""
    return harness.run_reference(fusion_case(), "im2col", "float32")


@functools.cache
def _fusion_truth() -> np.ndarray:
    """The reference in float64 on the float32 input, parameters and statistics: ``(4, 10)``."""
    run, model = _fusion_run(), build_reference(fusion_case(), "im2col", np.float64)
    for key, value in run.params.items():
        model.params[key] = value.astype(np.float64)
    for key, value in run.buffers.items():
        model.buffers[key] = value.astype(np.float64)
    return model.forward(run.x.astype(np.float64))


def _fusion_evidence(out: np.ndarray, **extra) -> dict:
    """Shape, relative error against the float64 truth, and whether it is within float32's tolerance."""
    truth, run = _fusion_truth(), _fusion_run()
    rel = float(np.max(np.abs(out.astype(np.float64) - truth)) / np.max(np.abs(truth)))
    tol = harness.tolerance("float32", run.reduction_length)
    return {"out_shape": list(out.shape), "max_rel_err_vs_float64": rel, "tolerance": tol,
            "within_float32_tolerance": rel <= tol, **extra, "_out": out}


def _ops_run(name: str, model: bytes) -> list[str]:
    """The operators of the graph ONNX Runtime runs for ``name``'s level, after its optimisations
    (``domain.op`` outside the default domain)."""
    import onnx

    from comparisons.frameworks.onnx_runtime import LEVELS
    from comparisons.frameworks.onnx_runtime import model as ort_model

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "optimized.onnx")
        ort_model.session(model, LEVELS[name], save_to=path)
        graph = onnx.load(path).graph
    return [f"{n.domain}.{n.op_type}" if n.domain else n.op_type for n in graph.node]


def _fusion_ort(name: str) -> dict:
    fw = registry.load(name)  # FrameworkUnavailable when onnxruntime is missing
    from comparisons.frameworks.onnx_runtime import export

    run, case = _fusion_run(), fusion_case()
    out = fw.run(case, RunInputs(run.params, run.x, "float32", buffers=run.buffers))["forward"]
    _, model = export.exported(case, run.params, run.x, "float32", None, run.buffers)
    return _fusion_evidence(out, ops=_ops_run(name, model))


def _fusion_torch() -> dict:
    torch = import_torch()
    from comparisons.frameworks.pytorch import model as torch_model

    run = _fusion_run()
    with torch.no_grad():
        out = torch_model.build(fusion_case(), run.params, "float32", run.buffers)(torch.from_numpy(run.x))
    return _fusion_evidence(out.numpy())


def _fusion_reference() -> dict:
    return _fusion_evidence(_fusion_run().results["forward"])


def output_differences(evidence: dict, reference: dict) -> dict:
    """Per pair of sides that ran: ``max_abs_diff_{a}_vs_{b}``, ``max_rel_diff_{a}_vs_{b}`` (over the largest
    output) and ``bitwise_equal_{a}_vs_{b}`` of their float32 outputs (``_out``)."""
    outs = {name: e["_out"] for name, e in ran(evidence).items() if "_out" in e}
    found = {}
    for a, b in pairs(outs):
        diff = float(np.max(np.abs(outs[a].astype(np.float64) - outs[b])))
        found[f"max_abs_diff_{a}_vs_{b}"] = diff
        found[f"max_rel_diff_{a}_vs_{b}"] = diff / float(np.max(np.abs(outs[a])))
        found[f"bitwise_equal_{a}_vs_{b}"] = bool(np.array_equal(outs[a], outs[b]))
    return found


probe("onnxruntime-graph-optimizations", "ONNX Runtime's graph optimisations on a small CNN, float32", "numerics",
      "A conv -> batch norm -> ReLU -> conv -> ReLU -> max pool -> Linear CNN in evaluation mode, float32, exported "
      "from PyTorch and run by ONNX Runtime with every graph optimisation off (ORT_DISABLE_ALL) and on "
      "(ORT_ENABLE_ALL): which operators run, do the outputs change, by how much, and are both within float32's "
      "rounding bound of the float64 result?",
      "ORT_ENABLE_ALL folds batch norm into the preceding conv's weights and bias and fuses each ReLU into its conv "
      "(see 'ops'): the output changes in the last bits (a different rounding of the same sums: "
      "max_rel_diff in 'comparison'), within float32's bound like the unoptimised graph and PyTorch. Compare a "
      "deployed model against the optimised session, and keep a tolerance of a few float32 ulps per sum: "
      "bitwise equality with PyTorch is not to be expected at either level.",
      frameworks={"onnxruntime": lambda: _fusion_ort("onnxruntime"),
                  "onnxruntime-optimized": lambda: _fusion_ort("onnxruntime-optimized"), "torch": _fusion_torch},
      reference=_fusion_reference,
      verdict=compare_key("out_shape", "within_float32_tolerance", comparison=output_differences))


# -- max pooling with ceil_mode after the export ----------------------------------------------------------
CEIL = [  # (id, input shape, MaxPool2d options): PyTorch's ceil-mode rule drops a last window starting in padding
    ("k2-s2-in5x7", (2, 2, 5, 7), {"kernel_size": 2}),
    ("k3-s3-p1-in5x5-last-window-dropped", (1, 2, 5, 5), {"kernel_size": 3, "stride": 3, "padding": 1}),
    ("k3-s2-in6x8", (2, 2, 6, 8), {"kernel_size": 3, "stride": 2}),
    ("k2-s2-p1-in5x6-indices", (1, 3, 5, 6), {"kernel_size": 2, "padding": 1, "return_indices": True}),
]


def ceil_case(cid: str, shape: tuple[int, ...], kwargs: dict) -> Case:
    """One ``MaxPool2d(ceil_mode=True)`` layer on ``shape``."""
    return Case("MaxPool2d", f"ort-ceil-{cid}", (spec("maxpool", **{"stride": None, "padding": 0, **kwargs,
                                                                     "ceil_mode": True}),), shape, seed=41)


def ceil_input(shape: tuple[int, ...]) -> np.ndarray:
    """Seeded standard normal, float32 (no ties)."""
    return np.random.default_rng(42).standard_normal(shape).astype(np.float32)


def _ceil_results(outputs) -> dict:
    """``{id: {"shape", "values", "indices"?}}`` from ``[(out, indices or None)]`` in :data:`CEIL` order."""
    found = {}
    for (cid, _, _), (out, indices) in zip(CEIL, outputs, strict=True):
        found[cid] = {"shape": list(out.shape), "values": out.ravel().tolist()}
        if indices is not None:
            found[cid]["indices"] = indices.ravel().tolist()
    return found


def _ceil_ort(name: str) -> dict:
    fw = registry.load(name)
    import onnx

    from comparisons.frameworks.onnx_runtime import export

    outputs, attributes = [], {}
    for cid, shape, kwargs in CEIL:
        case, x = ceil_case(cid, shape, kwargs), ceil_input(shape)
        got = fw.run(case, RunInputs({}, x, "float32"))
        outputs.append((got["forward"], got.get("0.indices")))
        _, model = export.exported(case, {}, x, "float32", None)
        node = next(n for n in onnx.load_from_string(model).graph.node if n.op_type == "MaxPool")
        attributes[cid] = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    return {"results": _ceil_results(outputs), "exported_maxpool_attributes": attributes}


def _ceil_torch() -> dict:
    torch = import_torch()
    outputs = []
    for _, shape, kwargs in CEIL:
        out = torch.nn.MaxPool2d(**kwargs, ceil_mode=True)(torch.from_numpy(ceil_input(shape)))
        out, indices = out if isinstance(out, tuple) else (out, None)
        outputs.append((out.numpy(), None if indices is None else indices.numpy()))
    return {"results": _ceil_results(outputs)}


def _ceil_reference() -> dict:
    outputs = []
    for cid, shape, kwargs in CEIL:
        out = build_reference(ceil_case(cid, shape, kwargs), "im2col", np.float32).layers[0].forward(
            ceil_input(shape))
        outputs.append(out if isinstance(out, tuple) else (out, None))
    return {"results": _ceil_results(outputs)}


probe("onnxruntime-maxpool-ceil-mode", "max pooling with ceil_mode=True after the ONNX export", "pooling",
      "nn.MaxPool2d(ceil_mode=True) exported with torch.onnx.export(dynamo=False) and run by ONNX Runtime (both "
      "levels), on inputs where the last window overhangs the input, and one where PyTorch drops a last window "
      "that would start in the padding: the same output sizes, values and indices as PyTorch?",
      "The exporter writes MaxPool(ceil_mode=1) with PyTorch's pads (see 'exported_maxpool_attributes'), and ONNX "
      "Runtime sizes the output by PyTorch's rule, dropping a last window that starts in the padding: sizes, "
      "values and indices equal PyTorch's. Older runtimes sized ceil-mode pools differently: check the output "
      "shape after an upgrade.",
      frameworks={"onnxruntime": lambda: _ceil_ort("onnxruntime"),
                  "onnxruntime-optimized": lambda: _ceil_ort("onnxruntime-optimized"), "torch": _ceil_torch},
      reference=_ceil_reference, verdict=compare_key("results"))
