"""The layer kinds Keras builds: one :class:`KerasKind` record per kind in :data:`KERAS_KINDS`, the one place
the Keras entries dispatch on a spec's ``kind``.

A record holds the Keras layers computing a layer of the kind (``layers``), why Keras cannot compute it
exactly (``reason``), the spec with the reference's convention switches set to what Keras computes
(``convention``) and which of its layers holds the spec's parameters (``owns_params``, ``owner``). The per-sample
shapes through a case are the reference's (:func:`comparisons.frameworks.keras3.capability._walk`), so a
record needs no shape rule of its own. The geometry helpers and the pooling plan (which Keras pooling has the
reference's windows and divisors) are here, shared by the reasons and the builders; they read the backend
Keras was imported with (``keras.backend.backend()``: where a backend computes otherwise than TensorFlow, the
reasons say so).

Adding a kind Keras expresses: its builder (its reason when Keras cannot express every spec of it, its
convention when Keras computes another of the reference's conventions) and one record in :data:`KERAS_KINDS`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np

from comparisons.cases import LayerSpec, spec
from reference.conv import conv_pads
from reference.upsample import Upsample
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
    the reference's convention switches set to what Keras computes; ``owns_params``: one of its layers (index
    ``owner`` into ``layers``, the last by default) holds the spec's parameters (``"i.weight"``, ``"i.bias"``) and
    buffers."""

    name: str
    layers: Callable[[LayerSpec, str, Shape], list[keras.Layer]]
    reason: Callable[[LayerSpec, Shape], str | None] = lambda s, in_shape: None
    convention: Callable[[LayerSpec], LayerSpec] = lambda s: s
    owns_params: bool = False
    owner: int = -1


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


def _channels_last_axis(dim: int, ndim: int) -> int:
    """The axis of the channels-last batch holding axis ``dim`` of the reference's ``ndim``-d batch (N, C, H, W ->
    N, H, W, C; a flat ``(N, D)`` batch is unchanged)."""
    dim %= ndim
    return {0: 0, 1: 3, 2: 1, 3: 2}[dim] if ndim == 4 else dim


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


def _convtranspose_geometry(s: LayerSpec) -> tuple[tuple[int, int], ...]:
    """``(kernel, stride, padding, output_padding, dilation)`` of a transposed conv spec as pairs."""
    kw = s.kwargs
    return (_pair(kw["kernel_size"], "kernel_size"), _pair(kw.get("stride", 1), "stride"),
            _pair(kw.get("padding", 0), "padding", 0), _pair(kw.get("output_padding", 0), "output_padding", 0),
            _pair(kw.get("dilation", 1), "dilation"))


def _convtranspose_reason(s: LayerSpec, in_shape: Shape) -> str | None:
    _, stride, _, extra, dilation = _convtranspose_geometry(s)
    groups = s.kwargs.get("groups", 1)
    if groups > 1:
        return f"Keras Conv2DTranspose has no groups (no grouped transposed convolution); got groups={groups}"
    if max(stride) > 1 and max(dilation) > 1:
        return (f"Keras Conv2DTranspose rejects strides > 1 together with dilation_rate > 1 (ValueError at "
                f"construction); got stride={stride}, dilation={dilation}")
    if any(e >= st for e, st in zip(extra, stride, strict=True)):
        return (f"Keras Conv2DTranspose requires output_padding < strides on each axis (ValueError at "
                f"construction; PyTorch also allows output_padding < dilation); got output_padding={extra}, "
                f"stride={stride}, dilation={dilation}")
    return None


def _layernorm_axes(s: LayerSpec, in_shape: Shape) -> list[int]:
    """The channels-last axes of the batch holding the reference's trailing ``normalized_shape`` axes, sorted."""
    normalized = s.kwargs["normalized_shape"]
    count = 1 if isinstance(normalized, int) else len(normalized)
    ndim = len(in_shape) + 1
    return sorted(_channels_last_axis(a, ndim) for a in range(ndim - count, ndim))


def _layernorm_reason(s: LayerSpec, in_shape: Shape) -> str | None:
    axes = _layernorm_axes(s, in_shape)
    ndim = len(in_shape) + 1
    if keras.backend.backend() == "torch" and axes != list(range(ndim - len(axes), ndim)):
        return (f"Keras {keras.__version__} on torch hands LayerNormalization's axes to "
                "torch.nn.functional.layer_norm as the trailing ones: axes that are not trailing channels-last "
                f"({axes} of a rank-{ndim} batch here) raise RuntimeError ('Given normalized_shape=..., expected "
                "input with shape [*, ...]')")
    return None


