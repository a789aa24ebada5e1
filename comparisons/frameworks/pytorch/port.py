"""PyTorch models <-> the port's neutral layer list (:mod:`comparisons.port.layers`), and a layer-by-layer run.

:func:`read` takes an ``nn.Sequential`` (nested ones too: their leaves in order, named by their dotted path,
``"features.0"``) to :class:`~comparisons.port.layers.PortLayer` records; :func:`build` makes an
``nn.Sequential`` from them; :func:`trace` runs a model leaf by leaf and returns every leaf's output and
parameter gradients in the reference layout. PyTorch is channels-first like the reference: only
``nn.Linear.weight`` ``(out, in)`` is transposed. ``nn.Conv2d`` pads symmetrically (its ``"same"`` is the only
asymmetric padding it has, and only at stride 1), so an asymmetric padding is built as ``nn.ZeroPad2d`` before
the convolution.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from comparisons.port.layers import PortLayer, nested_leaves, pair, refuse, symmetric

from ..layouts import linear_from_torch, linear_to_torch


def leaves(module: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """``(dotted name, module)`` of every leaf of the (nested) ``nn.Sequential`` ``module``, in order."""
    return nested_leaves(module, nn.Sequential, lambda seq: seq.named_children(),
                         "torch port: the model must be an nn.Sequential", prefix)


def _arrays(module: nn.Module, grads: bool) -> dict[str, np.ndarray]:
    """The module's own parameters (or their gradients) as numpy arrays."""
    found = {}
    for key, p in module.named_parameters(recurse=False):
        value = p.grad if grads else p
        if value is not None:
            found[key] = value.detach().cpu().numpy().copy()
    return found


# -- reading -------------------------------------------------------------------------------------------------
def _conv(m: nn.Conv2d, a: dict, where: str) -> PortLayer:
    left, right, top, bottom = m._reversed_padding_repeated_twice  # (left, right, top, bottom), "same" resolved
    return PortLayer("conv", {"in_channels": m.in_channels, "out_channels": m.out_channels,
                              "kernel_size": pair(m.kernel_size), "stride": pair(m.stride),
                              "pads": ((top, bottom), (left, right)), "dilation": pair(m.dilation),
                              "groups": m.groups, "bias": m.bias is not None, "padding_mode": m.padding_mode},
                     {k: a[k] for k in ("weight", "bias") if k in a})


def _zeropad(m: nn.ZeroPad2d, a: dict, where: str) -> PortLayer:
    left, right, top, bottom = m.padding
    return PortLayer("zeropad", {"pads": ((top, bottom), (left, right))})


def _pool_pads(m) -> tuple:
    ph, pw = pair(m.padding)
    return ((ph, ph), (pw, pw))


def _maxpool(m: nn.MaxPool2d, a: dict, where: str) -> PortLayer:
    if m.return_indices:
        raise refuse(where, "MaxPool2d", "return_indices=True returns a tuple, which no other layer takes")
    return PortLayer("maxpool", {"kernel_size": pair(m.kernel_size), "stride": pair(m.stride), "pads": _pool_pads(m),
                                 "dilation": pair(m.dilation), "ceil_mode": bool(m.ceil_mode)})


def _avgpool(m: nn.AvgPool2d, a: dict, where: str) -> PortLayer:
    return PortLayer("avgpool", {"kernel_size": pair(m.kernel_size), "stride": pair(m.stride), "pads": _pool_pads(m),
                                 "ceil_mode": bool(m.ceil_mode), "count_include_pad": bool(m.count_include_pad),
                                 "divisor_override": m.divisor_override})


def _batchnorm(m: nn.BatchNorm2d, a: dict, where: str) -> PortLayer:
    if m.momentum is None:
        raise refuse(where, "BatchNorm2d", "momentum=None (a cumulative average) has no equivalent in Keras or the "
                                           "reference")
    if not m.track_running_stats:
        raise refuse(where, "BatchNorm2d", "track_running_stats=False (batch statistics in evaluation too) has no "
                                           "equivalent in Keras or the reference")
    return PortLayer("batchnorm", {"num_features": m.num_features, "eps": float(m.eps), "momentum": float(m.momentum),
                                   "affine": bool(m.affine), "unbiased_running_var": True},
                     {k: a[k] for k in ("weight", "bias") if k in a},
                     {"running_mean": m.running_mean.detach().cpu().numpy().copy(),
                      "running_var": m.running_var.detach().cpu().numpy().copy()})


def _flatten(m: nn.Flatten, a: dict, where: str) -> PortLayer:
    if (m.start_dim, m.end_dim) != (1, -1):
        raise refuse(where, "Flatten", f"only start_dim=1, end_dim=-1 is a per-sample flatten, got "
                                       f"start_dim={m.start_dim}, end_dim={m.end_dim}")
    return PortLayer("flatten")


def _linear(m: nn.Linear, a: dict, where: str) -> PortLayer:
    params = {"weight": linear_from_torch(a["weight"])} if "weight" in a else {}
    if "bias" in a:
        params["bias"] = a["bias"]
    return PortLayer("linear", {"in_features": m.in_features, "out_features": m.out_features,
                                "bias": m.bias is not None}, params)


