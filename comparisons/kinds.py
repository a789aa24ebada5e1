"""The layer-kind registry: one :class:`LayerKind` record per kind of layer the case matrix holds.

A record says everything every consumer needs of a kind without naming a framework: the reference class it
builds (whose name is the *family* that ``cnnref verify --layer`` and the records use), how to build it from a
spec's arguments, whether it has a ``loop`` and an ``im2col`` implementation, and the longest chain of
additions behind any of its outputs or gradients (the harness's tolerance, see :mod:`comparisons.harness`).
Adding a layer kind = one record here + one builder in each framework that supports it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import reference as ref

Shape = tuple[int, ...]


@dataclass(frozen=True)
class LayerKind:
    """``name`` (the spec's ``kind``); ``family``: the reference class's name; ``build(kwargs, impl, dtype,
    rng)``: the reference layer; ``spatial``: True when it has ``loop`` and ``im2col`` implementations;
    ``reduction(layer, in_shape, out_shape)``: the longest sum behind any output or gradient (1 when none)."""

    name: str
    family: str
    build: Callable[[dict, str, np.dtype, np.random.Generator], ref.Layer]
    spatial: bool = False
    reduction: Callable[[ref.Layer, Shape, Shape], int] = lambda layer, x_shape, out_shape: 1


def _batchnorm(kw: dict, dtype, rng: np.random.Generator) -> ref.BatchNorm2d:
    """A BatchNorm2d with random gamma, beta and running statistics, so that no term of the
    forward, the backward or the running-statistics update is trivially 0 or 1."""
    layer = ref.BatchNorm2d(**kw, dtype=dtype)
    c = layer.num_features
    layer.params["weight"] = rng.uniform(0.5, 1.5, c).astype(dtype)
    layer.params["bias"] = rng.standard_normal(c).astype(dtype)
    layer.buffers["running_mean"] = (0.5 * rng.standard_normal(c)).astype(dtype)
    layer.buffers["running_var"] = rng.uniform(0.5, 2.0, c).astype(dtype)
    return layer


def _conv_reduction(layer: ref.Conv2d, x_shape: Shape, out_shape: Shape) -> int:
    kh, kw = layer.kernel_size
    positions = int(np.prod(out_shape)) // layer.out_channels
    g = layer.groups  # each output sums over its group's C/g input channels only
    return max(layer.in_channels // g * kh * kw, layer.out_channels // g * kh * kw, positions)


def _window_reduction(layer, x_shape: Shape, out_shape: Shape) -> int:
    return layer.kernel_size[0] * layer.kernel_size[1]


def _plane_reduction(layer, x_shape: Shape, out_shape: Shape) -> int:
    return x_shape[-2] * x_shape[-1]  # a window is at most the input plane


def _batchnorm_reduction(layer: ref.BatchNorm2d, x_shape: Shape, out_shape: Shape) -> int:
    # training: the mean, the variance after it and the backward's two means, each over n = N*H*W
    # values, in sequence; evaluation: only the parameter gradients' sums over n
    n = int(np.prod(x_shape)) // layer.num_features
    return 3 * n if layer.training else n


def _conv_transpose_reduction(layer: ref.ConvTranspose2d, x_shape: Shape, out_shape: Shape) -> int:
    # an output sums C/g*kh*kw terms, an input gradient F/g*kh*kw, a weight gradient the N*H*W input positions,
    # a bias gradient the N*H_out*W_out output positions
    kh, kw = layer.kernel_size
    g = layer.groups
    positions = int(np.prod(x_shape)) // layer.in_channels
    return max(layer.in_channels // g * kh * kw, layer.out_channels // g * kh * kw, positions,
               int(np.prod(out_shape)) // layer.out_channels)


def _affine_norm(layer, dtype, rng: np.random.Generator):
    """A LayerNorm or GroupNorm with random weight and bias (when it has them), so that no term is trivially 0 or 1."""
    for key, value in layer.params.items():
        draw = rng.uniform(0.5, 1.5, value.shape) if key == "weight" else rng.standard_normal(value.shape)
        layer.params[key] = draw.astype(dtype)
    return layer


def _layernorm_reduction(layer: ref.LayerNorm, x_shape: Shape, out_shape: Shape) -> int:
    # the mean, the variance after it and the backward's two means over M = prod(normalized_shape) values, in
    # sequence; the parameter gradients sum over the leading positions
    m = int(np.prod(layer.normalized_shape))
    return max(3 * m, int(np.prod(x_shape)) // m)


def _groupnorm_reduction(layer: ref.GroupNorm, x_shape: Shape, out_shape: Shape) -> int:
    # per group: 3 sums in sequence over C/g*H*W values; the parameter gradients sum over N*H*W
    per_group = int(np.prod(x_shape)) // (layer.num_groups * (x_shape[0] if len(x_shape) == 4 else 1))
    return max(3 * per_group, int(np.prod(x_shape)) // layer.num_channels)


def _softmax_reduction(layer: ref.Softmax, x_shape: Shape, out_shape: Shape) -> int:
    batch = x_shape if len(x_shape) != 3 else (1, *x_shape)
    return 2 * batch[layer.dim % len(batch)]  # the sum of exponentials, then the backward's sum, along dim


def _upsample_reduction(layer: ref.Upsample, x_shape: Shape, out_shape: Shape) -> int:
    # bilinear: 4 terms behind an output; an input gradient sums every output that read the cell (exact count)
    return layer.longest_sum(x_shape[-2:])


def _linear_reduction(layer: ref.Linear, x_shape: Shape, out_shape: Shape) -> int:
    return max(layer.in_features, layer.out_features, out_shape[0])


KINDS: dict[str, LayerKind] = {k.name: k for k in (
    LayerKind("conv", "Conv2d", lambda kw, impl, dtype, rng: ref.Conv2d(**kw, impl=impl, dtype=dtype, rng=rng),
              spatial=True, reduction=_conv_reduction),
    LayerKind("maxpool", "MaxPool2d", lambda kw, impl, dtype, rng: ref.MaxPool2d(**kw, impl=impl), spatial=True,
              reduction=_window_reduction),
    LayerKind("avgpool", "AvgPool2d", lambda kw, impl, dtype, rng: ref.AvgPool2d(**kw, impl=impl), spatial=True,
              reduction=_window_reduction),
    LayerKind("globalavgpool", "GlobalAvgPool2d", lambda kw, impl, dtype, rng: ref.GlobalAvgPool2d(impl=impl),
              spatial=True, reduction=_plane_reduction),
    LayerKind("adaptiveavgpool", "AdaptiveAvgPool2d", lambda kw, impl, dtype, rng: ref.AdaptiveAvgPool2d(**kw),
              reduction=_plane_reduction),
    LayerKind("adaptivemaxpool", "AdaptiveMaxPool2d", lambda kw, impl, dtype, rng: ref.AdaptiveMaxPool2d(**kw)),
    LayerKind("globalmaxpool", "GlobalMaxPool2d", lambda kw, impl, dtype, rng: ref.GlobalMaxPool2d()),
    LayerKind("batchnorm", "BatchNorm2d", lambda kw, impl, dtype, rng: _batchnorm(kw, dtype, rng),
              reduction=_batchnorm_reduction),
    LayerKind("dropout", "Dropout", lambda kw, impl, dtype, rng: ref.Dropout(**kw, rng=rng)),
    LayerKind("relu", "ReLU", lambda kw, impl, dtype, rng: ref.ReLU()),
    LayerKind("leakyrelu", "LeakyReLU", lambda kw, impl, dtype, rng: ref.LeakyReLU(**kw)),
    LayerKind("sigmoid", "Sigmoid", lambda kw, impl, dtype, rng: ref.Sigmoid()),
    LayerKind("tanh", "Tanh", lambda kw, impl, dtype, rng: ref.Tanh()),
    LayerKind("flatten", "Flatten", lambda kw, impl, dtype, rng: ref.Flatten()),
    LayerKind("convtranspose", "ConvTranspose2d",
              lambda kw, impl, dtype, rng: ref.ConvTranspose2d(**kw, impl=impl, dtype=dtype, rng=rng), spatial=True,
              reduction=_conv_transpose_reduction),
    LayerKind("layernorm", "LayerNorm",
              lambda kw, impl, dtype, rng: _affine_norm(ref.LayerNorm(**kw, dtype=dtype), dtype, rng),
              reduction=_layernorm_reduction),
    LayerKind("groupnorm", "GroupNorm",
              lambda kw, impl, dtype, rng: _affine_norm(ref.GroupNorm(**kw, dtype=dtype), dtype, rng),
              reduction=_groupnorm_reduction),
    LayerKind("gelu", "GELU", lambda kw, impl, dtype, rng: ref.GELU(**kw)),
    LayerKind("softmax", "Softmax", lambda kw, impl, dtype, rng: ref.Softmax(**kw), reduction=_softmax_reduction),
    LayerKind("hardsigmoid", "Hardsigmoid", lambda kw, impl, dtype, rng: ref.Hardsigmoid(**kw)),
    LayerKind("upsample", "Upsample", lambda kw, impl, dtype, rng: ref.Upsample(**kw, impl=impl), spatial=True,
              reduction=_upsample_reduction),
    LayerKind("linear", "Linear", lambda kw, impl, dtype, rng: ref.Linear(**kw, dtype=dtype, rng=rng),
              reduction=_linear_reduction),
)}
FAMILIES = tuple(dict.fromkeys(k.family for k in KINDS.values()))
# the kinds every registered framework builds; a framework's ``kinds`` (comparisons.frameworks.protocol) adds to
# these what else it builds
CORE_KINDS = frozenset({"conv", "maxpool", "avgpool", "globalavgpool", "adaptiveavgpool", "adaptivemaxpool",
                        "globalmaxpool", "batchnorm", "dropout", "relu", "leakyrelu", "sigmoid", "tanh", "flatten",
                        "linear"})


def kind(name: str) -> LayerKind:
    """The record of kind ``name``; ValueError naming the registered kinds otherwise."""
    if name not in KINDS:
        raise ValueError(f"kinds: unknown layer kind {name!r}, expected one of {tuple(KINDS)}")
    return KINDS[name]


def reduction_length(layer: ref.Layer, x_shape: Shape, out_shape: Shape) -> int:
    """The longest sum behind any output or gradient of the reference ``layer`` (its kind's ``reduction``)."""
    for record in KINDS.values():
        if type(layer).__name__ == record.family:
            return record.reduction(layer, x_shape, out_shape)
    return 1
