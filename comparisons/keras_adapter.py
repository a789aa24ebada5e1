"""Keras 3 (TensorFlow backend) side of the harness: the case's model as Keras layers, same parameters.

Keras is channels-last, so every array crosses :mod:`comparisons.layouts` on the way in
and on the way out: inputs and ``dout`` NCHW -> NHWC, conv kernels OIHW -> HWIO, dense
rows after a Flatten from ``C, H, W`` to ``H, W, C`` order; results back the other way.
Convolution padding is Keras' ``padding="same"`` when the reference's ``((top, bottom), (left,
right))`` equals what "same" pads (``layouts.keras_same_padding``, at any stride), else explicit
(``ZeroPadding2D`` + ``padding="valid"``); ``padding_mode="reflect"`` is ``keras.ops.pad(mode=
"reflect")`` in a layer (:class:`ReflectionPadding2D`; Keras has no such layer); ``"replicate"``
and ``"circular"`` gather the border cells (:class:`SlicePadding2D`: TensorFlow's pad has no edge or
wrap mode). Max pooling pads
with ``-inf``, which zero padding cannot express: it is run with ``padding="same"`` (TensorFlow
ignores the padded cells) when "same" has the reference's windows (also under ``ceil_mode``), else
as ``keras.ops.pad`` with ``-inf`` in a layer (:class:`ConstantPadding2D`, the ``ceil_mode``
overhang included) and "valid" pooling, what a user porting the model would write. Average
pooling pads with ``ZeroPadding2D`` (padded zeros counted, ``count_include_pad=True``), or is
"same" pooling (TensorFlow divides by the cells inside the
input) when that has the reference's windows and divisors.

Batch norm: Keras' ``momentum`` is the weight of the old running value (``1 - momentum`` of the
reference and PyTorch), its ``epsilon`` is ``eps``, and it folds the *biased* batch variance into
the moving variance, so the reference runs with ``unbiased_running_var=False`` against Keras
(:func:`reference_case`). TensorFlow's ``LeakyRelu`` op takes its slope as a float32 attribute, so
in float64 too Keras multiplies by ``float32(negative_slope)`` (0.01 -> 0.009999999776482582); the
reference is given that slope, so both compute the same function. The model runs with
``training=True`` unless the case is in eval mode.
Dropout in training mode applies the reference's keep-mask (``x * mask / (1 - rate)``, what
``keras.layers.Dropout`` computes with its own mask); in inference mode it is ``keras.layers.Dropout``.

Cross-entropy options (:func:`keras_cross_entropy`), the class axis moved last (Keras' TensorFlow
backend supports only ``axis=-1``):
- class indices, no smoothing: ``SparseCategoricalCrossentropy(from_logits=True, ignore_class=...)``;
  its mean (``"sum_over_batch_size"``) divides by the non-ignored count, as PyTorch's. Class
  weights: ``sample_weight = weight[target]`` with ``reduction="mean_with_sample_weight"``
  (divides by the summed sample weights, as PyTorch's weighted mean).
- class indices with smoothing: one-hot targets and ``CategoricalCrossentropy(label_smoothing=ls)``
  (the sparse loss has no ``label_smoothing``); ignored positions get ``sample_weight`` 0 and the
  mean ``"mean_with_sample_weight"``. Keras smooths ``y * (1 - ls) + ls / C``, PyTorch's formula.
- probabilities: ``CategoricalCrossentropy(label_smoothing=ls)``, mean over the positions.
- no equivalent: class weights together with label smoothing or with probability targets (Keras
  weights a whole sample; PyTorch weights each class inside the smoothed / probability target).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Iterator

import numpy as np

from . import layouts
from .cases import Case, LayerSpec, spec
from .frameworks import quiet_tensorflow

quiet_tensorflow()
# TensorFlow prints its oneDNN banner through absl before TF_CPP_MIN_LOG_LEVEL is honoured;
# without oneDNN it prints nothing, and the CPU kernels left (Eigen) support float64 throughout.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import keras  # noqa: E402  (after the environment above)
import tensorflow as tf  # noqa: E402

from reference.conv import conv_pads  # noqa: E402
from reference.validation import as_pair  # noqa: E402
from reference.windows import output_size, overhang, pool_divisors  # noqa: E402

tf.get_logger().setLevel("ERROR")


def oihw_to_keras_depthwise(w: np.ndarray, in_channels: int) -> np.ndarray:
    """Depthwise kernel ``(C*m, 1, kh, kw)`` (PyTorch, groups = C) -> Keras ``DepthwiseConv2D`` ``(kh, kw, C, m)``.

    Output channel ``c*m + j`` of both is the ``j``-th filter of input channel ``c``.
    """
    if w.ndim != 4 or w.shape[1] != 1 or w.shape[0] % in_channels:
        raise ValueError(f"oihw_to_keras_depthwise: w must have shape (C*m, 1, kh, kw) with C={in_channels}, "
                         f"got shape {w.shape}")
    f, _, kh, kw = w.shape
    return w.reshape(in_channels, f // in_channels, kh, kw).transpose(2, 3, 0, 1)


def keras_depthwise_to_oihw(k: np.ndarray) -> np.ndarray:
    """Inverse of :func:`oihw_to_keras_depthwise`: ``(kh, kw, C, m)`` -> ``(C*m, 1, kh, kw)``."""
    if k.ndim != 4:
        raise ValueError(f"keras_depthwise_to_oihw: k must have shape (kh, kw, C, m), got shape {k.shape}")
    kh, kw, c, m = k.shape
    return k.transpose(2, 3, 0, 1).reshape(c * m, 1, kh, kw)

ELEMENTWISE = ("relu", "leakyrelu", "sigmoid", "tanh", "batchnorm", "dropout")

name = "keras"
version = f"keras {keras.__version__} / tensorflow {tf.__version__}"

Shape = tuple[int, ...]


def _hwc(chw: Shape) -> Shape:
    """A feature map's ``(C, H, W)`` shape written channels-last, ``(H, W, C)``."""
    c, h, w = chw
    return (h, w, c)


