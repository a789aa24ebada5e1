"""The layer kinds Keras builds: one :class:`KerasKind` record per kind in :data:`KERAS_KINDS`, the one place
the Keras entries dispatch on a spec's ``kind``.

A record holds the Keras layers computing a layer of the kind (``layers``), why Keras cannot compute it
exactly (``reason``), the spec with the reference's convention switches set to what Keras computes
(``convention``) and whether the last of its layers holds the spec's parameters (``owns_params``). The per-sample
shapes through a case are the reference's (:func:`comparisons.frameworks.keras3.capability._walk`), so a
record needs no shape rule of its own. The geometry helpers and the pooling plan (which Keras pooling has the
reference's windows and divisors) are here, shared by the reasons and the builders; they read the backend
Keras was imported with (``keras.backend.backend()``: where a backend computes otherwise than TensorFlow, the
reasons say so).

Adding a kind Keras expresses: its builder (its reason when Keras cannot express every spec of it, its
convention when Keras computes another of the reference's conventions) and one record in :data:`KERAS_KINDS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np

from comparisons.cases import LayerSpec, spec
from reference.conv import conv_pads
from reference.validation import as_pair
from reference.windows import output_size, overhang, pool_divisors

from .. import layouts
from .layers import ConstantPadding2D, FixedMaskDropout, ReflectionPadding2D, SlicePadding2D

Shape = tuple[int, ...]


@dataclass(frozen=True)
class KerasKind:
    """``name`` (the spec's ``kind``); ``layers(spec, dtype, in_shape)``: the Keras layers computing the layer,
    channels-last, on a per-sample input of reference shape ``in_shape`` (``(C, H, W)`` or ``(D,)``);
    ``reason(spec, in_shape)``: why Keras cannot compute it exactly, or None; ``convention(spec)``: the spec with
    the reference's convention switches set to what Keras computes; ``owns_params``: the last of its layers holds
    the spec's parameters (``"i.weight"``, ``"i.bias"``) and buffers."""

    name: str
    layers: Callable[[LayerSpec, str, Shape], list[keras.Layer]]
    reason: Callable[[LayerSpec, Shape], str | None] = lambda s, in_shape: None
    convention: Callable[[LayerSpec], LayerSpec] = lambda s: s
    owns_params: bool = False


# -- geometry --------------------------------------------------------------------------------------------------
def _pair(value, name: str, minimum: int = 1) -> tuple[int, int]:
    return as_pair(value, "frameworks.keras3", name, minimum)


def _fmt(dtype: str) -> dict[str, str]:
    """The channels-last data format and the dtype, the keyword arguments of every Keras image layer."""
    return {"data_format": "channels_last", "dtype": dtype}


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


def _pool_windows(s: LayerSpec, hw: Shape, average: bool) -> tuple[str | None, str]:
    """How Keras computes the pooling ``s`` (average pooling when ``average``, else max pooling) on an ``(H, W)``
    input: ``("valid" | "zeropad" | "infpad" | "same", "")``, or ``(None, reason)`` when no Keras pooling has the
    reference's windows and divisors.

    "valid": no padding and ``ceil_mode`` adds no window; "zeropad" (average pooling counting the
    padding): ``ZeroPadding2D`` + "valid"; "infpad" (max pooling): ``-inf`` padding + "valid";
    "same": TensorFlow's windows start at ``i * s - top`` with
    ``top`` of :func:`layouts.keras_same_padding`, pad with ``-inf`` (max) and divide by the cells
    inside the input (average), so they are the reference's when ``top == padding`` and the output
    sizes agree (and, for average pooling, when the reference's divisors are those counts).
    """
    kw = s.kwargs
    kernel, stride, padding = _pool_geometry(s)
    ceil = kw.get("ceil_mode", False)
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


# -- reasons ---------------------------------------------------------------------------------------------------
def _conv_reason(s: LayerSpec, in_shape: Shape) -> str | None:
    _, stride, dilation = _conv_geometry(s)
    if max(stride) > 1 and max(dilation) > 1:
        return (f"Keras Conv2D rejects strides > 1 together with dilation_rate > 1 (ValueError at construction); "
                f"got stride={stride}, dilation={dilation}")
    return None


def _maxpool_reason(s: LayerSpec, in_shape: Shape) -> str | None:
    kw = s.kwargs
    if _pair(kw.get("dilation", 1), "dilation") != (1, 1):
        return "Keras MaxPooling2D has no dilation"
    if kw.get("return_indices", False):
        return "Keras MaxPooling2D has no return_indices (it returns the values only)"
    return _pool_windows(s, in_shape[1:], average=False)[1] or None


def _avgpool_reason(s: LayerSpec, in_shape: Shape) -> str | None:
    if s.kwargs.get("divisor_override") is not None:
        return "Keras AveragePooling2D has no divisor_override"
    return _pool_windows(s, in_shape[1:], average=True)[1] or None


def _adaptivemaxpool_reason(s: LayerSpec, in_shape: Shape) -> str | None:
    if s.kwargs.get("return_indices", False):
        return "Keras AdaptiveMaxPooling2D has no return_indices (it returns the values only)"
    for n, o in zip(in_shape[1:], _adaptive_size(s, in_shape[1:]), strict=True):
        if -(-n // o) + 1 > n:  # Keras' "big" window, ceil(n / o) + 1 cells, is longer than the input
            return (f"Keras {keras.__version__} AdaptiveMaxPooling2D max-pools with a window of ceil({n}/{o}) + 1 "
                    f"> {n} cells here (an empty VALID pool), and its gradient then holds uninitialised values")
    return None


# -- conventions -----------------------------------------------------------------------------------------------
def _batchnorm_convention(s: LayerSpec) -> LayerSpec:
    """Keras folds the biased batch variance into the moving variance: ``unbiased_running_var=False``."""
    return spec("batchnorm", **{**s.kwargs, "unbiased_running_var": False})


def _leakyrelu_convention(s: LayerSpec) -> LayerSpec:
    """TensorFlow's ``LeakyRelu`` takes its slope as a float32 attribute: the slope rounded to float32."""
    return spec("leakyrelu", negative_slope=float(np.float32(s.kwargs["negative_slope"])))


# -- builders --------------------------------------------------------------------------------------------------
# Weights start as zeros (the reference's parameters are assigned before any use): random initialisers would cost
# a compilation per weight shape on the JAX backend.
def _conv_padding(s: LayerSpec, dtype: str, pads, same: bool) -> list[keras.Layer]:
    """The padding layer before a convolution: none when Keras' "same" pads ``pads`` or there is no padding,
    else one for the spec's ``padding_mode``."""
    mode = s.kwargs.get("padding_mode", "zeros")
    if same or pads == ((0, 0), (0, 0)):
        return []
    if mode == "reflect":
        return [ReflectionPadding2D(pads, dtype=dtype)]
    if mode in ("replicate", "circular"):
        return [SlicePadding2D(pads, mode, dtype=dtype)]
    return [keras.layers.ZeroPadding2D(pads, **_fmt(dtype))]


def _conv_layers(s: LayerSpec, dtype: str, in_shape: Shape) -> list[keras.Layer]:
    """Padding (when "same" is not the reference's), then Conv2D, or DepthwiseConv2D when groups == C."""
    kw = s.kwargs
    kernel, stride, dilation = _conv_geometry(s)
    pads = conv_pads(kw["padding"], kernel, stride, dilation)
    same = (kw.get("padding_mode", "zeros") == "zeros"
            and pads == layouts.keras_same_padding(in_shape[1:], kernel, stride, dilation))
    geometry = {"strides": kw["stride"], "padding": "same" if same else "valid", "dilation_rate": kw["dilation"],
                "use_bias": kw["bias"], **_fmt(dtype)}
    pad, groups = _conv_padding(s, dtype, pads, same), kw.get("groups", 1)
    if groups > 1 and groups == kw["in_channels"]:  # depthwise: DepthwiseConv2D, kernel (kh, kw, C, m)
        return [*pad, keras.layers.DepthwiseConv2D(kw["kernel_size"], depth_multiplier=kw["out_channels"] // groups,
                                                   depthwise_initializer="zeros", bias_initializer="zeros",
                                                   **geometry)]
    return [*pad, keras.layers.Conv2D(kw["out_channels"], kw["kernel_size"], groups=groups,
                                      kernel_initializer="zeros", bias_initializer="zeros", **geometry)]


def _pool_layers(s: LayerSpec, dtype: str, in_shape: Shape, average: bool) -> list[keras.Layer]:
    """The pooling plan of :func:`_pool_windows` (not None: the kind's reason checked it) as Keras layers."""
    kernel, stride, padding = _pool_geometry(s)
    plan = _pool_windows(s, in_shape[1:], average)[0]
    pad = [keras.layers.ZeroPadding2D(layouts.padding_to_keras(padding), **_fmt(dtype))] if plan == "zeropad" else []
    if plan == "infpad":
        out = output_size(in_shape[1:], kernel, stride, padding, (1, 1), "frameworks.keras3",
                          s.kwargs.get("ceil_mode", False))
        extra = overhang(in_shape[1:], kernel, stride, padding, (1, 1), out)
        pads = tuple((p, p + e) for p, e in zip(padding, extra, strict=True))
        pad = [ConstantPadding2D(pads, -np.inf, dtype=dtype)]
    pool = keras.layers.AveragePooling2D if average else keras.layers.MaxPooling2D
    return [*pad, pool(kernel, stride, padding="same" if plan == "same" else "valid", **_fmt(dtype))]


def _maxpool_layers(s: LayerSpec, dtype: str, in_shape: Shape) -> list[keras.Layer]:
    return _pool_layers(s, dtype, in_shape, average=False)


def _avgpool_layers(s: LayerSpec, dtype: str, in_shape: Shape) -> list[keras.Layer]:
    return _pool_layers(s, dtype, in_shape, average=True)


def _adaptiveavgpool_layers(s: LayerSpec, dtype: str, in_shape: Shape) -> list[keras.Layer]:
    return [keras.layers.AdaptiveAveragePooling2D(_adaptive_size(s, in_shape[1:]), **_fmt(dtype))]


def _adaptivemaxpool_layers(s: LayerSpec, dtype: str, in_shape: Shape) -> list[keras.Layer]:
    return [keras.layers.AdaptiveMaxPooling2D(_adaptive_size(s, in_shape[1:]), **_fmt(dtype))]


def _globalmaxpool_layers(s: LayerSpec, dtype: str, in_shape: Shape) -> list[keras.Layer]:
    return [keras.layers.GlobalMaxPooling2D(**_fmt(dtype))]


def _globalavgpool_layers(s: LayerSpec, dtype: str, in_shape: Shape) -> list[keras.Layer]:
    return [keras.layers.GlobalAveragePooling2D(**_fmt(dtype))]


def _batchnorm_layers(s: LayerSpec, dtype: str, in_shape: Shape) -> list[keras.Layer]:
    """Keras' momentum weighs the old moving value: 1 - the reference's (and PyTorch's)."""
    kw = s.kwargs
    return [keras.layers.BatchNormalization(axis=-1, momentum=1.0 - kw["momentum"], epsilon=kw["eps"], dtype=dtype)]


def _dropout_layers(s: LayerSpec, dtype: str, in_shape: Shape) -> list[keras.Layer]:
    return [FixedMaskDropout(s.kwargs["p"], dtype=dtype)]


def _relu_layers(s: LayerSpec, dtype: str, in_shape: Shape) -> list[keras.Layer]:
    return [keras.layers.ReLU(dtype=dtype)]


def _leakyrelu_layers(s: LayerSpec, dtype: str, in_shape: Shape) -> list[keras.Layer]:
    return [keras.layers.LeakyReLU(negative_slope=s.kwargs["negative_slope"], dtype=dtype)]


def _sigmoid_layers(s: LayerSpec, dtype: str, in_shape: Shape) -> list[keras.Layer]:
    return [keras.layers.Activation("sigmoid", dtype=dtype)]


def _tanh_layers(s: LayerSpec, dtype: str, in_shape: Shape) -> list[keras.Layer]:
    return [keras.layers.Activation("tanh", dtype=dtype)]


def _flatten_layers(s: LayerSpec, dtype: str, in_shape: Shape) -> list[keras.Layer]:
    return [keras.layers.Flatten(**_fmt(dtype))]


def _linear_layers(s: LayerSpec, dtype: str, in_shape: Shape) -> list[keras.Layer]:
    kw = s.kwargs
    return [keras.layers.Dense(kw["out_features"], use_bias=kw["bias"], kernel_initializer="zeros",
                               bias_initializer="zeros", dtype=dtype)]


KERAS_KINDS: dict[str, KerasKind] = {k.name: k for k in (
    KerasKind("conv", _conv_layers, _conv_reason, owns_params=True),
    KerasKind("maxpool", _maxpool_layers, _maxpool_reason),
    KerasKind("avgpool", _avgpool_layers, _avgpool_reason),
    KerasKind("adaptiveavgpool", _adaptiveavgpool_layers),
    KerasKind("adaptivemaxpool", _adaptivemaxpool_layers, _adaptivemaxpool_reason),
    KerasKind("globalmaxpool", _globalmaxpool_layers),
    KerasKind("globalavgpool", _globalavgpool_layers),
    KerasKind("batchnorm", _batchnorm_layers, convention=_batchnorm_convention, owns_params=True),
    KerasKind("dropout", _dropout_layers),
    KerasKind("relu", _relu_layers),
    KerasKind("leakyrelu", _leakyrelu_layers, convention=_leakyrelu_convention),
    KerasKind("sigmoid", _sigmoid_layers),
    KerasKind("tanh", _tanh_layers),
    KerasKind("flatten", _flatten_layers),
    KerasKind("linear", _linear_layers, owns_params=True),
)}


def keras_kind(name: str) -> KerasKind:
    """The record of kind ``name``; ValueError when Keras builds no layer of that kind."""
    if name not in KERAS_KINDS:
        raise ValueError(f"frameworks.keras3: unknown layer kind {name!r}")
    return KERAS_KINDS[name]
