"""JAX/Flax side of the harness: the case's model as Flax NNX modules with the reference's parameters,
differentiated with ``jax.vjp`` of a function of ``(x, params)`` (jitted, one compilation per model and shape).

Flax is channels-last, so every array crosses :mod:`comparisons.frameworks.layouts` both ways, as Keras':
inputs and ``dout`` NCHW -> NHWC, conv kernels OIHW -> HWIO (grouped: ``(kh, kw, C/g, F)``, what
``feature_group_count`` takes), dense rows after a Flatten from ``C, H, W`` to ``H, W, C`` order; results back.

Layers: ``nnx.Conv`` (padding "SAME"/"VALID" where the reference says so, else explicit ``((top, bottom),
(left, right))``; PyTorch's other padding modes by ``jnp.pad`` + "VALID"), ``nnx.max_pool`` with explicit
``-inf`` padding (``ceil_mode``'s overhang added bottom/right), ``nnx.avg_pool`` (padding counted, k*k
divisors); ``nnx.pool`` sums divided by the reference's divisors for ``divisor_override``, for
``count_include_pad=False`` (Flax's own divisor is float64 under x64) and for ``ceil_mode`` windows reaching
past the padding), ``nnx.BatchNorm``
(``momentum = 1 - momentum``, ``epsilon = eps``, two-pass variance), ``nnx.Dropout`` in evaluation mode and
the reference's mask in training mode, ``nnx.Linear``, ``nnx.ConvTranspose(transpose_kernel=True)`` (PyTorch's
transposed conv, groups 1), ``nnx.LayerNorm`` / ``nnx.GroupNorm`` (two-pass variance; a layer norm's scale and
bias are flat over its axes, in the Flax layout's order), ``jax.nn.gelu`` / ``hard_sigmoid`` / ``softmax`` (the
reference's ``dim`` moved to the channels-last axis); :mod:`.layers` for the rest. Kernels are created with a
zeros initialiser (the reference's values replace them: no random draw, no initialiser compilation).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax

from comparisons.cases import Case, LayerSpec
from comparisons.cases_options import BinaryCrossEntropyOption
from comparisons.frameworks.protocol import RunInputs
from reference.upsample import Upsample
from reference.windows import overhang

from .. import layouts
from .capability import Shape, adaptive_size, conv_geometry, pool_geometry, transpose_geometry, walk
from .layers import MaskedDropout, adaptive_pool, global_max_pool, pad_mode, window_max
from .losses import case_binary_loss, case_loss

ZEROS = nnx.initializers.zeros_init()


class Fn(nnx.Module):
    """A stateless layer: ``fn(x)`` (a pooling or activation function)."""

    def __init__(self, fn) -> None:
        self.fn = fn

    def __call__(self, x):
        return self.fn(x)


class PaddedConv(nnx.Module):
    """``nnx.Conv(padding="VALID")`` after ``jnp.pad`` with PyTorch's ``padding_mode`` (reflect, replicate,
    circular)."""

    def __init__(self, conv: nnx.Conv, pads, mode: str) -> None:
        self.conv, self.pads, self.mode = conv, pads, mode

    def __call__(self, x):
        return self.conv(pad_mode(x, self.pads, self.mode))


class CaseModel(nnx.Module):
    """The layers of a case; ``model(x (N, H, W, C) or (N, D)) -> (out, {"i.indices": (N, H', W', C)})``."""

    def __init__(self, layers: list[nnx.Module], with_indices: tuple[int, ...]) -> None:
        self.layers, self.with_indices = nnx.List(layers), with_indices

    def __call__(self, x):
        indices = {}
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in self.with_indices:
                x, indices[f"{i}.indices"] = x
        return x, indices


def _conv(s: LayerSpec, dtype, rngs: nnx.Rngs) -> nnx.Module:
    kw = s.kwargs
    kernel, stride, dilation, pads = conv_geometry(s)
    mode = kw.get("padding_mode", "zeros")
    if mode != "zeros":
        padding = "VALID"
    elif isinstance(kw["padding"], str):
        padding = kw["padding"].upper()  # "same" at stride 1 pads as lax's "SAME": total // 2 at the top/left
    else:
        padding = pads
    conv = nnx.Conv(kw["in_channels"], kw["out_channels"], kernel, strides=stride, padding=padding,
                    kernel_dilation=dilation, feature_group_count=kw.get("groups", 1), use_bias=kw["bias"],
                    dtype=dtype, param_dtype=dtype, kernel_init=ZEROS, rngs=rngs)
    return conv if mode == "zeros" else PaddedConv(conv, pads, mode)


def _conv_transpose(s: LayerSpec, dtype, rngs: nnx.Rngs) -> nnx.Module:
    """PyTorch's ``ConvTranspose2d`` (the gradient of a conv) as ``nnx.ConvTranspose(transpose_kernel=True)``:
    the dilated input padded ``d*(k-1) - p`` before and ``d*(k-1) - p + output_padding`` after; kernel
    ``(kh, kw, F, C)``, the forward conv's HWIO (PyTorch's ``(C, F, kh, kw)`` through ``oihw_to_hwio``)."""
    kw = s.kwargs
    kernel, stride, dilation, padding, extra = transpose_geometry(s)
    pads = tuple((d * (k - 1) - p, d * (k - 1) - p + e) for k, d, p, e in zip(kernel, dilation, padding, extra,
                                                                            strict=True))  # hashable: jit's key
    return nnx.ConvTranspose(kw["in_channels"], kw["out_channels"], kernel, strides=stride, padding=pads,
                             kernel_dilation=dilation, use_bias=kw["bias"], transpose_kernel=True, dtype=dtype,
                             param_dtype=dtype, kernel_init=ZEROS, rngs=rngs)


def _channels_last_axis(dim: int, ndim: int) -> int:
    """The axis of a channels-last array holding axis ``dim`` of the channels-first ``ndim``-d array."""
    dim %= ndim
    return {0: 0, 1: ndim - 1}.get(dim, dim - 1) if ndim == 4 else dim


def _layer_norm(s: LayerSpec, in_shape: Shape, dtype, channels_last: bool, rngs: nnx.Rngs) -> nnx.Module:
    """``nnx.LayerNorm`` over the trailing ``normalized_shape`` axes of the reference layout, written as the
    Flax layout's axes; its scale and bias are flat over those axes (in the Flax layout's order)."""
    kw = s.kwargs
    normalized = kw["normalized_shape"]
    count = 1 if isinstance(normalized, int) else len(normalized)
    ndim = len(in_shape) + 1
    axes = tuple(sorted(_channels_last_axis(a, ndim) if channels_last else a for a in range(ndim - count, ndim)))
    return nnx.LayerNorm(int(np.prod(normalized)), epsilon=kw["eps"], use_scale=kw["elementwise_affine"],
                         use_bias=kw["elementwise_affine"] and kw["bias"], reduction_axes=axes, feature_axes=axes,
                         use_fast_variance=False, dtype=dtype, param_dtype=dtype, rngs=rngs)


def _avg_pool(x, kernel, stride, padding, extra, include: bool, divisor: int | None):
    """Average pooling of ``x (N, H, W, C)`` with the reference's divisors (see the module docstring)."""
    (ph, pw), (eh, ew) = padding, extra
    pads = ((ph, ph + eh), (pw, pw + ew))
    if divisor is not None:
        return nnx.pool(x, 0.0, lax.add, kernel, stride, pads) / divisor
    if include and (eh, ew) == (0, 0):
        return nnx.avg_pool(x, kernel, stride, pads)  # divides by kh*kw
    # the divisor as Flax's count_include_pad=False computes it, a sum-pool of ones, but in x's dtype (Flax's
    # jnp.ones takes the default float, float64 under x64, and turns a float32 output float64); with the padding
    # counted (ceil_mode), the ones cover the padded input and the last window counts only what it covers
    if include:
        ones, ones_pads = jnp.ones((1, x.shape[1] + 2 * ph, x.shape[2] + 2 * pw, 1), x.dtype), ((0, eh), (0, ew))
    else:
        ones, ones_pads = jnp.ones((1, x.shape[1], x.shape[2], 1), x.dtype), pads
    return nnx.pool(x, 0.0, lax.add, kernel, stride, pads) / nnx.pool(ones, 0.0, lax.add, kernel, stride, ones_pads)


