"""The reference's ``Sequential`` <-> the port's neutral layer list, and a layer-by-layer run.

The reference is channels-first with PyTorch's conventions and the neutral list is written in its layout, so
reading and building copy options and arrays as they are. The reference has no padding layer: a ``zeropad`` is
folded into the convolution after it (``Conv2d`` takes ``((top, bottom), (left, right))``), or into an average
pool that counts the padded zeros when the sum is symmetric; elsewhere it is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import reference as ref

from .layers import NO_PADS, PortLayer, add_pads, nested_leaves, refuse, symmetric


def leaves(model, prefix: str = "") -> list[tuple[str, object]]:
    """``(dotted index, layer)`` of every layer of the (nested) reference ``Sequential`` ``model``."""
    return nested_leaves(model, ref.Sequential, lambda seq: enumerate(seq.layers),
                         "reference port: the model must be a reference Sequential", prefix)


def _copy(arrays: dict) -> dict[str, np.ndarray]:
    return {key: np.array(value) for key, value in arrays.items()}


def _pool_pads(layer) -> tuple:
    ph, pw = layer.padding
    return ((ph, ph), (pw, pw))


READERS: dict[type, Callable[[object], PortLayer]] = {
    ref.Conv2d: lambda m: PortLayer("conv", {"in_channels": m.in_channels, "out_channels": m.out_channels,
                                             "kernel_size": m.kernel_size, "stride": m.stride, "pads": m.pads,
                                             "dilation": m.dilation, "groups": m.groups, "bias": m.use_bias,
                                             "padding_mode": m.padding_mode}, _copy(m.params)),
    ref.MaxPool2d: lambda m: PortLayer("maxpool", {"kernel_size": m.kernel_size, "stride": m.stride,
                                                   "pads": _pool_pads(m), "dilation": m.dilation,
                                                   "ceil_mode": m.ceil_mode}),
    ref.AvgPool2d: lambda m: PortLayer("avgpool", {"kernel_size": m.kernel_size, "stride": m.stride,
                                                   "pads": _pool_pads(m), "ceil_mode": m.ceil_mode,
                                                   "count_include_pad": m.count_include_pad,
                                                   "divisor_override": m.divisor_override}),
    ref.BatchNorm2d: lambda m: PortLayer("batchnorm", {"num_features": m.num_features, "eps": float(m.eps),
                                                       "momentum": float(m.momentum), "affine": True,
                                                       "unbiased_running_var": m.unbiased_running_var},
                                         _copy(m.params), _copy(m.buffers)),
    ref.Dropout: lambda m: PortLayer("dropout", {"p": float(m.p)}),
    ref.ReLU: lambda m: PortLayer("relu"),
    ref.LeakyReLU: lambda m: PortLayer("leakyrelu", {"negative_slope": float(m.negative_slope)}),
    ref.Sigmoid: lambda m: PortLayer("sigmoid"),
    ref.Tanh: lambda m: PortLayer("tanh"),
    ref.Softmax: lambda m: PortLayer("softmax", {"dim": m.dim}),
    ref.Flatten: lambda m: PortLayer("flatten"),
    ref.Linear: lambda m: PortLayer("linear", {"in_features": m.in_features, "out_features": m.out_features,
                                               "bias": m.use_bias}, _copy(m.params)),
}


def _read_leaf(name: str, layer) -> PortLayer:
    reader = READERS.get(type(layer))
    if reader is None:
        raise refuse(name, type(layer).__name__, f"no port for this layer type (ported: "
                                                 f"{', '.join(t.__name__ for t in READERS)})")
    if isinstance(layer, ref.MaxPool2d) and layer.return_indices:
        raise refuse(name, "MaxPool2d", "return_indices=True returns a tuple, which no other layer takes")
    port = reader(layer)
    port.name, port.type = name, type(layer).__name__
    return port


def read(model) -> list[PortLayer]:
    """The neutral layer list of the (nested) reference ``Sequential`` ``model``."""
    return [_read_leaf(name, layer) for name, layer in leaves(model)]


# -- building ------------------------------------------------------------------------------------------------
class ZeroPad:
    """Zero padding ``((top, bottom), (left, right))`` of ``(N, C, H, W)`` with the layer protocol: the port's
    layer-by-layer runs use it; :func:`build` folds it into the layer after it instead."""

    def __init__(self, pads) -> None:
        self.pads, self.params, self.grads, self.buffers = pads, {}, {}, {}
        self.training = True

    def train(self, mode: bool = True):
        self.training = mode
        return self

    def forward(self, x: np.ndarray) -> np.ndarray:
        (top, bottom), (left, right) = self.pads
        return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        (top, bottom), (left, right) = self.pads
        return dout[:, :, top:dout.shape[2] - bottom, left:dout.shape[3] - right]


def layer(port: PortLayer, dtype, where: str = "", pads=NO_PADS):
    """One reference layer computing ``port`` (with ``pads`` of a zero padding before it added to its own), its
    parameters and buffers set; :class:`ZeroPad` for a ``zeropad``."""
    o, where = port.options, where or port.name
    pads = add_pads(pads, o["pads"]) if "pads" in o else pads
    if port.kind == "zeropad":
        return ZeroPad(pads)
    if port.kind == "conv":
        made = ref.Conv2d(o["in_channels"], o["out_channels"], o["kernel_size"], o["stride"], pads, o["dilation"],
                          bias=o["bias"], dtype=dtype, groups=o["groups"], padding_mode=o["padding_mode"])
    elif port.kind in ("maxpool", "avgpool"):
        padding = symmetric(pads)
        if padding is None:
            raise refuse(where, port.type or port.kind, f"asymmetric padding {pads}: the reference pools with "
                                                        f"symmetric padding")
        if port.kind == "maxpool":
            made = ref.MaxPool2d(o["kernel_size"], o["stride"], padding, dilation=o["dilation"],
                                 ceil_mode=o["ceil_mode"])
        else:
            made = ref.AvgPool2d(o["kernel_size"], o["stride"], padding, ceil_mode=o["ceil_mode"],
                                 count_include_pad=o["count_include_pad"], divisor_override=o["divisor_override"])
    elif port.kind == "batchnorm":
        made = ref.BatchNorm2d(o["num_features"], o["eps"], o["momentum"], o["unbiased_running_var"], dtype=dtype)
    elif port.kind == "linear":
        made = ref.Linear(o["in_features"], o["out_features"], bias=o["bias"], dtype=dtype)
    else:
        simple = {"dropout": lambda: ref.Dropout(o["p"]), "relu": ref.ReLU, "sigmoid": ref.Sigmoid, "tanh": ref.Tanh,
                  "flatten": ref.Flatten, "leakyrelu": lambda: ref.LeakyReLU(o["negative_slope"]),
                  "softmax": lambda: ref.Softmax(o["dim"])}
        if port.kind not in simple:
            raise refuse(where, port.type or port.kind, f"the reference has no port for layer kind {port.kind!r}")
        made = simple[port.kind]()
    for key, value in port.params.items():
        made.params[key] = np.asarray(value, dtype=dtype).copy()
    for key, value in port.buffers.items():
        made.buffers[key] = np.asarray(value, dtype=dtype).copy()
    return made


def build(layers: list[PortLayer], dtype: str | None = None) -> ref.Sequential:
    """A reference ``Sequential`` computing ``layers`` (a ``zeropad`` folded into the convolution or the average
    pool counting padded zeros after it), in ``dtype`` (default: the parameters')."""
    dtype = np.dtype(dtype or next((str(v.dtype) for p in layers for v in p.params.values()), "float64"))
    built, pending = [], None
    for i, port in enumerate(layers):
        where = f"{i}" if not port.name else f"{i} '{port.name}'"
        if pending is not None:
            served = port.kind == "conv" and port.options["padding_mode"] == "zeros" or (
                port.kind == "avgpool" and port.options["count_include_pad"])
            if not served:
                raise refuse(pending[0], "zeropad", f"the reference has no padding layer, and {port.label()} after it "
                                                    f"cannot take the padding")
        if port.kind == "zeropad":
            pads = port.options["pads"] if pending is None else add_pads(pending[1], port.options["pads"])
            pending = (where, pads)
            continue
        built.append(layer(port, dtype, where, NO_PADS if pending is None else pending[1]))
        pending = None
    if pending is not None:
        raise refuse(pending[0], "zeropad", "the reference has no padding layer, and no layer after it takes it")
    return ref.Sequential(built)


# -- running -------------------------------------------------------------------------------------------------
@dataclass
class LayerRun:
    """One layer's output ``(N, ...)`` and its parameters' gradients."""

    output: np.ndarray
    grads: dict[str, np.ndarray]


def run_layers(layers: list, x: np.ndarray, *, training: bool, dout: np.ndarray | None = None) -> list[LayerRun]:
    """Run reference layers (or :class:`ZeroPad`) in sequence on ``x``; with ``dout`` backward too."""
    outputs, h = [], x
    for item in layers:
        item.train(training)
        h = item.forward(h)
        outputs.append(h)
    grads: list[dict] = [{} for _ in layers]
    if dout is not None:
        g = dout
        for i in range(len(layers) - 1, -1, -1):
            g = layers[i].backward(g)
            grads[i] = {key: np.array(value) for key, value in layers[i].grads.items()}
    return [LayerRun(np.array(out), gr) for out, gr in zip(outputs, grads, strict=True)]


def trace(model, x: np.ndarray, *, training: bool, dout: np.ndarray | None = None) -> list[LayerRun]:
    """Run the reference ``model`` on ``x`` ``(N, C, H, W)`` layer by layer; one :class:`LayerRun` per layer of
    :func:`read`. Buffers and modes are as before when it returns."""
    items = [item for _, item in leaves(model)]
    saved = [(item, item.training, _copy(getattr(item, "buffers", {}))) for item in items]
    try:
        return run_layers(items, np.asarray(x, dtype=parameter_dtype(model)), training=training, dout=dout)
    finally:
        for item, mode, buffers in saved:
            item.train(mode)
            item.buffers.update(buffers)


def parameter_dtype(model) -> str:
    """The dtype of the model's first parameter (``"float64"`` when it has none)."""
    return str(next((np.asarray(v).dtype for v in model.params.values()), np.dtype("float64")))