def _upsample_keras_spec(s: LayerSpec, hw: Shape) -> dict:
    """The reference ``Upsample`` arguments of what Keras computes for ``s`` on an ``(H, W)`` input: the output size
    (Keras resizes with the scale ``in / out``, half-pixel centres), ``"nearest-exact"`` for the nearest modes
    (Keras' ``"nearest"``: ``floor((o + 0.5) * in / out)``), ``"bilinear"`` with ``align_corners=False``."""
    kw = s.kwargs
    bilinear = kw["mode"] == "bilinear"
    return {"size": Upsample(**kw).output_hw(hw), "mode": "bilinear" if bilinear else "nearest-exact",
            "align_corners": False if bilinear else None}


def _same_plans(a, b) -> bool:
    """Two ``Upsample.plans`` read the same cells with the same weights."""
    return all((x is None and y is None) or (x is not None and y is not None and np.array_equal(x, y))
               for pa, pb in zip(a, b, strict=True) for x, y in zip(pa, pb, strict=True))


def _upsample_reason(s: LayerSpec, in_shape: Shape) -> str | None:
    """Keras resizes at half-pixel centres with the scale ``in / out`` (``Resizing``, ``UpSampling2D``, both through
    ``keras.ops.image.resize`` or a repeat): what the reference's plan of ``s`` must equal, cell for cell and weight
    for weight."""
    kw, hw = s.kwargs, in_shape[1:]
    if kw.get("align_corners"):
        return ("Keras' Resizing and UpSampling2D have no align_corners=True (they interpolate at half-pixel "
                "centres: align_corners=False)")
    keras_kw = _upsample_keras_spec(s, hw)
    if _same_plans(Upsample(**kw).plans(hw, np.float64), Upsample(**keras_kw).plans(hw, np.float64)):
        return None
    if kw["mode"] == "nearest":
        return (f"Keras' nearest resizing is PyTorch's nearest-exact (floor((o + 0.5) * in / out)); PyTorch's "
                f"nearest (floor(o * scale)) reads other input cells here ({hw} -> {keras_kw['size']}, "
                f"scale_factor={kw.get('scale_factor')})")
    return (f"Keras resizes with the scale in / out (PyTorch's recompute_scale_factor=True); PyTorch's "
            f"1 / scale_factor reads other input cells or weights here ({hw} -> {keras_kw['size']}, "
            f"scale_factor={kw.get('scale_factor')})")


# -- conventions -----------------------------------------------------------------------------------------------
def _batchnorm_convention(s: LayerSpec) -> LayerSpec:
    """Keras folds the biased batch variance into the moving variance: ``unbiased_running_var=False``."""
    return spec("batchnorm", **{**s.kwargs, "unbiased_running_var": False})


def _hardsigmoid_convention(s: LayerSpec) -> LayerSpec:
    """Keras' ``hard_sigmoid`` on torch is ``torch.nn.functional.hardsigmoid``, whose CPU backward multiplies by
    ``1/6`` rounded to float32 in every dtype (``float32_slope=True``); TensorFlow's and JAX's
    (``relu6(x + 3) / 6``) differentiate to the exact ``1/6``, the reference's default."""
    return spec("hardsigmoid", float32_slope=True) if keras.backend.backend() == "torch" else s


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


def _convtranspose_layers(s: LayerSpec, dtype: str, in_shape: Shape) -> list[keras.Layer]:
    """``Conv2DTranspose`` with ``padding="valid"`` (kernel ``(kh, kw, F, C)``), then the reference's padding
    cropped from both sides of each axis (``Cropping2D``): PyTorch's output is the full transposed convolution,
    ``output_padding`` cells longer at the bottom/right, less ``padding`` cells on each side."""
    kw = s.kwargs
    kernel, stride, padding, extra, dilation = _convtranspose_geometry(s)
    conv = keras.layers.Conv2DTranspose(kw["out_channels"], kernel, strides=stride, padding="valid",
                                        output_padding=extra if any(extra) else None, dilation_rate=dilation,
                                        use_bias=kw.get("bias", True), kernel_initializer="zeros",
                                        bias_initializer="zeros", **_fmt(dtype))
    if padding == (0, 0):
        return [conv]
    return [conv, keras.layers.Cropping2D(layouts.padding_to_keras(padding), **_fmt(dtype))]