def _pool(s: LayerSpec, in_shape: Shape, out_shape: Shape) -> nnx.Module:
    kw = s.kwargs
    kernel, stride, padding, dilation = pool_geometry(s)
    extra = overhang(in_shape[1:], kernel, stride, padding, dilation, out_shape[1:])
    if s.kind == "avgpool":
        return Fn(functools.partial(_avg_pool, kernel=kernel, stride=stride, padding=padding, extra=extra,
                                    include=kw.get("count_include_pad", True), divisor=kw.get("divisor_override")))
    pads = tuple((p, p + e) for p, e in zip(padding, extra, strict=True))
    if dilation == (1, 1) and not kw.get("return_indices", False):
        return Fn(functools.partial(nnx.max_pool, window_shape=kernel, strides=stride, padding=pads))
    fn = functools.partial(window_max, kernel=kernel, stride=stride, dilation=dilation, pads=pads)
    return Fn(fn if kw.get("return_indices", False) else lambda x: fn(x)[0])


def _resize(x, plans):
    """``x (N, H, W, C)`` resized as the reference's ``Upsample`` (its per-axis index and weight arrays, PyTorch's
    arithmetic; ``jax.image.resize`` does not pick PyTorch's nearest cells): along the width, then the height."""
    for plan, axis, shape in zip(plans[::-1], (2, 1), ((-1, 1), (-1, 1, 1)), strict=True):
        first = jnp.take(x, jnp.asarray(plan.i0), axis=axis)
        if plan.l0 is None:
            x = first
        else:
            x = (first * jnp.asarray(plan.l0).reshape(shape)
                 + jnp.take(x, jnp.asarray(plan.i1), axis=axis) * jnp.asarray(plan.l1).reshape(shape))
    return x


