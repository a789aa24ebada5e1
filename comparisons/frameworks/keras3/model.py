"""Keras 3 side of the harness: the case's model as Keras layers, same parameters, on the backend Keras was
imported with (TensorFlow, JAX or PyTorch; gradients through that backend's autodiff: :mod:`.gradients`). Each
layer kind's Keras layers are its record's in :data:`.kinds.KERAS_KINDS`.

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

Transposed conv: ``Conv2DTranspose`` (kernel ``(kh, kw, F, C)``: ``oihw_to_hwio`` of the reference's ``(C, F, kh,
kw)``), "valid", the reference's padding cropped (``Cropping2D``); resizing: ``UpSampling2D`` for integer factors,
else ``Resizing`` (half-pixel centres, scale ``in / out``); ``LayerNormalization`` over the channels-last axes of
the normalized ones (a whole map's parameters ``(H, W, C)``), ``GroupNormalization``, ``Softmax`` along the
channels-last axis of ``dim``: :mod:`.kinds`.

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

Binary cross-entropies: ``BinaryCrossentropy(from_logits=...)`` on the output moved back to the reference layout
with a trailing axis of length 1 (:func:`.losses.keras_binary_cross_entropy`: each element its own sample, so
every reduction and per-element weight is PyTorch's); no ``pos_weight``. On probabilities Keras clips to
``[1e-7, 1 - 1e-7]``: the reference runs with ``clip_epsilon=keras.config.epsilon()`` (:func:`.capability.
reference_case`).
"""

from __future__ import annotations

import functools

import keras
import numpy as np

from comparisons.cases import Case, LayerSpec
from comparisons.frameworks.protocol import RunInputs

from .. import layouts
from .capability import _walk
from .gradients import numpy, vjp
from .kinds import Shape
from .layers import FixedMaskDropout
from .losses import keras_binary_cross_entropy, keras_cross_entropy

if keras.backend.backend() == "tensorflow":
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")


