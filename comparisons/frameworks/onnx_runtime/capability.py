"""What the TorchScript-based ONNX exporter (torch 2.13, opset 17) and ONNX Runtime's CPU provider cannot express,
each reason measured on the case matrix (``unsupported``), and the float64 limits of the CPU provider
(``dtype_reason``). Imports neither torch nor onnxruntime.
"""

from __future__ import annotations

import numpy as np

from comparisons.cases import Case, LayerSpec, build_reference
from reference.upsample import Upsample
from reference.validation import as_pair

from . import OPSET

# layer kind -> the ONNX operator it exports to that has no float64 kernel on the CPU provider
# (measured: "NOT_IMPLEMENTED : Could not find an implementation for Conv(11)"; GlobalMaxPool and LpPool have none
# either; MaxPool, BatchNormalization, LayerNormalization, Gemm, MatMul, Softmax, Tanh, the other activations and
# the loss have one). GroupNorm exports as InstanceNormalization on its channels reshaped to the groups, Upsample as
# Resize, GELU's erf form through Erf (its tanh form through Tanh, which has one).
FLOAT64_MISSING = {"conv": "Conv", "convtranspose": "ConvTranspose", "avgpool": "AveragePool",
                   "adaptiveavgpool": "AveragePool", "globalavgpool": "GlobalAveragePool",
                   "groupnorm": "InstanceNormalization", "hardsigmoid": "HardSigmoid", "upsample": "Resize",
                   "gelu": "Erf"}


def _float64_missing(s: LayerSpec) -> str | None:
    """The operator without a float64 kernel that layer ``s`` exports to, or None."""
    if s.kind == "gelu" and s.kwargs.get("approximate", "none") == "tanh":
        return None
    return FLOAT64_MISSING.get(s.kind)


def _upsample_reason(case: Case, index: int, s: LayerSpec) -> str | None:
    """Why the exported ``Upsample`` ``s`` (layer ``index``) does not compute PyTorch's cells, or None."""
    kw, where = s.kwargs, f"layer {index} ({s.kind})"
    if kw["mode"] == "nearest-exact":
        return (f"{where}: the exporter refuses mode='nearest-exact' (\"Exporting the operator "
                f"'aten::_upsample_nearest_exact2d' to ONNX opset version {OPSET} is not supported\")")
    factor = kw.get("scale_factor")
    if factor is None or kw.get("recompute_scale_factor") or kw.get("align_corners"):
        return None
    hw = _input_hw(case, index)
    factors = (factor, factor) if isinstance(factor, (int, float)) else factor
    out = Upsample(**kw).output_hw(hw)
    special = [(n, f) for n, o, f in zip(hw, out, factors, strict=True)
               if (o == n and f != 1) or (kw["mode"] == "nearest" and o == 2 * n and f != 2)]
    if special:
        return (f"{where}: the exported Resize maps every output cell with the given scale factor, where PyTorch "
                "copies an axis whose output keeps the input's size (and its nearest mode reads o >> 1 for twice "
                f"the size) whatever the factor: (input, factor) {special} here")
    return None


def _input_hw(case: Case, index: int) -> tuple[int, int]:
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
    hw = _input_hw(case, index)
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
    if s.kind == "upsample":
        return _upsample_reason(case, i, s)
    if s.kind == "convtranspose":
        extra, stride = (as_pair(kw.get(k, d), "onnx_runtime", k, 0) for k, d in (("output_padding", 0), ("stride", 1)))
        if any(e >= st for e, st in zip(extra, stride, strict=True)):
            return (f"{where}: ONNX Runtime's ConvTranspose refuses output_padding >= stride ('Computed output shape "
                    f"is inconsistent with input spatial dimensions'; PyTorch also allows output_padding < dilation): "
                    f"output_padding={extra}, stride={stride}")
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
    reason = _binary_loss_reason(case)
    if reason:
        return reason
    option = case.loss_option
    if option is not None and option.target == "prob":
        return ("softmax_cross_entropy: ONNX SoftmaxCrossEntropyLoss takes integer class labels only; ONNX Runtime "
                "rejects probability targets ('Type tensor(float) of input parameter (labels)')")
    if option is not None and option.label_smoothing:
        return "softmax_cross_entropy: the exporter refuses label_smoothing ('ONNX does not support label_smoothing')"
    return None


# The largest logit scale (``scale * standard_normal`` logits) at which the exported binary_cross_entropy_with_logits
# matches the reference (measured on the matrix: every scale-1 configuration passes; at scales 40 and 800 the loss is
# nan). The exporter (symbolic_opset12) writes it as ``-(t * log(sigmoid(x)) + (1 - t) * log(1 - sigmoid(x)))``:
# ``1 - sigmoid(x)`` loses digits as ``x`` grows (its relative error is about ``eps * exp(x)``), and where sigmoid
# rounds to 0 or 1 (|x| > 17 in float32, > 37 in float64) a log is -inf and the loss inf or nan.
EXPORTED_LOGITS_MAX_SCALE = 1.0


def _binary_loss_reason(case: Case) -> str | None:
    """Why the exported binary cross-entropy of ``case`` does not compute the reference's, or None."""
    option = case.binary_loss
    if option is None:
        return None
    if not option.logits:
        return (f"binary_cross_entropy: the exporter refuses it (\"Exporting the operator "
                f"'aten::binary_cross_entropy' to ONNX opset version {OPSET} is not supported\")")
    if option.scale > EXPORTED_LOGITS_MAX_SCALE:
        return ("binary_cross_entropy_with_logits: the exporter writes it as log(sigmoid(x)) and log(1 - sigmoid(x)), "
                f"inf or nan where sigmoid rounds to 0 or 1 (logits of scale {option.scale:g} here; measured: nan)")
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
        if _float64_missing(s):
            return (f"{where}: ONNX Runtime's CPU provider has no float64 {_float64_missing(s)} kernel "
                    "('NOT_IMPLEMENTED : Could not find an implementation')")
        for kind, option, attribute in (("leakyrelu", "negative_slope", "LeakyRelu's alpha"),
                                        ("batchnorm", "eps", "BatchNormalization's epsilon"),
                                        ("layernorm", "eps", "LayerNormalization's epsilon")):
            if s.kind == kind and _rounding(s.kwargs[option]):
                value = s.kwargs[option]
                return (f"{where}: ONNX stores {attribute} as a float32 attribute: {option}={value:g} becomes "
                        f"{float(np.float32(value))!r} (relative error {_rounding(value):.1e}, far above float64's "
                        "tolerance)")
    return None


def reference_case(case: Case) -> Case:
    """The exported model is PyTorch's, whose conventions are the reference's: the case as it is."""
    return case