def _layer(s: LayerSpec, in_shape: Shape, out_shape: Shape, dtype, training: bool, mask: bool,
           rngs: nnx.Rngs, channels_last: bool = True) -> nnx.Module:
    """The Flax module of one spec (channels-last)."""
    kw = s.kwargs
    if s.kind == "conv":
        return _conv(s, dtype, rngs)
    if s.kind == "convtranspose":
        return _conv_transpose(s, dtype, rngs)
    if s.kind == "layernorm":
        return _layer_norm(s, in_shape, dtype, channels_last, rngs)
    if s.kind == "groupnorm":
        return nnx.GroupNorm(kw["num_channels"], num_groups=kw["num_groups"], epsilon=kw["eps"], use_bias=kw["affine"],
                             use_scale=kw["affine"], use_fast_variance=False, dtype=dtype, param_dtype=dtype, rngs=rngs)
    if s.kind == "gelu":  # erf ("none") or tanh approximation
        return Fn(functools.partial(jax.nn.gelu, approximate=kw.get("approximate", "none") == "tanh"))
    if s.kind == "hardsigmoid":  # relu6(x + 3) / 6: the exact 1/6 slope (the reference's default)
        return Fn(jax.nn.hard_sigmoid)
    if s.kind == "softmax":  # the reference's dim counts the batch axis, in the channels-first layout
        axis = _channels_last_axis(kw.get("dim", 1), len(in_shape) + 1) if channels_last else kw.get("dim", 1)
        return Fn(functools.partial(jax.nn.softmax, axis=axis))
    if s.kind == "upsample":
        return Fn(functools.partial(_resize, plans=Upsample(**kw).plans(in_shape[1:], dtype)))
    if s.kind in ("maxpool", "avgpool"):
        return _pool(s, in_shape, out_shape)
    if s.kind in ("adaptiveavgpool", "adaptivemaxpool"):
        size, op = adaptive_size(s, in_shape[1:]), "avg" if s.kind == "adaptiveavgpool" else "max"
        fn = functools.partial(adaptive_pool, out_hw=size, op=op)
        return Fn(fn if op == "avg" or kw.get("return_indices", False) else lambda x: fn(x)[0])
    if s.kind == "globalavgpool":
        return Fn(functools.partial(jnp.mean, axis=(1, 2)))
    if s.kind == "globalmaxpool":
        return Fn(global_max_pool)
    if s.kind == "batchnorm":
        # Flax's momentum weighs the old running value: 1 - PyTorch's
        return nnx.BatchNorm(kw["num_features"], use_running_average=not training, momentum=1.0 - kw["momentum"],
                             epsilon=kw["eps"], use_fast_variance=False, dtype=dtype, param_dtype=dtype, rngs=rngs)
    if s.kind == "dropout":
        if training and mask:
            return MaskedDropout(kw["p"], jnp.ones((1, *in_shape), dtype))
        return nnx.Dropout(kw["p"], deterministic=not training, rngs=rngs)
    if s.kind == "relu":
        return Fn(jax.nn.relu)
    if s.kind == "leakyrelu":
        return Fn(functools.partial(jax.nn.leaky_relu, negative_slope=kw["negative_slope"]))
    if s.kind == "sigmoid":
        return Fn(jax.nn.sigmoid)
    if s.kind == "tanh":
        return Fn(jnp.tanh)
    if s.kind == "flatten":
        return Fn(lambda x: x.reshape(x.shape[0], -1))
    return nnx.Linear(kw["in_features"], kw["out_features"], use_bias=kw["bias"], dtype=dtype, param_dtype=dtype,
                      kernel_init=ZEROS, rngs=rngs)


