"""What Keras can express of a case, and the reference conventions it computes: the per-kind reasons, the pooling
plan (which Keras pooling has the reference's windows and divisors), the shapes through a case, on the backend
Keras was imported with (``keras.backend.backend()``: where a backend computes otherwise than TensorFlow, the
reasons say so)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import keras
import numpy as np

from comparisons.cases import Case, LayerSpec, spec
from reference.conv import conv_pads
from reference.validation import as_pair
from reference.windows import output_size, pool_divisors

from .. import layouts
from .losses import cross_entropy_reason

SHAPE_PRESERVING = ("relu", "leakyrelu", "sigmoid", "tanh", "batchnorm", "dropout")

Shape = tuple[int, ...]


def _hwc(chw: Shape) -> Shape:
    """A feature map's ``(C, H, W)`` shape written channels-last, ``(H, W, C)``."""
    c, h, w = chw
    return (h, w, c)


def _pair(value, name: str, minimum: int = 1) -> tuple[int, int]:
    return as_pair(value, "frameworks.keras3", name, minimum)


def _conv_geometry(s: LayerSpec) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """``(kernel, stride, dilation)`` of a conv spec as pairs."""
    kw = s.kwargs
    return _pair(kw["kernel_size"], "kernel_size"), _pair(kw["stride"], "stride"), _pair(kw["dilation"], "dilation")


def _adaptive_size(s: LayerSpec, hw: Shape) -> tuple[int, int]:
    """An adaptive pool's ``output_size`` as a pair, None replaced by the input size (Keras needs integers)."""
    size = s.kwargs["output_size"]
    size = (size, size) if isinstance(size, int) else size
    oh, ow = (n if o is None else o for o, n in zip(size, hw, strict=True))
    return oh, ow


def _pool_geometry(s: LayerSpec) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """``(kernel, stride, padding)`` of a pooling spec as pairs; stride None means the kernel."""
    kw = s.kwargs
    kernel = _pair(kw["kernel_size"], "kernel_size")
    stride = kernel if kw.get("stride") is None else _pair(kw["stride"], "stride")
    return kernel, stride, _pair(kw.get("padding", 0), "padding", 0)


