"""What the TorchScript-based ONNX exporter (torch 2.13, opset 17) and ONNX Runtime's CPU provider cannot express,
each reason measured on the case matrix (``unsupported``), and the float64 limits of the CPU provider
(``dtype_reason``). Imports neither torch nor onnxruntime.
"""

from __future__ import annotations

import numpy as np

from comparisons.cases import Case, LayerSpec, build_reference

# layer kind -> the ONNX operator it exports to that has no float64 kernel on the CPU provider
# (measured: "NOT_IMPLEMENTED : Could not find an implementation for Conv(11)"; ConvTranspose, GlobalMaxPool and
# LpPool have none either, MaxPool, BatchNormalization, Gemm, MatMul, the activations and the loss have one)
FLOAT64_MISSING = {"conv": "Conv", "avgpool": "AveragePool", "adaptiveavgpool": "AveragePool",
                   "globalavgpool": "GlobalAveragePool"}


def _adaptive_input_hw(case: Case, index: int) -> tuple[int, int]:
    """``(H, W)`` entering layer ``index`` (the reference run on zeros through the layers before it)."""
    if index == 0:
        return case.input_shape[-2:]
    model = build_reference(case, "im2col", np.float32)
    h = np.zeros(case.input_shape, np.float32)
    for layer in model.layers[:index]:
        h = layer.forward(h)
        h = h[0] if isinstance(h, tuple) else h
    return h.shape[-2:]


def _not_factor(case: Case, index: int, s: LayerSpec) -> bool:
    """An adaptive pooling whose output size does not divide its input size (None keeps the size)."""
    out = s.kwargs["output_size"]
    out = (out, out) if not isinstance(out, tuple) else out
    hw = _adaptive_input_hw(case, index)
    return any(o is not None and n % o for n, o in zip(hw, out, strict=True))


def _layer_reason(case: Case, i: int, s: LayerSpec) -> str | None:
    kw, where = s.kwargs, f"layer {i} ({s.kind})"
    if s.kind == "batchnorm" and not case.eval_mode:
        return (f"{where}: training mode updates the running statistics, which the exported graph does not: the "
                "exporter's BatchNormalization(training_mode=1) leaves its running-statistics outputs "
                "unconnected, and the graph's running statistics are constants")
    if s.kind in ("adaptiveavgpool", "adaptivemaxpool") and _not_factor(case, i, s):
        op = "adaptive_avg_pool2d" if s.kind == "adaptiveavgpool" else "adaptive_max_pool2d"
        return (f"{where}: the exporter refuses {op} when the output size does not divide the input size "
                f"('Unsupported: ONNX export of operator {op}, output size that are not factor of input size')")
    if s.kind == "avgpool" and kw.get("divisor_override") is not None:
        return (f"{where}: the exporter drops divisor_override without an error (ONNX AveragePool has no "
                "divisor): ONNX Runtime divides by the window size (measured relative error 0.15 in float32)")
    dilation = kw.get("dilation", 1)
    dilated = any(d > 1 for d in (dilation if isinstance(dilation, tuple) else (dilation,)))
    if s.kind == "conv" and kw["padding"] == "same" and kw.get("padding_mode", "zeros") == "zeros" and dilated:
        return (f"{where}: the exporter writes padding='same' as auto_pad=SAME_UPPER, which ONNX Runtime's Conv "
                "refuses with a dilation > 1 ('Dilation not supported for AutoPadType::SAME_UPPER')")
    return None


def unsupported(case: Case) -> str | None:
    """Why the exporter or ONNX Runtime cannot run ``case`` as the reference does, or None (see
    :func:`comparisons.frameworks.pytorch.model.unsupported` for the model's own limit)."""
    from ..pytorch import model as torch_model  # the exported model is PyTorch's: its limits first

    reason = torch_model.unsupported(case)
    if reason:
        return reason
    for i, s in enumerate(case.specs):
        reason = _layer_reason(case, i, s)
        if reason:
            return reason
    option = case.loss_option
    if option is not None and option.target == "prob":
        return ("softmax_cross_entropy: ONNX SoftmaxCrossEntropyLoss takes integer class labels only; ONNX Runtime "
                "rejects probability targets ('Type tensor(float) of input parameter (labels)')")
    if option is not None and option.label_smoothing:
        return "softmax_cross_entropy: the exporter refuses label_smoothing ('ONNX does not support label_smoothing')"
    return None


def _rounding(value: float) -> float:
    """The relative error of ``value`` stored in ONNX's float32 attribute (0.0 when it is exact)."""
    return abs(float(np.float32(value)) - value) / abs(value) if value else 0.0


def dtype_reason(case: Case, dtype: str) -> str | None:
    """Why ``case`` cannot be compared in ``dtype``, or None: in float64, an operator without a float64 kernel on
    the CPU provider, or a float attribute (stored as float32 by ONNX) that float32 rounds."""
    if dtype != "float64":
        return None
    for i, s in enumerate(case.specs):
        where = f"layer {i} ({s.kind})"
        if s.kind in FLOAT64_MISSING:
            return (f"{where}: ONNX Runtime's CPU provider has no float64 {FLOAT64_MISSING[s.kind]} kernel "
                    "('NOT_IMPLEMENTED : Could not find an implementation')")
        for kind, option, attribute in (("leakyrelu", "negative_slope", "LeakyRelu's alpha"),
                                        ("batchnorm", "eps", "BatchNormalization's epsilon")):
            if s.kind == kind and _rounding(s.kwargs[option]):
                value = s.kwargs[option]
                return (f"{where}: ONNX stores {attribute} as a float32 attribute: {option}={value:g} becomes "
                        f"{float(np.float32(value))!r} (relative error {_rounding(value):.1e}, far above float64's "
                        "tolerance)")
    return None


def reference_case(case: Case) -> Case:
    """The exported model is PyTorch's, whose conventions are the reference's: the case as it is."""
    return case