def _hwc(chw: Shape) -> Shape:
    c, h, w = chw
    return (h, w, c)


class FlaxModel:
    """A case's :class:`CaseModel` and where each reference quantity lives in it, with the layout conversions.

    ``training``: batch norm uses (and updates) batch statistics, dropout drops; ``masks``: training-mode
    dropout applies a given keep-mask (:meth:`load`), else ``nnx.Dropout``'s own draw (``seed``).
    """

    def __init__(self, specs: tuple[LayerSpec, ...], sample_shape: Shape, dtype: str, training: bool,
                 masks: bool = True, seed: int = 0) -> None:
        rngs = nnx.Rngs(params=seed, dropout=seed)
        self.channels_last = bool(specs) and len(sample_shape) == 3
        self.dense_features: dict[int, Shape] = {}  # linear index -> the (C, H, W) its input was flattened from
        self.flat_from: dict[int, Shape] = {}  # dropout index -> the (C, H, W) its input was flattened from
        self.layer_norm_chw: dict[int, Shape] = {}  # layer norms over a whole (C, H, W) map in a channels-last model
        self.layer_norm_flat: dict[int, Shape] = {}  # the other layer norms: normalized_shape
        layers, with_indices, flat_from, out_shape = [], [], None, tuple(sample_shape)
        for i, s, in_shape, out_shape in walk(specs, sample_shape):
            if s.kind == "layernorm":
                normalized = s.kwargs["normalized_shape"]
                normalized = (normalized,) if isinstance(normalized, int) else tuple(normalized)
                if self.channels_last and len(normalized) == 3:
                    self.layer_norm_chw[i] = normalized
                else:
                    self.layer_norm_flat[i] = normalized
            layers.append(_layer(s, in_shape, out_shape, jnp.dtype(dtype), training, masks, rngs,
                                 self.channels_last and len(in_shape) == 3))
            if s.kwargs.get("return_indices", False):
                with_indices.append(i)
            if s.kind == "flatten" and len(in_shape) == 3:
                flat_from = in_shape
            elif s.kind == "linear":
                if flat_from is not None:
                    self.dense_features[i] = flat_from
                flat_from = None
            elif s.kind == "dropout" and flat_from is not None:
                self.flat_from[i] = flat_from
            elif s.kind not in ("relu", "leakyrelu", "sigmoid", "tanh", "batchnorm", "dropout", "gelu", "hardsigmoid"):
                flat_from = None
        self.out_flat_from, self.out_spatial = flat_from, self.channels_last and len(out_shape) == 3
        self.module = CaseModel(layers, tuple(with_indices))

    # -- layouts -------------------------------------------------------------
    def to_flax(self, x: np.ndarray) -> np.ndarray:
        """The batched input (or its gradient) in the reference layout -> Flax's."""
        return layouts.nchw_to_nhwc(x) if self.channels_last else x

    def from_flax(self, x: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`to_flax`."""
        return layouts.nhwc_to_nchw(x) if self.channels_last else x

    def out_to_flax(self, a: np.ndarray) -> np.ndarray:
        """The model's output (or ``dout``) in the reference layout -> Flax's."""
        if self.out_flat_from is not None:
            return layouts.flat_chw_to_hwc(a, chw=self.out_flat_from)
        return layouts.nchw_to_nhwc(a) if self.out_spatial else a

    def out_from_flax(self, a: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`out_to_flax`."""
        if self.out_flat_from is not None:
            return layouts.flat_hwc_to_chw(a, hwc=_hwc(self.out_flat_from))
        return layouts.nhwc_to_nchw(a) if self.out_spatial else a

    @staticmethod
    def variables(layer: nnx.Module) -> dict[str, nnx.Variable]:
        """A layer's variables under the reference's names (parameters, then batch norm's buffers)."""
        if isinstance(layer, PaddedConv):
            layer = layer.conv
        if isinstance(layer, nnx.BatchNorm):
            return {"weight": layer.scale, "bias": layer.bias, "running_mean": layer.mean, "running_var": layer.var}
        if isinstance(layer, (nnx.LayerNorm, nnx.GroupNorm)):
            return {name: v for name, v in (("weight", layer.scale), ("bias", layer.bias)) if v is not None}
        return {"weight": layer.kernel, **({"bias": layer.bias} if getattr(layer, "bias", None) is not None else {})}

    def param_to_flax(self, key: str, value: np.ndarray) -> np.ndarray:
        """A reference quantity (``"0.weight"`` OIHW or ``(in, out)``, biases, buffers) in Flax's layout."""
        index, name = key.split(".", 1)
        if int(index) in self.layer_norm_chw:  # a (C, H, W) block: flat in H, W, C order
            return np.ascontiguousarray(value.transpose(1, 2, 0)).ravel()
        if int(index) in self.layer_norm_flat:
            return value.ravel()
        if name == "weight" and value.ndim == 4:
            return layouts.oihw_to_hwio(value)
        if name == "weight" and int(index) in self.dense_features:
            return layouts.dense_rows_chw_to_hwc(value, chw=self.dense_features[int(index)])
        return value

    def param_from_flax(self, key: str, value: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`param_to_flax`."""
        index, name = key.split(".", 1)
        if int(index) in self.layer_norm_chw:
            c, h, w = self.layer_norm_chw[int(index)]
            return np.ascontiguousarray(value.reshape(h, w, c).transpose(2, 0, 1))
        if int(index) in self.layer_norm_flat:
            return value.reshape(self.layer_norm_flat[int(index)])
        if name == "weight" and value.ndim == 4:
            return layouts.hwio_to_oihw(value)
        if name == "weight" and int(index) in self.dense_features:
            return layouts.dense_rows_hwc_to_chw(value, hwc=_hwc(self.dense_features[int(index)]))
        return value

    def read(self, module: CaseModel, key: str) -> np.ndarray:
        """Quantity ``key`` of ``module`` (this model's module or one merged from gradients), reference layout."""
        index, name = key.split(".", 1)
        return self.param_from_flax(key, np.asarray(self.variables(module.layers[int(index)])[name][...]))

    def load(self, values: dict[str, np.ndarray], masks: dict[int, np.ndarray] | None = None) -> None:
        """Set reference-layout parameters/buffers ``values`` and training-mode dropout ``masks``."""
        for key, value in values.items():  # whole values: nnx.BatchNorm creates its statistics float32 in any dtype
            index, name = key.split(".", 1)
            self.variables(self.module.layers[int(index)])[name].set_value(jnp.asarray(self.param_to_flax(key, value)))
        for i, mask in (masks or {}).items():
            flat = self.flat_from.get(i)
            converted = (layouts.flat_chw_to_hwc(mask, chw=flat) if flat
                         else layouts.nchw_to_nhwc(mask) if mask.ndim == 4 else mask)
            self.module.layers[i].mask.set_value(jnp.asarray(converted))

    def export(self, keys) -> dict[str, np.ndarray]:
        """The quantities ``keys`` in the reference layout."""
        return {key: self.read(self.module, key) for key in keys}


@functools.lru_cache(maxsize=256)
def build(specs: tuple[LayerSpec, ...], sample_shape: Shape, dtype: str, training: bool) -> FlaxModel:
    """The Flax model of ``specs`` for per-sample input ``sample_shape``, built once per process."""
    return FlaxModel(specs, sample_shape, dtype, training)


def _forward(graphdef, params, rest, x):
    """``(out, (indices, batch statistics after the call))`` of the merged model on ``x``."""
    module = nnx.merge(graphdef, params, rest, copy=True)  # new Variables: batch norm updates them in this trace
    out, indices = module(x)
    return out, (indices, nnx.state(module, nnx.BatchStat))


@functools.partial(jax.jit, static_argnums=0)
def _vjp_dout(graphdef, params, rest, x, dout):
    out, vjp, (indices, stats) = jax.vjp(lambda x_, p: _forward(graphdef, p, rest, x_), x, params, has_aux=True)
    dx, dparams = vjp(dout)
    return out, indices, stats, dx, dparams


@functools.partial(jax.jit, static_argnums=(0, 1))
def _vjp_loss(graphdef, option, params, rest, x, target, weight, pos_weight, dloss):
    """Forward and backward of the model and its loss: the binary cross-entropy ``option`` when it is one (the output
    in the reference layout: a model without layers), else the cross-entropy ``option`` (None: the plain one)."""
    def loss_fn(x_, p):
        out, aux = _forward(graphdef, p, rest, x_)
        if isinstance(option, BinaryCrossEntropyOption):
            return case_binary_loss(option, out, target, weight, pos_weight), (out, aux)
        return case_loss(option, out, target, weight), (out, aux)

    loss, vjp, (out, (indices, stats)) = jax.vjp(loss_fn, x, params, has_aux=True)
    dx, dparams = vjp(jnp.asarray(dloss, loss.dtype))
    return loss, out, indices, stats, dx, dparams


def run(case: Case, inputs: RunInputs) -> dict[str, np.ndarray]:
    """See :class:`comparisons.frameworks.protocol.Framework`; every result in the reference layout."""
    params, buffers, labels, loss_args = inputs.params, inputs.buffers, inputs.labels, inputs.loss_args
    model = build(case.specs, tuple(inputs.x.shape[1:]), inputs.dtype, not case.eval_mode)
    model.load({**params, **buffers}, inputs.masks)
    graphdef, pstate, rest = nnx.split(model.module, nnx.Param, ...)
    xf = jnp.asarray(model.to_flax(inputs.x))
    if labels is not None:
        weight, pos_weight = (loss_args.get(k) for k in ("weight", "pos_weight"))
        loss, out, indices, stats, dx, dparams = _vjp_loss(
            graphdef, case.binary_loss or case.loss_option, pstate, rest, xf, jnp.asarray(labels),
            None if weight is None else jnp.asarray(weight), None if pos_weight is None else jnp.asarray(pos_weight),
            np.asarray(loss_args.get("dloss", 1.0), inputs.dtype))
    else:
        out, indices, stats, dx, dparams = _vjp_dout(graphdef, pstate, rest, xf,
                                                     jnp.asarray(model.out_to_flax(inputs.dout)))
    results = {"forward": model.out_from_flax(np.asarray(out)), "dx": model.from_flax(np.asarray(dx))}
    if labels is not None:
        results["loss"] = np.asarray(loss)
    for key, value in indices.items():
        results[key] = layouts.nhwc_to_nchw(np.asarray(value))
    grads = nnx.merge(graphdef, dparams, rest)
    for key in params:
        results[key] = model.read(grads, key)
    nnx.update(model.module, stats)
    for key in buffers:
        results[key] = model.read(model.module, key)
    return results