def _softmax(m: nn.Softmax, a: dict, where: str) -> PortLayer:
    if m.dim not in (1, -1):
        raise refuse(where, "Softmax", f"only dim=1 (channels or features) or -1 is ported, got dim={m.dim}")
    return PortLayer("softmax", {"dim": m.dim})


READERS: dict[type, Callable[[nn.Module, dict, str], PortLayer]] = {
    nn.Conv2d: _conv, nn.ZeroPad2d: _zeropad, nn.MaxPool2d: _maxpool, nn.AvgPool2d: _avgpool,
    nn.BatchNorm2d: _batchnorm, nn.Flatten: _flatten, nn.Linear: _linear, nn.Softmax: _softmax,
    nn.Dropout: lambda m, a, where: PortLayer("dropout", {"p": float(m.p)}),
    nn.ReLU: lambda m, a, where: PortLayer("relu"),
    nn.LeakyReLU: lambda m, a, where: PortLayer("leakyrelu", {"negative_slope": float(m.negative_slope)}),
    nn.Sigmoid: lambda m, a, where: PortLayer("sigmoid"),
    nn.Tanh: lambda m, a, where: PortLayer("tanh"),
}


def _read_leaf(name: str, module: nn.Module, grads: bool = False) -> PortLayer:
    reader = READERS.get(type(module))
    if reader is None:
        raise refuse(name, type(module).__name__, f"no port for this module type (ported: "
                                                  f"{', '.join(t.__name__ for t in READERS)})")
    layer = reader(module, _arrays(module, grads), name)
    layer.name, layer.type = name, type(module).__name__
    return layer


def read(model: nn.Module) -> list[PortLayer]:
    """The neutral layer list of the (nested) ``nn.Sequential`` ``model``; ValueError naming a layer with no port."""
    return [_read_leaf(name, module) for name, module in leaves(model)]


# -- building ------------------------------------------------------------------------------------------------
def _pad2d(pads) -> nn.ZeroPad2d:
    (top, bottom), (left, right) = pads
    return nn.ZeroPad2d((left, right, top, bottom))


def _build_conv(layer: PortLayer, where: str) -> list[nn.Module]:
    o = layer.options
    padding = symmetric(o["pads"])
    pre = []
    if padding is None:
        if o["padding_mode"] != "zeros":
            raise refuse(where, layer.type, f"asymmetric padding {o['pads']} with padding_mode={o['padding_mode']!r}: "
                                            f"nn.Conv2d pads symmetrically")
        pre, padding = [_pad2d(o["pads"])], (0, 0)
    conv = nn.Conv2d(o["in_channels"], o["out_channels"], o["kernel_size"], stride=o["stride"], padding=padding,
                     dilation=o["dilation"], groups=o["groups"], bias=o["bias"], padding_mode=o["padding_mode"])
    return [*pre, conv]


def _check_pool_pads(layer: PortLayer, where: str, kernel) -> tuple[int, int] | None:
    """The symmetric padding of a pooling layer, or None when it is asymmetric."""
    padding = symmetric(layer.options["pads"])
    if padding is not None and any(2 * p > k for p, k in zip(padding, kernel, strict=True)):
        raise refuse(where, layer.type, f"padding {padding} is more than half the window {kernel}, which PyTorch "
                                        f"refuses")
    return padding


def _build_maxpool(layer: PortLayer, where: str) -> list[nn.Module]:
    o = layer.options
    effective = tuple(d * (k - 1) + 1 for d, k in zip(o["dilation"], o["kernel_size"], strict=True))
    padding = _check_pool_pads(layer, where, effective)
    if padding is None:
        raise refuse(where, layer.type, f"asymmetric padding {o['pads']}: nn.MaxPool2d pads symmetrically (with "
                                        f"-inf), and a zero padding layer would let a 0 win the max")
    return [nn.MaxPool2d(o["kernel_size"], o["stride"], padding, o["dilation"], ceil_mode=o["ceil_mode"])]


def _build_avgpool(layer: PortLayer, where: str) -> list[nn.Module]:
    o = layer.options
    padding = _check_pool_pads(layer, where, o["kernel_size"])
    pre = []
    if padding is None:
        if not o["count_include_pad"] or o["divisor_override"] is not None or o["ceil_mode"]:
            raise refuse(where, layer.type, f"asymmetric padding {o['pads']} with count_include_pad=False, a "
                                            f"divisor_override or ceil_mode: nn.AvgPool2d pads symmetrically")
        pre, padding = [_pad2d(o["pads"])], (0, 0)
    return [*pre, nn.AvgPool2d(o["kernel_size"], o["stride"], padding, ceil_mode=o["ceil_mode"],
                               count_include_pad=o["count_include_pad"], divisor_override=o["divisor_override"])]


def _build_softmax(layer: PortLayer, where: str) -> list[nn.Module]:
    return [nn.Softmax(dim=layer.options["dim"])]