def _hwc(chw: Shape) -> Shape:
    """A feature map's ``(C, H, W)`` shape written channels-last, ``(H, W, C)``."""
    c, h, w = chw
    return (h, w, c)


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
        for i, s, record, in_shape, _ in _walk(specs, sample_shape):
            reason = record.reason(s, in_shape)
            if reason is not None:
                raise ValueError(f"frameworks.keras3: layer {i} ({s.kind}) cannot be built: {reason}")
            built = record.layers(s, dtype, in_shape)
            self.layers += built
            if record.owns_params:
                self.owners[i] = built[record.owner]
            flat_from = self._track_flatten(i, self.layers[-1], in_shape, flat_from)
        self.out_flat_from = flat_from  # the output is a channels-last Flatten of this (C, H, W) map
        self(keras.ops.zeros(self.to_keras(np.zeros((1, *self.sample_shape))).shape, dtype=dtype))  # builds weights

    def _track_flatten(self, i: int, last: keras.Layer, in_shape: Shape, flat_from: Shape | None) -> Shape | None:
        """Where a channels-last Flatten's order reaches, by the Keras layer ``last`` built for spec ``i``: a Flatten
        of a ``(C, H, W)`` map starts it, a Dense consumes it (its kernel rows are permuted), a dropout on it takes
        its mask permuted. Returns the ``(C, H, W)`` map the current features were flattened from, or None."""
        if isinstance(last, FixedMaskDropout):
            self.dropouts[i] = (last, flat_from if len(in_shape) == 1 else None)
        if isinstance(last, keras.layers.Flatten) and len(in_shape) == 3:
            return in_shape
        if isinstance(last, keras.layers.Dense):
            if flat_from is not None:
                self.dense_features[i] = flat_from
            return None
        return flat_from

    def __call__(self, x, training: bool = False):
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
        if isinstance(layer, (keras.layers.LayerNormalization, keras.layers.GroupNormalization)):
            return {key: v for key, v in (("weight", layer.gamma), ("bias", layer.beta)) if v is not None}
        return {"weight": layer.kernel, **({"bias": layer.bias} if layer.bias is not None else {})}

    def _variable(self, key: str) -> keras.Variable:
        index, pname = key.split(".", 1)
        return self._variables(self.owners[int(index)])[pname]

    def param_to_keras(self, key: str, value: np.ndarray) -> np.ndarray:
        """A reference parameter (``"0.weight"`` OIHW or ``(in, out)``, biases) in Keras' layout."""
        index, pname = key.split(".", 1)
        layer = self.owners[int(index)]
        if pname == "weight" and isinstance(layer, keras.layers.DepthwiseConv2D):
            return layouts.oihw_to_keras_depthwise(value, value.shape[0] // layer.depth_multiplier)
        if pname == "weight" and isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
            return layouts.oihw_to_hwio(value)  # transposed: (C, F, kh, kw) -> Keras' (kh, kw, F, C)
        if pname == "weight" and int(index) in self.dense_features:
            return layouts.dense_rows_chw_to_hwc(value, chw=self.dense_features[int(index)])
        if isinstance(layer, keras.layers.LayerNormalization) and value.ndim == 3:  # over (C, H, W): (H, W, C)
            return layouts.chw_to_hwc(value)
        return value

    def param_from_keras(self, key: str, value: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`param_to_keras`."""
        index, pname = key.split(".", 1)
        layer = self.owners[int(index)]
        if pname == "weight" and isinstance(layer, keras.layers.DepthwiseConv2D):
            return layouts.keras_depthwise_to_oihw(value)
        if pname == "weight" and isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
            return layouts.hwio_to_oihw(value)
        if pname == "weight" and int(index) in self.dense_features:
            return layouts.dense_rows_hwc_to_chw(value, hwc=_hwc(self.dense_features[int(index)]))
        if isinstance(layer, keras.layers.LayerNormalization) and value.ndim == 3:
            return layouts.hwc_to_chw(value)
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
        return {key: self.param_from_keras(key, numpy(self._variable(key).value)) for key in keys}

    @property
    def variables(self) -> list[keras.Variable]:
        """Every variable of every layer (parameters, moving statistics, random-seed state)."""
        return [v for layer in self.layers for v in layer.variables]


@functools.lru_cache(maxsize=256)
def build(specs: tuple[LayerSpec, ...], sample_shape: Shape, dtype: str) -> KerasModel:
    """The Keras model of ``specs`` for per-sample input ``sample_shape``, built once per process."""
    return KerasModel(specs, sample_shape, dtype)


def run(case: Case, inputs: RunInputs) -> dict[str, np.ndarray]:
    """See :class:`comparisons.frameworks.protocol.Framework`; every result is converted back to the reference
    layout."""
    option, loss_args, labels, dtype = case.loss_option, inputs.loss_args, inputs.labels, inputs.dtype
    params, buffers, x = inputs.params, inputs.buffers, inputs.x
    model = build(case.specs, tuple(x.shape[1:]), dtype)
    variables = model.load(params)
    model.load(buffers)
    model.set_masks(inputs.masks)

    def forward(xk):
        """``(target, {"forward": out})``: the loss when there are labels, else the output itself."""
        out = model(xk, training=not case.eval_mode)
        if labels is None:
            return out, {"forward": out}
        if case.binary_loss is not None:
            loss_fn, y_true, sample_weight = keras_binary_cross_entropy(
                labels, loss_args["weight"], case.binary_loss.reduction, from_logits=case.binary_loss.logits,
                dtype=dtype)
            inputs_ = keras.ops.transpose(out, (0, 3, 1, 2)) if len(out.shape) == 4 else out  # the reference layout
            return loss_fn(y_true, keras.ops.expand_dims(inputs_, -1), sample_weight=sample_weight), {"forward": out}
        if option is None:
            loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype=dtype)
            return loss_fn(labels, out), {"forward": out}
        loss_fn, y_true, sample_weight = keras_cross_entropy(option, labels, loss_args["weight"], dtype)
        logits = keras.ops.transpose(out, (0, 2, 1)) if len(out.shape) == 3 else out  # classes last (NHWC already)
        return loss_fn(y_true, logits, sample_weight=sample_weight), {"forward": out}

    cotangent = loss_args.get("dloss", 1.0) if labels is not None else model.out_to_keras(inputs.dout)
    target, aux, dx, grads = vjp(forward, model.to_keras(x), variables, cotangent, model.variables)
    results = {"forward": model.out_from_keras(aux["forward"])}
    if labels is not None:
        results["loss"] = target
    results["dx"] = model.from_keras(dx)
    for key, grad in zip(params, grads, strict=True):
        results[key] = model.param_from_keras(key, grad)
    for key in buffers:
        results[key] = numpy(model._variable(key).value)
    return results