def _upsample_layers(s: LayerSpec, dtype: str, in_shape: Shape) -> list[keras.Layer]:
    """``UpSampling2D(size=factors)`` for integer scale factors (a repeat for nearest, ``keras.ops.image.resize``
    for bilinear), else ``Resizing(out_h, out_w)`` (``keras.ops.image.resize``, no antialiasing, no crop)."""
    kw = s.kwargs
    interpolation = "bilinear" if kw["mode"] == "bilinear" else "nearest"
    factor = kw.get("scale_factor")
    factors = (factor, factor) if isinstance(factor, (int, float)) else factor
    if factors is not None and all(float(f).is_integer() for f in factors):
        return [keras.layers.UpSampling2D(tuple(int(f) for f in factors), interpolation=interpolation,
                                          **_fmt(dtype))]
    height, width = _upsample_keras_spec(s, in_shape[1:])["size"]
    return [keras.layers.Resizing(height, width, interpolation=interpolation, **_fmt(dtype))]


def _layernorm_layers(s: LayerSpec, dtype: str, in_shape: Shape) -> list[keras.Layer]:
    """``LayerNormalization`` over the channels-last axes of the reference's trailing ``normalized_shape`` axes
    (sorted: its parameters then have those axes' channels-last order, ``(H, W, C)`` for a whole map);
    ``elementwise_affine=False``: ``center=False, scale=False``; ``bias=False``: ``center=False``."""
    kw = s.kwargs
    affine = kw.get("elementwise_affine", True)
    return [keras.layers.LayerNormalization(axis=_layernorm_axes(s, in_shape), epsilon=kw.get("eps", 1e-5),
                                            scale=affine, center=affine and kw.get("bias", True), dtype=dtype)]


def _groupnorm_layers(s: LayerSpec, dtype: str, in_shape: Shape) -> list[keras.Layer]:
    kw = s.kwargs
    affine = kw.get("affine", True)
    return [keras.layers.GroupNormalization(kw["num_groups"], axis=-1, epsilon=kw.get("eps", 1e-5), center=affine,
                                            scale=affine, dtype=dtype)]


def _gelu_layers(s: LayerSpec, dtype: str, in_shape: Shape) -> list[keras.Layer]:
    """``keras.activations.gelu(approximate=...)``: ``"tanh"`` is Keras' default ``approximate=True``."""
    approximate = s.kwargs.get("approximate", "none") == "tanh"
    return [keras.layers.Activation(functools.partial(keras.activations.gelu, approximate=approximate), dtype=dtype)]


def _softmax_layers(s: LayerSpec, dtype: str, in_shape: Shape) -> list[keras.Layer]:
    """``Softmax`` along the channels-last axis of the reference's ``dim`` (which counts the batch axis)."""
    return [keras.layers.Softmax(axis=_channels_last_axis(s.kwargs.get("dim", 1), len(in_shape) + 1), dtype=dtype)]


def _hardsigmoid_layers(s: LayerSpec, dtype: str, in_shape: Shape) -> list[keras.Layer]:
    return [keras.layers.Activation("hard_sigmoid", dtype=dtype)]


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
    KerasKind("convtranspose", _convtranspose_layers, _convtranspose_reason, owns_params=True, owner=0),
    KerasKind("upsample", _upsample_layers, _upsample_reason),
    KerasKind("layernorm", _layernorm_layers, _layernorm_reason, owns_params=True),
    KerasKind("groupnorm", _groupnorm_layers, owns_params=True),
    KerasKind("gelu", _gelu_layers),
    KerasKind("softmax", _softmax_layers),
    KerasKind("hardsigmoid", _hardsigmoid_layers, convention=_hardsigmoid_convention),
)}


def keras_kind(name: str) -> KerasKind:
    """The record of kind ``name``; ValueError when Keras builds no layer of that kind."""
    if name not in KERAS_KINDS:
        raise ValueError(f"frameworks.keras3: unknown layer kind {name!r}")
    return KERAS_KINDS[name]