def _pair(value, name: str, minimum: int = 1) -> tuple[int, int]:
    return as_pair(value, "keras_adapter", name, minimum)


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
    out = output_size(hw, kernel, stride, padding, (1, 1), "keras_adapter", ceil)
    floor_out = output_size(hw, kernel, stride, padding, (1, 1), "keras_adapter")
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
    return "same", ""


def _walk(specs: tuple[LayerSpec, ...], sample_shape: Shape) -> Iterator[tuple[int, LayerSpec, Shape, Shape]]:
    """Yield ``(index, spec, in_shape, out_shape)`` with per-sample reference shapes ``(C, H, W)`` or ``(D,)``."""
    shape = tuple(sample_shape)
    for i, s in enumerate(specs):
        kw = s.kwargs
        if s.kind == "conv":
            kernel, stride, dilation = _conv_geometry(s)
            hw = output_size(shape[1:], kernel, stride, conv_pads(kw["padding"], kernel, stride, dilation),
                             dilation, "keras_adapter")
            out = (kw["out_channels"], *hw)
        elif s.kind in ("maxpool", "avgpool"):
            kernel, stride, padding = _pool_geometry(s)
            dilation = _pair(kw.get("dilation", 1), "dilation")
            out = (shape[0], *output_size(shape[1:], kernel, stride, padding, dilation, "keras_adapter",
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
        elif s.kind in ELEMENTWISE:
            out = shape
        else:
            raise ValueError(f"keras_adapter: unknown layer kind {s.kind!r}")
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


KERAS_REDUCTION = {"mean": "sum_over_batch_size", "sum": "sum", "none": "none"}


def cross_entropy_reason(option) -> str | None:
    """Why Keras cannot compute the cross-entropy ``option``, or None."""
    if option.weight and (option.label_smoothing or option.target == "prob"):
        return ("no Keras equivalent of class weights with label smoothing or probability targets: Keras weights "
                "whole samples (sample_weight), PyTorch weights classes inside the smoothed / probability target")
    return None


def keras_cross_entropy(option, target: np.ndarray, weight: np.ndarray | None, dtype: str):
    """``(loss object, y_true, sample_weight)`` computing the cross-entropy ``option``
    (:class:`~comparisons.cases_options.CrossEntropyOption`) in Keras on class-last logits. ``target``:
    class indices ``(N, d1, ...)`` or probabilities ``(N, C, d1, ...)`` in the reference layout. Raises
    ValueError with :func:`cross_entropy_reason` when Keras has no equivalent."""
    reason = cross_entropy_reason(option)
    if reason is not None:
        raise ValueError(f"keras_cross_entropy: {reason}")
    weighted = "mean_with_sample_weight" if option.reduction == "mean" else option.reduction
    if option.target == "prob":
        loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=option.label_smoothing,
                                                    reduction=KERAS_REDUCTION[option.reduction], dtype=dtype)
        return loss, np.moveaxis(target, 1, -1), None
    counted = target != (-100 if option.ignore is None else option.ignore)
    if option.label_smoothing:
        n_classes = option.scores_shape[1]
        onehot = np.eye(n_classes, dtype=dtype)[np.where(counted, target, 0)] * counted[..., None]
        loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=option.label_smoothing,
                                                    reduction=weighted, dtype=dtype)
        return loss, onehot, counted.astype(dtype)
    if weight is None:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=option.ignore,
                                                          reduction=KERAS_REDUCTION[option.reduction], dtype=dtype)
        return loss, target, None
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=option.ignore,
                                                      reduction=weighted, dtype=dtype)
    return loss, target, np.where(counted, weight[np.where(counted, target, 0)], 0).astype(dtype)


