"""The framework-neutral description of a model that every port reads to and builds from.

A model is a list of :class:`PortLayer`: its ``kind``, its options in PyTorch's names and conventions, and its
parameters and buffers in the reference's layout (conv kernels ``(F, C/groups, kh, kw)``, dense weights
``(in, out)``, dense rows after a Flatten in ``C, H, W`` order). Each framework's ``port`` module reads its
models into this list and builds models from it, so PyTorch -> Keras is the PyTorch reader and the Keras
builder, and the reference can stand between any two.

=============  ====================================================================================
kind           options
=============  ====================================================================================
``conv``       ``in_channels, out_channels, kernel_size, stride, pads, dilation, groups, bias,
               padding_mode``; ``pads`` is ``((top, bottom), (left, right))``
``zeropad``    ``pads``
``maxpool``    ``kernel_size, stride, pads, dilation, ceil_mode``
``avgpool``    ``kernel_size, stride, pads, ceil_mode, count_include_pad, divisor_override``
``batchnorm``  ``num_features, eps, momentum`` (PyTorch's: the weight of the batch statistic),
               ``affine, unbiased_running_var``; buffers ``running_mean, running_var``
``dropout``    ``p``
``linear``     ``in_features, out_features, bias``
``leakyrelu``  ``negative_slope``
others         ``relu, sigmoid, tanh, softmax`` (over the features of an ``(N, F)`` input), ``flatten``
=============  ====================================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from reference.windows import output_size

Pair = tuple[int, int]
Pads = tuple[Pair, Pair]
Shape = tuple[int, ...]  # one sample, reference layout: (C, H, W) or (F,)

NO_PADS: Pads = ((0, 0), (0, 0))
PADDED_KINDS = ("conv", "maxpool", "avgpool")  # the kinds a ``zeropad`` before them serves (compare folds them)
POINTWISE_KINDS = ("relu", "leakyrelu", "sigmoid", "tanh", "dropout", "batchnorm")


@dataclass
class PortLayer:
    """One layer: ``kind`` and ``options`` (see the module docstring), ``params``/``buffers`` in the reference layout;
    ``name`` and ``type`` say where it came from (``"features.0"``, ``"Conv2d"``) for messages and reports."""

    kind: str
    options: dict = field(default_factory=dict)
    params: dict[str, np.ndarray] = field(default_factory=dict)
    buffers: dict[str, np.ndarray] = field(default_factory=dict)
    name: str = ""
    type: str = ""

    def label(self) -> str:
        return f"{self.name} ({self.type})" if self.type else self.name


def refuse(index: int | str, type_name: str, reason: str) -> ValueError:
    """The error for a layer that cannot be ported exactly: names the layer (index and type) and the reason."""
    return ValueError(f"cannot port layer {index} ({type_name}): {reason}")


def pair(value, name: str = "value") -> Pair:
    """An int or a pair of ints as ``(a, b)``."""
    if isinstance(value, (int, np.integer)):
        return (int(value), int(value))
    a, b = value
    return (int(a), int(b))


def symmetric(pads: Pads) -> Pair | None:
    """``(ph, pw)`` when ``pads`` is symmetric, else None."""
    (top, bottom), (left, right) = pads
    return (top, left) if (top, left) == (bottom, right) else None


def add_pads(a: Pads, b: Pads) -> Pads:
    return tuple((x0 + y0, x1 + y1) for (x0, x1), (y0, y1) in zip(a, b, strict=True))


def output_shape(layer: PortLayer, shape: Shape) -> Shape:
    """The output shape of one sample (reference layout) for an input of shape ``shape``."""
    o = layer.options
    if layer.kind in ("conv", "maxpool", "avgpool"):
        if len(shape) != 3:
            raise ValueError(f"layer {layer.label()}: needs a (C, H, W) input, got shape {shape}")
        dilation = o.get("dilation", (1, 1))
        hw = output_size(shape[1:], o["kernel_size"], o["stride"], o["pads"], dilation, layer.label(),
                         ceil_mode=o.get("ceil_mode", False))
        return (o["out_channels"] if layer.kind == "conv" else shape[0], *hw)
    if layer.kind == "zeropad":
        (top, bottom), (left, right) = o["pads"]
        return (shape[0], shape[1] + top + bottom, shape[2] + left + right)
    if layer.kind == "flatten":
        return (int(np.prod(shape)),)
    if layer.kind == "linear":
        return (o["out_features"],)
    return tuple(shape)


def shapes(layers: list[PortLayer], input_shape: Shape) -> list[Shape]:
    """The input shape of every layer, then the model's output shape (``len(layers) + 1`` shapes)."""
    found = [tuple(input_shape)]
    for layer in layers:
        found.append(output_shape(layer, found[-1]))
    return found


def same_function_options(a: PortLayer, b: PortLayer) -> list[str]:
    """The options in which ``a`` and ``b`` (same kind) differ, as ``"eps 1e-05 vs 0.001"`` (empty when none)."""
    return [f"{key} {a.options[key]!r} vs {b.options.get(key)!r}" for key in a.options
            if key in b.options and a.options[key] != b.options[key]]


def nested_leaves(model, sequential: type, children, refusal: str, prefix: str = "") -> list[tuple[str, object]]:
    """``(dotted path, layer)`` of every layer of the (nested) ``sequential`` ``model``, in order; ``children(seq)``
    gives a Sequential's ``(name, child)`` pairs. ValueError ``"{refusal}, got <type>"`` when ``model`` is not a
    ``sequential``."""
    if not isinstance(model, sequential):
        raise ValueError(f"{refusal}, got {type(model).__name__}")
    found = []
    for name, child in children(model):
        path = f"{prefix}{name}"
        found.extend(nested_leaves(child, sequential, children, refusal, f"{path}.") if isinstance(child, sequential)
                     else [(path, child)])
    return found