def _pool_windows(s: LayerSpec, hw: Shape) -> tuple[str | None, str]:
    """How Keras computes the pooling ``s`` on an ``(H, W)`` input: ``("valid" | "zeropad" | "same", "")``,
    or ``(None, reason)`` when no Keras pooling has the reference's windows and divisors.

    "valid": no padding and ``ceil_mode`` adds no window; "zeropad" (average pooling counting the
    padding): ``ZeroPadding2D`` + "valid"; "infpad" (max pooling): ``-inf`` padding + "valid";
    "same": TensorFlow's windows start at ``i * s - top`` with
    ``top`` of :func:`layouts.keras_same_padding`, pad with ``-inf`` (max) and divide by the cells
    inside the input (average), so they are the reference's when ``top == padding`` and the output
    sizes agree (and, for average pooling, when the reference's divisors are those counts).
    """
    kw = s.kwargs
    kernel, stride, padding = _pool_geometry(s)
    ceil, average = kw.get("ceil_mode", False), s.kind == "avgpool"
    out = output_size(hw, kernel, stride, padding, (1, 1), "frameworks.keras3", ceil)
    floor_out = output_size(hw, kernel, stride, padding, (1, 1), "frameworks.keras3")
    if padding == (0, 0) and out == floor_out:
        return "valid", ""
    if average and kw.get("count_include_pad", True) and out == floor_out:
        return "zeropad", ""
    same = layouts.keras_same_padding(hw, kernel, stride)
    same_out = tuple(-(-n // st) for n, st in zip(hw, stride, strict=True))
    if same_out != out or (same[0][0], same[1][0]) != padding:
        if not average:
            return "infpad", ""
        what = "average pooling that leaves the padding out of the divisor except \"same\""
        return None, (f"Keras has no {what}, and padding=\"same\" pads {same} here (output {same_out}), not the "
                      f"reference's padding {padding}" + (" with ceil_mode" if ceil else "") + f" (output {out})")
    if average:
        include = kw.get("count_include_pad", True)
        if not np.array_equal(pool_divisors(hw, kernel, stride, padding, out, include),
                              pool_divisors(hw, kernel, stride, padding, out, False)):
            return None, ("Keras' \"same\" average pooling divides by the cells inside the input; the reference's "
                          "count_include_pad=True divisors count padding cells here")
    if average and keras.backend.backend() == "torch" and any(before != after for before, after in same):
        return None, (f"Keras {keras.__version__} on torch pads asymmetric \"same\" average pooling ({same} here) by "
                      "replicating the edge cells and counts them in the divisor (TensorFlow divides by the cells "
                      "inside the input)")
    return "same", ""


def _walk(specs: tuple[LayerSpec, ...], sample_shape: Shape) -> Iterator[tuple[int, LayerSpec, Shape, Shape]]:
    """Yield ``(index, spec, in_shape, out_shape)`` with per-sample reference shapes ``(C, H, W)`` or ``(D,)``."""
    shape = tuple(sample_shape)
    for i, s in enumerate(specs):
        kw = s.kwargs
        if s.kind == "conv":
            kernel, stride, dilation = _conv_geometry(s)
            hw = output_size(shape[1:], kernel, stride, conv_pads(kw["padding"], kernel, stride, dilation),
                             dilation, "frameworks.keras3")
            out = (kw["out_channels"], *hw)
        elif s.kind in ("maxpool", "avgpool"):
            kernel, stride, padding = _pool_geometry(s)
            dilation = _pair(kw.get("dilation", 1), "dilation")
            out = (shape[0], *output_size(shape[1:], kernel, stride, padding, dilation, "frameworks.keras3",
                                          kw.get("ceil_mode", False)))
        elif s.kind in ("adaptiveavgpool", "adaptivemaxpool"):
            out = (shape[0], *_adaptive_size(s, shape[1:]))
        elif s.kind == "globalmaxpool":
            out = (shape[0],)
        elif s.kind == "flatten":
            out = (int(np.prod(shape)),)
        elif s.kind == "linear":
            out = (kw["out_features"],)
        elif s.kind == "globalavgpool":
            out = (shape[0],)
        elif s.kind in SHAPE_PRESERVING:
            out = shape
        else:
            raise ValueError(f"frameworks.keras3: unknown layer kind {s.kind!r}")
        yield i, s, shape, out
        shape = out


def _reason(s: LayerSpec, in_shape: Shape) -> str | None:
    """Why Keras cannot compute layer ``s`` on a per-sample input of ``in_shape`` exactly, or None."""
    kw = s.kwargs
    if s.kind == "conv":
        _, stride, dilation = _conv_geometry(s)
        if max(stride) > 1 and max(dilation) > 1:
            return (f"Keras Conv2D rejects strides > 1 together with dilation_rate > 1 (ValueError at construction); "
                    f"got stride={stride}, dilation={dilation}")
    if s.kind == "maxpool":
        if _pair(kw.get("dilation", 1), "dilation") != (1, 1):
            return "Keras MaxPooling2D has no dilation"
        if kw.get("return_indices", False):
            return "Keras MaxPooling2D has no return_indices (it returns the values only)"
    if s.kind == "avgpool" and kw.get("divisor_override") is not None:
        return "Keras AveragePooling2D has no divisor_override"
    if s.kind in ("maxpool", "avgpool"):
        return _pool_windows(s, in_shape[1:])[1] or None
    if s.kind == "adaptivemaxpool":
        if kw.get("return_indices", False):
            return "Keras AdaptiveMaxPooling2D has no return_indices (it returns the values only)"
        for n, o in zip(in_shape[1:], _adaptive_size(s, in_shape[1:]), strict=True):
            if -(-n // o) + 1 > n:  # Keras' "big" window, ceil(n / o) + 1 cells, is longer than the input
                return (f"Keras {keras.__version__} AdaptiveMaxPooling2D max-pools with a window of ceil({n}/{o}) + 1 "
                        f"> {n} cells here (an empty VALID pool), and its gradient then holds uninitialised values")
    return None


def _keras_convention(s: LayerSpec) -> LayerSpec:
    """One spec with the reference's convention switches set to what Keras computes."""
    if s.kind == "batchnorm":
        return spec("batchnorm", **{**s.kwargs, "unbiased_running_var": False})
    if s.kind == "leakyrelu":
        return spec("leakyrelu", negative_slope=float(np.float32(s.kwargs["negative_slope"])))
    return s


def reference_case(case: Case) -> Case:
    """``case`` as Keras computes it: batch norm with the biased moving variance (``unbiased_running_var=False``),
    LeakyReLU with its slope rounded to float32 (see the module docstring)."""
    specs = tuple(_keras_convention(s) for s in case.specs)
    return dataclasses.replace(case, specs=specs) if specs != case.specs else case


# What Keras computes in float32 when given float64, per backend (measured: float32-level errors, ~1e-7, in
# ``cnnref verify``; the audit's probe keras-backend-float64): its ``keras.backend.result_type`` maps float64 to
# float32 on every backend but TensorFlow, and these ops cast to that type.
FLOAT32_IN_FLOAT64 = {
    "jax": {"globalavgpool": "GlobalAveragePooling2D (ops.mean)", "tanh": "tanh (ops.tanh)",
            "batchnorm (training)": "BatchNormalization", "batchnorm": "BatchNormalization"},
    "torch": {"linear": "Dense (ops.matmul)", "globalavgpool": "GlobalAveragePooling2D (ops.mean)",
              "batchnorm (training)": "BatchNormalization", "batchnorm": "BatchNormalization",
              "loss": "the cross-entropy"},
}


def dtype_reason(case: Case, dtype: str) -> str | None:
    """Why Keras on this backend cannot compute ``case`` in ``dtype`` (:data:`FLOAT32_IN_FLOAT64`), or None."""
    backend = keras.backend.backend()
    if dtype != "float64" or backend not in FLOAT32_IN_FLOAT64:
        return None
    table = FLOAT32_IN_FLOAT64[backend]
    kinds = [f"{s.kind} (training)" if s.kind == "batchnorm" and not case.eval_mode else s.kind for s in case.specs]
    kinds += ["loss"] if case.loss else []
    what = list(dict.fromkeys(table[kind] for kind in kinds if kind in table))
    if not what:
        return None
    return (f"Keras {keras.__version__} on {backend} computes float64 in float32 in {', '.join(what)}: "
            "keras.backend.result_type maps float64 to float32 off TensorFlow")


def unsupported(case: Case) -> str | None:
    """Why Keras cannot express ``case`` exactly, or None."""
    reason = cross_entropy_reason(case.loss_option) if case.loss_option is not None else None
    if reason is not None:
        return f"cross-entropy: {reason}"
    sample = case.input_shape if case.single else case.input_shape[1:]
    for i, s, in_shape, _ in _walk(case.specs, sample):
        reason = _reason(s, in_shape)
        if reason is not None:
            return f"layer {i} ({s.kind}): {reason}"
    return None