BUILDERS: dict[str, Callable[[PortLayer, str], list[nn.Module]]] = {
    "conv": _build_conv, "maxpool": _build_maxpool, "avgpool": _build_avgpool, "softmax": _build_softmax,
    "zeropad": lambda layer, where: [_pad2d(layer.options["pads"])],
    "batchnorm": lambda layer, where: [nn.BatchNorm2d(layer.options["num_features"], eps=layer.options["eps"],
                                                      momentum=layer.options["momentum"],
                                                      affine=layer.options["affine"])],
    "dropout": lambda layer, where: [nn.Dropout(layer.options["p"])],
    "relu": lambda layer, where: [nn.ReLU()],
    "leakyrelu": lambda layer, where: [nn.LeakyReLU(layer.options["negative_slope"])],
    "sigmoid": lambda layer, where: [nn.Sigmoid()],
    "tanh": lambda layer, where: [nn.Tanh()],
    "flatten": lambda layer, where: [nn.Flatten()],
    "linear": lambda layer, where: [nn.Linear(layer.options["in_features"], layer.options["out_features"],
                                              bias=layer.options["bias"])],
}


def _load(module: nn.Module, layer: PortLayer) -> None:
    """Copy ``layer``'s parameters and buffers into ``module`` (the one of its modules that holds them)."""
    params = dict(layer.params)
    if layer.kind == "linear" and "weight" in params:
        params["weight"] = linear_to_torch(params["weight"])
    with torch.no_grad():
        for key, tensor in [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]:
            value = params.get(key, layer.buffers.get(key))
            if value is not None:
                tensor.copy_(torch.from_numpy(np.asarray(value)))


def build(layers: list[PortLayer], dtype: str | None = None) -> nn.Sequential:
    """An ``nn.Sequential`` computing ``layers`` with their parameters, in ``dtype`` (default: the parameters')."""
    dtype = dtype or next((str(v.dtype) for layer in layers for v in layer.params.values()), "float32")
    modules = []
    for i, layer in enumerate(layers):
        where = f"{i}" if not layer.name else f"{i} '{layer.name}'"
        if layer.kind not in BUILDERS:
            raise refuse(where, layer.type or layer.kind, f"PyTorch has no port for layer kind {layer.kind!r}")
        built = BUILDERS[layer.kind](layer, where)
        modules.extend(built)
        built[-1].to(getattr(torch, dtype))
        _load(built[-1], layer)
    return nn.Sequential(*modules).to(getattr(torch, dtype))


# -- running -------------------------------------------------------------------------------------------------
@dataclass
class LayerRun:
    """One layer's output (reference layout, ``(N, ...)``) and its parameters' gradients (reference layout)."""

    output: np.ndarray
    grads: dict[str, np.ndarray]


def trace(model: nn.Module, x: np.ndarray, *, training: bool, dout: np.ndarray | None = None) -> list[LayerRun]:
    """Run ``model`` on ``x`` ``(N, C, H, W)`` leaf by leaf in training or evaluation mode; with ``dout`` (the
    final output's shape) also backward from ``sum(out * dout)``. One :class:`LayerRun` per leaf (the order of
    :func:`read`). The model's parameters, buffers, gradients and mode are as before when it returns."""
    named = leaves(model)
    state = copy.deepcopy(model.state_dict())
    saved_grads = {p: p.grad for p in model.parameters()}
    was_training = model.training
    dtype = next((p.dtype for p in model.parameters()), torch.float32)
    try:
        model.train(training)
        for p in model.parameters():
            p.grad = None
        h = torch.from_numpy(np.asarray(x)).to(dtype)
        outputs = []
        with torch.enable_grad():
            for _, module in named:
                h = module(h)
                outputs.append(h)
            if dout is not None:
                (h * torch.from_numpy(np.asarray(dout)).to(dtype)).sum().backward()
        runs = []
        for (name, module), out in zip(named, outputs, strict=True):
            grads = _read_leaf(name, module, grads=True).params if dout is not None else {}
            runs.append(LayerRun(out.detach().cpu().numpy().copy(), grads))
        return runs
    finally:
        model.load_state_dict(state)
        for p, g in saved_grads.items():
            p.grad = g
        model.train(was_training)


def parameter_dtype(model: nn.Module) -> str:
    """The dtype name of the model's first parameter (``"float32"`` when it has none)."""
    return str(next((p.dtype for p in model.parameters()), torch.float32)).removeprefix("torch.")


PICKLE_WARNING = ("a model saved with torch.save is a pickle: loading it runs code stored in the file, so load only "
                  "files you trust")


def load(path) -> nn.Module:
    """The whole module ``torch.save`` wrote to ``path`` (runs code from the file: see :data:`PICKLE_WARNING`)."""
    model = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(model, nn.Module):
        raise ValueError(f"torch port: {path} holds a {type(model).__name__}, expected a whole nn.Module saved with "
                         f"torch.save(model, path)")
    return model


def save(model: nn.Module, path) -> None:
    torch.save(model, path)
