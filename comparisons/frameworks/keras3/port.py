"""Keras Sequential models (channels-last) <-> the port's neutral layer list, and a layer-by-layer run.

:func:`build` makes a ``keras.Sequential`` of Keras' built-in layers from :class:`~comparisons.port.layers.PortLayer`
records; :func:`read` reads one back (nested Sequentials too); :func:`trace` runs one layer by layer and gives every
layer's output and parameter gradients in the reference layout. The conventions bridged, each exact:

- images ``(N, H, W, C)``; conv kernels ``(kh, kw, C/groups, F)``; ``DepthwiseConv2D`` for ``groups == C``
  (``(kh, kw, C, m)``);
- padding: ``"valid"``; ``"same"`` when it pads what the layer pads (Keras puts an odd extra row/column at the
  bottom/right: ``layouts.keras_same_padding``); otherwise ``ZeroPadding2D(((top, bottom), (left, right)))`` and a
  ``"valid"`` layer, which is exact for convolution and for average pooling that counts the padded zeros; max
  pooling is padded only through ``"same"`` (a padded 0 would win the max of negative inputs);
- batch norm: weights ``[gamma, beta, moving_mean, moving_variance]``; ``momentum`` is the weight of the old running
  value (``1 - momentum`` of PyTorch); Keras folds the *biased* batch variance into the moving variance
  (``unbiased_running_var=False``), which changes the buffers after a training step, not the outputs;
- the Dense layer after a ``Flatten`` of an ``(H, W, C)`` map: its rows in ``H, W, C`` order
  (``layouts.dense_rows_chw_to_hwc``);
- a layer's ``activation`` argument is read as a separate activation layer after it.

Refused, with the layer and the reason: what Keras cannot express exactly (a dilated max pool, a strided dilated
convolution, padding modes other than zeros, a ``ceil_mode`` window that "same" does not make, ``divisor_override``,
average pooling that excludes asymmetric or non-"same" padding, a LeakyReLU slope that is not a float32 in float64:
TensorFlow takes the slope as a float32 attribute).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from comparisons.port.layers import NO_PADS, PortLayer, nested_leaves, output_shape, pair, refuse, shapes
from reference.windows import output_size

from ..layouts import (
    dense_rows_chw_to_hwc,
    dense_rows_hwc_to_chw,
    flat_chw_to_hwc,
    flat_hwc_to_chw,
    hwio_to_oihw,
    keras_depthwise_to_oihw,
    keras_same_padding,
    nchw_to_nhwc,
    nhwc_to_nchw,
    oihw_to_hwio,
    oihw_to_keras_depthwise,
)

ACTIVATIONS = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "softmax": "softmax"}  # Keras name -> kind


def keras_momentum(momentum: float) -> float:
    """PyTorch's batch-norm momentum (weight of the batch statistic) <-> Keras' (weight of the running value),
    rounded to 12 significant digits so that 0.1 -> 0.9 -> 0.1 round-trips."""
    return float(f"{1.0 - momentum:.12g}")


# -- building ------------------------------------------------------------------------------------------------
def _padding(layer: PortLayer, hw, kernel, stride, dilation=(1, 1)) -> str | None:
    """``"valid"`` or ``"same"`` when one of them pads ``layer.options["pads"]``, else None."""
    pads = layer.options["pads"]
    if pads == NO_PADS:
        return "valid"
    return "same" if keras_same_padding(hw, kernel, stride, dilation) == pads else None


def _ceil_mode_check(layer: PortLayer, in_shape, where: str) -> None:
    """ceil_mode is exact when it adds no window."""
    o = layer.options
    if o.get("ceil_mode"):
        args = (in_shape[1:], o["kernel_size"], o["stride"], o["pads"], o.get("dilation", (1, 1)), where)
        if output_size(*args, ceil_mode=True) != output_size(*args, ceil_mode=False):
            raise refuse(where, layer.type, f"ceil_mode=True adds a partial window for input {in_shape}: Keras "
                                            f"pooling has no ceil_mode")


def _build_conv(layer: PortLayer, in_shape, dtype: str, where: str) -> list:
    o = layer.options
    if o["padding_mode"] != "zeros":
        raise refuse(where, layer.type, f"padding_mode={o['padding_mode']!r}: Keras pads convolutions with zeros only")
    if max(o["stride"]) > 1 and max(o["dilation"]) > 1:
        raise refuse(where, layer.type, f"stride {o['stride']} with dilation {o['dilation']}: Keras refuses "
                                        f"strides > 1 with dilation_rate > 1")
    padding = _padding(layer, in_shape[1:], o["kernel_size"], o["stride"], o["dilation"])
    pre = []
    if padding is None:
        pre, padding = [keras.layers.ZeroPadding2D(o["pads"], dtype=dtype)], "valid"
    common = {"strides": o["stride"], "padding": padding, "dilation_rate": o["dilation"], "use_bias": o["bias"],
              "dtype": dtype}
    if o["groups"] > 1 and o["groups"] == o["in_channels"]:
        conv = keras.layers.DepthwiseConv2D(o["kernel_size"], depth_multiplier=o["out_channels"] // o["groups"],
                                            **common)
    else:
        conv = keras.layers.Conv2D(o["out_channels"], o["kernel_size"], groups=o["groups"], **common)
    return [*pre, conv]


def _build_maxpool(layer: PortLayer, in_shape, dtype: str, where: str) -> list:
    o = layer.options
    if o["dilation"] != (1, 1):
        raise refuse(where, layer.type, f"dilation {o['dilation']}: Keras cannot express a dilated max pool")
    _ceil_mode_check(layer, in_shape, where)
    padding = _padding(layer, in_shape[1:], o["kernel_size"], o["stride"])
    if padding is None:
        raise refuse(where, layer.type, f"padding {o['pads']}: Keras pads max pooling only as 'same' pads it "
                                        f"({keras_same_padding(in_shape[1:], o['kernel_size'], o['stride'])} here), "
                                        f"and a ZeroPadding2D would let a padded 0 win the max")
    return [keras.layers.MaxPooling2D(o["kernel_size"], o["stride"], padding=padding, dtype=dtype)]


def _build_avgpool(layer: PortLayer, in_shape, dtype: str, where: str) -> list:
    o = layer.options
    if o["divisor_override"] is not None:
        raise refuse(where, layer.type, f"divisor_override={o['divisor_override']}: Keras divides by the window")
    _ceil_mode_check(layer, in_shape, where)
    pool = {"pool_size": o["kernel_size"], "strides": o["stride"], "dtype": dtype}
    if o["pads"] == NO_PADS:
        return [keras.layers.AveragePooling2D(padding="valid", **pool)]
    if o["count_include_pad"]:
        return [keras.layers.ZeroPadding2D(o["pads"], dtype=dtype), keras.layers.AveragePooling2D(padding="valid",
                                                                                                  **pool)]
    if _padding(layer, in_shape[1:], o["kernel_size"], o["stride"]) == "same":
        return [keras.layers.AveragePooling2D(padding="same", **pool)]  # divides by the cells inside the input
    raise refuse(where, layer.type, f"count_include_pad=False with padding {o['pads']}: Keras excludes padding "
                                    f"from the divisor only with 'same' "
                                    f"({keras_same_padding(in_shape[1:], o['kernel_size'], o['stride'])} here)")


def _build_batchnorm(layer: PortLayer, in_shape, dtype: str, where: str) -> list:
    o = layer.options
    if len(in_shape) != 3:
        raise refuse(where, layer.type, f"batch norm of a {in_shape} input: only (C, H, W) maps are ported")
    return [keras.layers.BatchNormalization(axis=-1, momentum=keras_momentum(o["momentum"]), epsilon=o["eps"],
                                            center=o["affine"], scale=o["affine"], dtype=dtype)]


def _build_leakyrelu(layer: PortLayer, in_shape, dtype: str, where: str) -> list:
    slope = layer.options["negative_slope"]
    if dtype == "float64" and float(np.float32(slope)) != slope:
        raise refuse(where, layer.type, f"negative_slope={slope} is not a float32, and TensorFlow's LeakyRelu "
                                        f"multiplies by float32(slope) = {float(np.float32(slope))!r} in float64 too")
    return [keras.layers.LeakyReLU(negative_slope=slope, dtype=dtype)]


def _build_softmax(layer: PortLayer, in_shape, dtype: str, where: str) -> list:
    if layer.options["dim"] == -1 and len(in_shape) != 1:
        raise refuse(where, layer.type, f"softmax over dim=-1 (width) of a {in_shape} map: Keras' axis -1 is the "
                                        f"channels")
    return [keras.layers.Softmax(axis=-1, dtype=dtype)]


def _build_linear(layer: PortLayer, in_shape, dtype: str, where: str) -> list:
    if len(in_shape) != 1:
        raise refuse(where, layer.type, f"a dense layer on a {in_shape} map acts on its last axis, which differs "
                                        f"between channels-first and channels-last: flatten first")
    return [keras.layers.Dense(layer.options["out_features"], use_bias=layer.options["bias"], dtype=dtype)]


BUILDERS: dict[str, Callable[[PortLayer, tuple, str, str], list]] = {
    "conv": _build_conv, "maxpool": _build_maxpool, "avgpool": _build_avgpool, "batchnorm": _build_batchnorm,
    "leakyrelu": _build_leakyrelu, "softmax": _build_softmax, "linear": _build_linear,
    "zeropad": lambda layer, s, dtype, where: [keras.layers.ZeroPadding2D(layer.options["pads"], dtype=dtype)],
    "dropout": lambda layer, s, dtype, where: [keras.layers.Dropout(layer.options["p"], dtype=dtype)],
    "relu": lambda layer, s, dtype, where: [keras.layers.ReLU(dtype=dtype)],
    "sigmoid": lambda layer, s, dtype, where: [keras.layers.Activation("sigmoid", dtype=dtype)],
    "tanh": lambda layer, s, dtype, where: [keras.layers.Activation("tanh", dtype=dtype)],
    "flatten": lambda layer, s, dtype, where: [keras.layers.Flatten(dtype=dtype)],
}


def _weights(layer: PortLayer, flattened_chw) -> list[np.ndarray]:
    """``layer``'s parameters and buffers in Keras' order and layout."""
    p, o = layer.params, layer.options
    if layer.kind == "conv":
        if o["groups"] > 1 and o["groups"] == o["in_channels"]:
            kernel = oihw_to_keras_depthwise(p["weight"], o["in_channels"])
        else:
            kernel = oihw_to_hwio(p["weight"])
        return [kernel, *([p["bias"]] if o["bias"] else [])]
    if layer.kind == "linear":
        w = p["weight"] if flattened_chw is None else dense_rows_chw_to_hwc(p["weight"], chw=flattened_chw)
        return [w, *([p["bias"]] if o["bias"] else [])]
    if layer.kind == "batchnorm":
        affine = [p["weight"], p["bias"]] if o["affine"] else []
        return [*affine, layer.buffers["running_mean"], layer.buffers["running_var"]]
    return []


def build(layers: list[PortLayer], input_shape, dtype: str | None = None) -> keras.Sequential:
    """A ``keras.Sequential`` (channels-last, input ``(H, W, C)``) computing ``layers`` for ``input_shape``
    ``(C, H, W)``, in ``dtype`` (default: the parameters'); ValueError naming a layer Keras cannot express exactly."""
    dtype = dtype or next((str(v.dtype) for layer in layers for v in layer.params.values()), "float32")
    in_shapes = shapes(layers, tuple(input_shape))
    built, weights, flattened = [], [], None
    for i, layer in enumerate(layers):
        where = f"{i}" if not layer.name else f"{i} '{layer.name}'"
        if layer.kind not in BUILDERS:
            raise refuse(where, layer.type or layer.kind, f"Keras has no port for layer kind {layer.kind!r}")
        made = BUILDERS[layer.kind](layer, in_shapes[i], dtype, where)
        if layer.kind == "flatten":
            flattened = in_shapes[i] if len(in_shapes[i]) == 3 else None
        built.extend(made)
        weights.append((made[-1], _weights(layer, flattened if layer.kind == "linear" else None)))
        if layer.kind == "linear":
            flattened = None
    c, h, w = input_shape
    model = keras.Sequential([keras.Input((h, w, c), dtype=dtype), *built])
    for target, values in weights:
        if values:
            target.set_weights([np.asarray(v, dtype=dtype) for v in values])
    return model


# -- reading -------------------------------------------------------------------------------------------------
@dataclass
class _Entry:
    """A Keras layer's part in the neutral list: ``part`` is ``"layer"``, or ``"pre"``/``"activation"`` for a layer
    with an ``activation`` argument (its output before and after it). ``output_hwc``: the ``(H, W, C)`` map whose
    Keras Flatten order its (flat) output is in; ``rows_hwc``: the same for a Dense kernel's rows."""

    layer: keras.Layer
    port: PortLayer
    part: str = "layer"
    output_hwc: tuple | None = None
    rows_hwc: tuple | None = None
    depthwise: bool = False


def keras_layers(model, prefix: str = "") -> list[tuple[str, keras.Layer]]:
    """``(index path, layer)`` of every layer of the (nested) Sequential ``model``, in order."""
    return nested_leaves(model, keras.Sequential, lambda seq: enumerate(seq.layers),
                         "keras port: the model must be a keras.Sequential", prefix)


def input_shape(model) -> tuple[int, int, int]:
    """The model's input ``(C, H, W)`` (it must be built: ``keras.Input`` first)."""
    try:
        shape = tuple(model.inputs[0].shape[1:])
    except (AttributeError, IndexError, ValueError) as exc:
        raise ValueError("keras port: the model has no input shape; start it with keras.Input((H, W, C))") from exc
    if len(shape) != 3 or None in shape:
        raise ValueError(f"keras port: the model's input must be (H, W, C) images, got {shape}")
    h, w, c = shape
    return (int(c), int(h), int(w))


def _keras_pads(padding: str, hw, kernel, stride, dilation=(1, 1)):
    return NO_PADS if padding == "valid" else keras_same_padding(hw, kernel, stride, dilation)


def _channels_last(layer, where: str) -> None:
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise refuse(where, type(layer).__name__, f"data_format={layer.data_format!r}: only channels_last is ported")


def _params(entry_kind: str, arrays: dict, flattened_hwc, depthwise: bool = False) -> dict[str, np.ndarray]:
    """Keras weights (or their gradients) by name -> the reference's parameters (a ``DepthwiseConv2D`` kernel is
    ``(kh, kw, C, m)``, a ``Conv2D``'s ``(kh, kw, C/groups, F)``)."""
    if entry_kind == "conv":
        kernel = arrays["kernel"]
        found = {"weight": keras_depthwise_to_oihw(kernel) if depthwise else hwio_to_oihw(kernel)}
    elif entry_kind == "linear":
        k = arrays["kernel"]
        found = {"weight": k if flattened_hwc is None else dense_rows_hwc_to_chw(k, hwc=flattened_hwc)}
    elif entry_kind == "batchnorm":
        found = {key: arrays[name] for key, name in (("weight", "gamma"), ("bias", "beta")) if name in arrays}
    else:
        found = {}
    if "bias" in arrays and entry_kind in ("conv", "linear"):
        found["bias"] = arrays["bias"]
    return found


def _read_layer(layer, where: str, shape) -> tuple[PortLayer, str | None]:
    """One Keras layer -> its PortLayer (parameters left for :func:`_params`), and its activation's kind or None."""
    name = type(layer).__name__
    c = layer.get_config()
    activation = c.get("activation")
    if isinstance(activation, dict):
        raise refuse(where, name, f"activation {activation!r} has no port")
    act = None if activation in (None, "linear") else ACTIVATIONS.get(activation)
    if activation not in (None, "linear") and act is None:
        raise refuse(where, name, f"activation={activation!r}: ported activations are {tuple(ACTIVATIONS)}")
    _channels_last(layer, where)
    if type(layer) in (keras.layers.Conv2D, keras.layers.DepthwiseConv2D):
        if len(shape) != 3:
            raise refuse(where, name, f"a convolution of a {shape} input: only (H, W, C) maps are ported")
        depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
        kernel, stride, dilation = pair(c["kernel_size"]), pair(c["strides"]), pair(c["dilation_rate"])
        out = shape[0] * c["depth_multiplier"] if depthwise else c["filters"]
        port = PortLayer("conv", {"in_channels": shape[0], "out_channels": out, "kernel_size": kernel, "stride": stride,
                                  "pads": _keras_pads(c["padding"], shape[1:], kernel, stride, dilation),
                                  "dilation": dilation, "groups": shape[0] if depthwise else c["groups"],
                                  "bias": c["use_bias"], "padding_mode": "zeros"})
    elif type(layer) is keras.layers.ZeroPadding2D:
        port = PortLayer("zeropad", {"pads": tuple(pair(p) for p in c["padding"])})
    elif type(layer) in (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D):
        kernel, stride = pair(c["pool_size"]), pair(c["strides"] or c["pool_size"])
        pads = _keras_pads(c["padding"], shape[1:], kernel, stride)
        if type(layer) is keras.layers.MaxPooling2D:
            port = PortLayer("maxpool", {"kernel_size": kernel, "stride": stride, "pads": pads, "dilation": (1, 1),
                                         "ceil_mode": False})
        else:  # Keras' "same" average divides by the cells inside the input
            port = PortLayer("avgpool", {"kernel_size": kernel, "stride": stride, "pads": pads, "ceil_mode": False,
                                         "count_include_pad": pads == NO_PADS, "divisor_override": None})
    elif type(layer) is keras.layers.BatchNormalization:
        if c["axis"] not in (-1, 3, [3], [-1]) or len(shape) != 3:
            raise refuse(where, name, f"axis={c['axis']} on a {shape} input: only the channels of (H, W, C) maps")
        if c["center"] != c["scale"]:
            raise refuse(where, name, "center and scale must be both on or both off (PyTorch's affine)")
        port = PortLayer("batchnorm", {"num_features": shape[0], "eps": float(c["epsilon"]),
                                       "momentum": keras_momentum(c["momentum"]), "affine": bool(c["center"]),
                                       "unbiased_running_var": False})
    elif type(layer) is keras.layers.Dropout:
        if c.get("noise_shape") is not None:
            raise refuse(where, name, "noise_shape drops whole rows or maps: only elementwise dropout is ported")
        port = PortLayer("dropout", {"p": float(c["rate"])})
    elif type(layer) is keras.layers.ReLU:
        if c["max_value"] is not None or c["negative_slope"] or c["threshold"]:
            raise refuse(where, name, "max_value, negative_slope and threshold have no port (plain ReLU only)")
        port = PortLayer("relu")
    elif type(layer) is keras.layers.LeakyReLU:
        port = PortLayer("leakyrelu", {"negative_slope": float(np.float32(c["negative_slope"]))})
    elif type(layer) is keras.layers.Activation:
        if act is None:
            raise refuse(where, name, "a linear Activation layer does nothing; remove it")
        port, act = PortLayer(act, {"dim": 1} if act == "softmax" else {}), None
    elif type(layer) is keras.layers.Softmax:
        if c["axis"] not in (-1, [-1]):
            raise refuse(where, name, f"axis={c['axis']}: only the last (channels/features) axis is ported")
        port = PortLayer("softmax", {"dim": 1})
    elif type(layer) is keras.layers.Flatten:
        port = PortLayer("flatten")
    elif type(layer) is keras.layers.Dense and len(shape) == 1:
        port = PortLayer("linear", {"in_features": shape[0], "out_features": c["units"], "bias": c["use_bias"]})
    elif type(layer) is keras.layers.Dense:
        raise refuse(where, name, f"a Dense layer on a {shape} map acts on its last axis: flatten first")
    else:
        raise refuse(where, name, "no port for this layer type")
    port.name, port.type = layer.name, name
    return port, act


def _entries(model) -> list[_Entry]:
    """The neutral layer list of ``model`` with the Keras layer behind each record."""
    shape = input_shape(model)
    found, flattened = [], None
    for where, layer in keras_layers(model):
        if type(layer) is keras.layers.InputLayer:
            continue
        port, act = _read_layer(layer, where, shape)
        if port.kind == "flatten":
            flattened = (shape[1], shape[2], shape[0]) if len(shape) == 3 else None
        arrays = {w.name: np.asarray(w.numpy()) for w in layer.weights}
        rows_hwc = flattened if port.kind == "linear" else None
        depthwise = type(layer) is keras.layers.DepthwiseConv2D
        port.params = _params(port.kind, arrays, rows_hwc, depthwise)
        if port.kind == "batchnorm":
            port.params = port.params if port.options["affine"] else {}
            port.buffers = {"running_mean": arrays["moving_mean"], "running_var": arrays["moving_variance"]}
        if port.kind == "linear":
            flattened = None
        found.append(_Entry(layer, port, "pre" if act else "layer", flattened, rows_hwc, depthwise))
        shape = output_shape(port, shape)
        if act:
            post = PortLayer(act, {"dim": 1} if act == "softmax" else {}, name=f"{layer.name}.activation",
                             type=f"{type(layer).__name__}.activation")
            found.append(_Entry(layer, post, "activation", flattened))
    return found


def read(model) -> list[PortLayer]:
    """The neutral layer list of the (nested) ``keras.Sequential`` ``model`` (built with ``keras.Input``)."""
    return [entry.port for entry in _entries(model)]


# -- running -------------------------------------------------------------------------------------------------
@dataclass
class LayerRun:
    """One layer's output (reference layout, ``(N, ...)``) and its parameters' gradients (reference layout)."""

    output: np.ndarray
    grads: dict[str, np.ndarray]


def _to_reference(value: np.ndarray, flattened_hwc) -> np.ndarray:
    if value.ndim == 4:
        return nhwc_to_nchw(value)
    return flat_hwc_to_chw(value, hwc=flattened_hwc) if flattened_hwc is not None else value


def _from_reference(value: np.ndarray, flattened_hwc) -> np.ndarray:
    if value.ndim == 4:
        return nchw_to_nhwc(value)
    hwc = flattened_hwc
    return flat_chw_to_hwc(value, chw=(hwc[2], hwc[0], hwc[1])) if hwc is not None else value


def _call(entry: _Entry, h, training: bool):
    layer = entry.layer
    if entry.part == "activation":
        return layer.activation(h)
    if entry.part == "pre":
        activation = layer.activation
        layer.activation = keras.activations.linear
        try:
            return layer(h, training=training)
        finally:
            layer.activation = activation
    return layer(h, training=training)


def trace(model, x: np.ndarray, *, training: bool, dout: np.ndarray | None = None) -> list[LayerRun]:
    """Run ``model`` on ``x`` ``(N, C, H, W)`` (reference layout) layer by layer; with ``dout`` (the final output's
    shape, reference layout) also the gradients of ``sum(out * dout)``. One :class:`LayerRun` per record of
    :func:`read`. The model's weights are as before when it returns (training mode updates the moving statistics)."""
    entries = _entries(model)
    if tuple(np.shape(x)[1:]) != input_shape(model):
        raise ValueError(f"keras port: x must be (N, C, H, W) = (N, {', '.join(map(str, input_shape(model)))}), the "
                         f"Keras model's input (its 'same' paddings and Dense sizes are for it), got shape "
                         f"{np.shape(x)}")
    saved = [w.numpy() for w in model.weights]
    dtype = model.inputs[0].dtype
    try:
        h = tf.constant(nchw_to_nhwc(np.asarray(x)).astype(dtype))
        outputs = []
        with tf.GradientTape() as tape:
            for entry in entries:
                h = _call(entry, h, training)
                outputs.append(h)
            if dout is not None:
                loss = tf.reduce_sum(h * tf.constant(_from_reference(np.asarray(dout), entries[-1].output_hwc)
                                                     .astype(dtype)))
        grads: list[dict] = [{} for _ in entries]
        if dout is not None:
            owners = [(i, e) for i, e in enumerate(entries) if e.part != "activation" and e.layer.trainable_weights]
            variables = [v for _, e in owners for v in e.layer.trainable_weights]
            values = iter(tape.gradient(loss, variables))
            for i, e in owners:
                arrays = {v.name: np.asarray(next(values)) for v in e.layer.trainable_weights}
                grads[i] = _params(e.port.kind, arrays, e.rows_hwc, e.depthwise)
        return [LayerRun(_to_reference(np.asarray(out), e.output_hwc), g)
                for out, e, g in zip(outputs, entries, grads, strict=True)]
    finally:
        for w, value in zip(model.weights, saved, strict=True):
            w.assign(value)


def parameter_dtype(model) -> str:
    """The dtype name of the model's input (what it computes in)."""
    return str(model.inputs[0].dtype)


def save(model, path) -> None:
    model.save(path)


def load(path):
    return keras.saving.load_model(path)