def reference_case(case: Case) -> Case:
    """``case`` as Keras computes it: batch norm with the biased moving variance (``unbiased_running_var=False``),
    LeakyReLU with its slope rounded to float32 (see the module docstring)."""
    specs = tuple(_keras_convention(s) for s in case.specs)
    return dataclasses.replace(case, specs=specs) if specs != case.specs else case


class ReflectionPadding2D(keras.layers.Layer):
    """PyTorch's ``padding_mode="reflect"`` for channels-last images: ``keras.ops.pad(x, ..., mode="reflect")``
    with ``pads = ((top, bottom), (left, right))`` (TensorFlow's MirrorPad; its gradient folds back)."""

    def __init__(self, pads, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pads = tuple(tuple(p) for p in pads)

    def call(self, inputs):
        return keras.ops.pad(inputs, ((0, 0), *self.pads, (0, 0)), mode="reflect")


class SlicePadding2D(keras.layers.Layer):
    """PyTorch's ``padding_mode="replicate"`` or ``"circular"`` for channels-last images, built from slices
    and ``keras.ops.concatenate`` (TensorFlow's pad has no edge or wrap mode): replicate repeats the edge
    row/column, circular wraps the other side around; ``pads = ((top, bottom), (left, right))``. The
    gradient of the concatenation folds each border cell back onto the cell it copied."""

    def __init__(self, pads, mode: str, **kwargs) -> None:
        super().__init__(**kwargs)
        if mode not in ("replicate", "circular"):
            raise ValueError(f"SlicePadding2D: mode must be 'replicate' or 'circular', got {mode!r}")
        self.pads, self.mode = tuple(tuple(p) for p in pads), mode

    def _pad_axis(self, x, axis: int, before: int, after: int):
        n = x.shape[axis]
        if self.mode == "replicate":
            index = np.r_[np.zeros(before, int), np.arange(n), np.full(after, n - 1)]
        else:
            index = np.r_[np.arange(n - before, n), np.arange(n), np.arange(after)] % n
        return x if before == after == 0 else keras.ops.take(x, index, axis=axis)

    def call(self, inputs):
        (top, bottom), (left, right) = self.pads
        return self._pad_axis(self._pad_axis(inputs, 1, top, bottom), 2, left, right)


class ConstantPadding2D(keras.layers.Layer):
    """Pad channels-last images with ``value`` (``-inf`` for max pooling: padding never wins the max):
    ``keras.ops.pad(x, ..., constant_values=value)`` with ``pads = ((top, bottom), (left, right))``."""

    def __init__(self, pads, value: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pads, self.value = tuple(tuple(p) for p in pads), float(value)

    def call(self, inputs):
        return keras.ops.pad(inputs, ((0, 0), *self.pads, (0, 0)), mode="constant", constant_values=self.value)


class FixedMaskDropout(keras.layers.Dropout):
    """``keras.layers.Dropout`` whose training-mode keep-mask is given: ``keep_mask`` (channels-last,
    batched, set before the call) -> ``x * keep_mask / (1 - rate)``. Inference mode is Dropout's own."""

    keep_mask: np.ndarray | None = None

    def call(self, inputs, training=False):
        if not training:
            return super().call(inputs, training=False)
        if self.keep_mask is None:
            raise ValueError("FixedMaskDropout: training-mode call without a keep_mask")
        return inputs * keras.ops.cast(self.keep_mask, inputs.dtype) / (1.0 - self.rate)


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


class KerasModel:
    """The layers of a case in Keras (channels-last) and where each reference parameter lives.

    Call it on an NHWC (or ``(N, D)``) tensor. :meth:`load` assigns reference-layout parameters,
    :meth:`param_from_keras` turns a Keras-layout parameter (or its gradient) back, :meth:`export`
    returns every parameter in the reference layout.
    """

    def __init__(self, specs: tuple[LayerSpec, ...], sample_shape: Shape, dtype: str) -> None:
        self.sample_shape = tuple(sample_shape)
        self.layers: list[keras.Layer] = []
        self.owners: dict[int, keras.Layer] = {}  # spec index -> the layer holding "i.weight"/"i.bias"
        self.dense_features: dict[int, Shape] = {}  # linear index -> (C, H, W) its input was flattened from
        self.dropouts: dict[int, tuple[FixedMaskDropout, Shape | None]] = {}  # index -> layer, flattened from
        flat_from = None
        for i, s, in_shape, _ in _walk(specs, sample_shape):
            reason = _reason(s, in_shape)
            if reason is not None:
                raise ValueError(f"keras_adapter: layer {i} ({s.kind}) cannot be built: {reason}")
            self.layers += self._layers(s, dtype, in_shape)
            if s.kind in ("conv", "linear", "batchnorm"):
                self.owners[i] = self.layers[-1]
            if s.kind == "dropout":
                self.dropouts[i] = (self.layers[-1], flat_from if len(in_shape) == 1 else None)
            if s.kind == "flatten" and len(in_shape) == 3:
                flat_from = in_shape
            if s.kind == "linear":
                if flat_from is not None:
                    self.dense_features[i] = flat_from
                flat_from = None
        self.out_flat_from = flat_from  # the output is a channels-last Flatten of this (C, H, W) map
        self(tf.zeros(self.to_keras(np.zeros((1, *self.sample_shape))).shape, dtype=dtype))  # creates the weights

    @staticmethod
    def _layers(s: LayerSpec, dtype: str, in_shape: Shape) -> list[keras.Layer]:
        """The Keras layers computing one reference layer on a per-sample input of ``in_shape``, channels-last."""
        kw = s.kwargs
        fmt = {"data_format": "channels_last", "dtype": dtype}
        if s.kind == "conv":
            kernel, stride, dilation = _conv_geometry(s)
            pads = conv_pads(kw["padding"], kernel, stride, dilation)
            mode = kw.get("padding_mode", "zeros")
            same = mode == "zeros" and pads == layouts.keras_same_padding(in_shape[1:], kernel, stride, dilation)
            if same or pads == ((0, 0), (0, 0)):
                pad = []
            elif mode == "reflect":
                pad = [ReflectionPadding2D(pads, dtype=dtype)]
            elif mode in ("replicate", "circular"):
                pad = [SlicePadding2D(pads, mode, dtype=dtype)]
            else:
                pad = [keras.layers.ZeroPadding2D(pads, **fmt)]
            geometry = {"strides": kw["stride"], "padding": "same" if same else "valid",
                        "dilation_rate": kw["dilation"], "use_bias": kw["bias"], **fmt}
            groups = kw.get("groups", 1)
            if groups > 1 and groups == kw["in_channels"]:  # depthwise: DepthwiseConv2D, kernel (kh, kw, C, m)
                return pad + [keras.layers.DepthwiseConv2D(kw["kernel_size"], depth_multiplier=kw["out_channels"]
                                                           // groups, **geometry)]
            return pad + [keras.layers.Conv2D(kw["out_channels"], kw["kernel_size"], groups=groups, **geometry)]
        if s.kind in ("avgpool", "maxpool"):
            kernel, stride, padding = _pool_geometry(s)
            plan = _pool_windows(s, in_shape[1:])[0]  # not None: _reason checked it
            pad = [keras.layers.ZeroPadding2D(layouts.padding_to_keras(padding), **fmt)] if plan == "zeropad" else []
            if plan == "infpad":
                out = output_size(in_shape[1:], kernel, stride, padding, (1, 1), "keras_adapter",
                                  kw.get("ceil_mode", False))
                extra = overhang(in_shape[1:], kernel, stride, padding, (1, 1), out)
                pads = tuple((p, p + e) for p, e in zip(padding, extra, strict=True))
                pad = [ConstantPadding2D(pads, -np.inf, dtype=dtype)]
            pool = keras.layers.AveragePooling2D if s.kind == "avgpool" else keras.layers.MaxPooling2D
            return pad + [pool(kernel, stride, padding="same" if plan == "same" else "valid", **fmt)]
        if s.kind == "adaptiveavgpool":
            return [keras.layers.AdaptiveAveragePooling2D(_adaptive_size(s, in_shape[1:]), **fmt)]
        if s.kind == "adaptivemaxpool":
            return [keras.layers.AdaptiveMaxPooling2D(_adaptive_size(s, in_shape[1:]), **fmt)]
        if s.kind == "globalmaxpool":
            return [keras.layers.GlobalMaxPooling2D(**fmt)]
        if s.kind == "globalavgpool":
            return [keras.layers.GlobalAveragePooling2D(**fmt)]
        if s.kind == "batchnorm":
            # Keras' momentum weighs the old moving value: 1 - PyTorch's (see the module docstring)
            return [keras.layers.BatchNormalization(axis=-1, momentum=1.0 - kw["momentum"], epsilon=kw["eps"],
                                                    dtype=dtype)]
        if s.kind == "dropout":
            return [FixedMaskDropout(kw["p"], dtype=dtype)]
        if s.kind == "relu":
            return [keras.layers.ReLU(dtype=dtype)]
        if s.kind == "leakyrelu":
            return [keras.layers.LeakyReLU(negative_slope=kw["negative_slope"], dtype=dtype)]
        if s.kind in ("sigmoid", "tanh"):
            return [keras.layers.Activation(s.kind, dtype=dtype)]
        if s.kind == "flatten":
            return [keras.layers.Flatten(**fmt)]
        return [keras.layers.Dense(kw["out_features"], use_bias=kw["bias"], dtype=dtype)]

    def __call__(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        """The layers on ``x``; ``training`` as Keras' (batch statistics and masks when True)."""
        for layer in self.layers:
            x = layer(x, training=training)
        return x

    def set_masks(self, masks: dict[int, np.ndarray]) -> None:
        """Give each dropout layer (by spec index) its keep-mask, converted from the reference layout."""
        for i, mask in masks.items():
            layer, flat_from = self.dropouts[i]
            layer.keep_mask = layouts.flat_chw_to_hwc(mask, chw=flat_from) if flat_from else self.to_keras(mask)

    # -- layouts -------------------------------------------------------------
    @staticmethod
    def to_keras(x: np.ndarray) -> np.ndarray:
        """Batched input or input gradient: NCHW -> NHWC; ``(N, D)`` unchanged."""
        return layouts.nchw_to_nhwc(x) if x.ndim == 4 else x

    @staticmethod
    def from_keras(x: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`to_keras`."""
        return layouts.nhwc_to_nchw(x) if x.ndim == 4 else x

    def out_to_keras(self, a: np.ndarray) -> np.ndarray:
        """The model's output (or its gradient ``dout``) in reference layout -> Keras layout."""
        if self.out_flat_from is not None:
            return layouts.flat_chw_to_hwc(a, chw=self.out_flat_from)
        return self.to_keras(a)

    def out_from_keras(self, a: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`out_to_keras`."""
        if self.out_flat_from is not None:
            return layouts.flat_hwc_to_chw(a, hwc=_hwc(self.out_flat_from))
        return self.from_keras(a)

    @staticmethod
    def _variables(layer: keras.Layer) -> dict[str, keras.Variable]:
        """A Keras layer's variables under the reference's names (parameters, then batch norm's buffers)."""
        if isinstance(layer, keras.layers.BatchNormalization):
            return {"weight": layer.gamma, "bias": layer.beta, "running_mean": layer.moving_mean,
                    "running_var": layer.moving_variance}
        return {"weight": layer.kernel, **({"bias": layer.bias} if layer.bias is not None else {})}

    def _variable(self, key: str) -> keras.Variable:
        index, pname = key.split(".", 1)
        return self._variables(self.owners[int(index)])[pname]

    def param_to_keras(self, key: str, value: np.ndarray) -> np.ndarray:
        """A reference parameter (``"0.weight"`` OIHW or ``(in, out)``, biases) in Keras' layout."""
        index, pname = key.split(".", 1)
        layer = self.owners[int(index)]
        if pname == "weight" and isinstance(layer, keras.layers.DepthwiseConv2D):
            return oihw_to_keras_depthwise(value, value.shape[0] // layer.depth_multiplier)
        if pname == "weight" and isinstance(layer, keras.layers.Conv2D):
            return layouts.oihw_to_hwio(value)
        if pname == "weight" and int(index) in self.dense_features:
            return layouts.dense_rows_chw_to_hwc(value, chw=self.dense_features[int(index)])
        return value

    def param_from_keras(self, key: str, value: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`param_to_keras`."""
        index, pname = key.split(".", 1)
        layer = self.owners[int(index)]
        if pname == "weight" and isinstance(layer, keras.layers.DepthwiseConv2D):
            return keras_depthwise_to_oihw(value)
        if pname == "weight" and isinstance(layer, keras.layers.Conv2D):
            return layouts.hwio_to_oihw(value)
        if pname == "weight" and int(index) in self.dense_features:
            return layouts.dense_rows_hwc_to_chw(value, hwc=_hwc(self.dense_features[int(index)]))
        return value

    def load(self, params: dict[str, np.ndarray]) -> list[keras.Variable]:
        """Assign reference-layout ``params``; returns their Keras variables in the same order."""
        variables = []
        for key, value in params.items():
            variable = self._variable(key)
            variable.assign(self.param_to_keras(key, value))
            variables.append(variable)
        return variables

    def export(self) -> dict[str, np.ndarray]:
        """Every parameter back in the reference layout, keyed as the reference model's (``"0.weight"``)."""
        keys = [f"{i}.{p}" for i, layer in self.owners.items() for p in self._variables(layer)
                if p in ("weight", "bias")]
        return {key: self.param_from_keras(key, np.asarray(self._variable(key).numpy())) for key in keys}


@functools.lru_cache(maxsize=256)
def build(specs: tuple[LayerSpec, ...], sample_shape: Shape, dtype: str) -> KerasModel:
    """The Keras model of ``specs`` for per-sample input ``sample_shape``, built once per process."""
    return KerasModel(specs, sample_shape, dtype)


def run(case: Case, params: dict[str, np.ndarray], x: np.ndarray, dtype: str,
        dout: np.ndarray | None, labels: np.ndarray | None, buffers: dict[str, np.ndarray] | None = None,
        masks: dict[int, np.ndarray] | None = None, loss_args: dict | None = None) -> dict[str, np.ndarray]:
    """See :class:`comparisons.harness.Adapter`; every result is converted back to the reference layout."""
    option, loss_args = case.loss_option, loss_args or {}
    model = build(case.specs, tuple(x.shape[1:]), dtype)
    variables = model.load(params)
    model.load(buffers or {})
    model.set_masks(masks or {})
    xk = tf.constant(model.to_keras(x))
    with tf.GradientTape() as tape:
        tape.watch(xk)
        out = model(xk, training=not case.eval_mode)
        if labels is not None and option is None:
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype=dtype)(labels, out)
        elif labels is not None:
            loss_fn, y_true, sample_weight = keras_cross_entropy(option, labels, loss_args["weight"], dtype)
            logits = tf.transpose(out, (0, 2, 1)) if out.shape.rank == 3 else out  # classes last (NHWC already)
            loss = loss_fn(y_true, logits, sample_weight=sample_weight)
    results = {"forward": model.out_from_keras(out.numpy())}
    if labels is not None:
        results["loss"] = loss.numpy()
        dloss = tf.constant(loss_args.get("dloss", 1.0), dtype=dtype)
        grads = tape.gradient(loss, [xk, *variables], output_gradients=dloss)
    else:
        grads = tape.gradient(out, [xk, *variables], output_gradients=tf.constant(model.out_to_keras(dout)))
    results["dx"] = model.from_keras(grads[0].numpy())
    for key, grad in zip(params, grads[1:], strict=True):
        results[key] = model.param_from_keras(key, grad.numpy())
    for key in buffers or {}:
        results[key] = np.asarray(model._variable(key).numpy())
    return results
