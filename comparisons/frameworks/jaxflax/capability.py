"""What JAX/Flax computes of a case: the shapes through it, and the reference's convention switches set to Flax's.

Flax NNX plus ``jax.lax`` expresses every layer and option of the matrix exactly (the layers Flax lacks are
written in :mod:`.layers`) except a grouped transposed convolution (``nnx.ConvTranspose`` and
``lax.conv_transpose`` take no groups); :func:`unsupported` names it, and any layer kind this adapter does not
build. ``nnx.BatchNorm`` folds the *biased* batch variance into its
running ``var`` (``ra = momentum * ra + (1 - momentum) * var``, ``var = mean((x - mean)**2)``), so the
reference runs with ``unbiased_running_var=False`` (:func:`reference_case`), as against Keras.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

from comparisons.cases import Case, LayerSpec, spec
from reference.conv import conv_pads
from reference.upsample import Upsample
from reference.validation import as_pair
from reference.windows import output_size

WHERE = "frameworks.jaxflax"
SHAPE_PRESERVING = ("relu", "leakyrelu", "sigmoid", "tanh", "batchnorm", "dropout", "gelu", "hardsigmoid", "softmax",
                    "layernorm", "groupnorm")
KINDS = ("conv", "convtranspose", "maxpool", "avgpool", "globalavgpool", "adaptiveavgpool", "adaptivemaxpool",
         "globalmaxpool", "flatten", "linear", "upsample", *SHAPE_PRESERVING)

Shape = tuple[int, ...]
Pair = tuple[int, int]


def pair(value, name: str, minimum: int = 1) -> Pair:
    """``value`` (an int or a pair) as a checked pair of ints."""
    return as_pair(value, WHERE, name, minimum)


def conv_geometry(s: LayerSpec) -> tuple[Pair, Pair, Pair, tuple[Pair, Pair]]:
    """``(kernel, stride, dilation, ((top, bottom), (left, right)))`` of a conv spec."""
    kw = s.kwargs
    kernel, stride, dilation = pair(kw["kernel_size"], "kernel_size"), pair(kw["stride"], "stride"), \
        pair(kw["dilation"], "dilation")
    return kernel, stride, dilation, conv_pads(kw["padding"], kernel, stride, dilation, WHERE)


def transpose_geometry(s: LayerSpec) -> tuple[Pair, Pair, Pair, Pair, Pair]:
    """``(kernel, stride, dilation, padding, output_padding)`` of a transposed-conv spec as pairs."""
    kw = s.kwargs
    return (pair(kw["kernel_size"], "kernel_size"), pair(kw["stride"], "stride"), pair(kw["dilation"], "dilation"),
            pair(kw["padding"], "padding", 0), pair(kw["output_padding"], "output_padding", 0))


def pool_geometry(s: LayerSpec) -> tuple[Pair, Pair, Pair, Pair]:
    """``(kernel, stride, padding, dilation)`` of a max/average pooling spec; stride None means the kernel."""
    kw = s.kwargs
    kernel = pair(kw["kernel_size"], "kernel_size")
    stride = kernel if kw.get("stride") is None else pair(kw["stride"], "stride")
    return kernel, stride, pair(kw.get("padding", 0), "padding", 0), pair(kw.get("dilation", 1), "dilation")


def adaptive_size(s: LayerSpec, hw: Shape) -> Pair:
    """An adaptive pool's ``output_size`` as a pair, None replaced by the input size."""
    size = s.kwargs["output_size"]
    size = (size, size) if isinstance(size, int) else size
    oh, ow = (n if o is None else o for o, n in zip(size, hw, strict=True))
    return oh, ow


def walk(specs: tuple[LayerSpec, ...], sample_shape: Shape) -> Iterator[tuple[int, LayerSpec, Shape, Shape]]:
    """Yield ``(index, spec, in_shape, out_shape)``, per-sample reference shapes ``(C, H, W)`` or ``(D,)``."""
    shape = tuple(sample_shape)
    for i, s in enumerate(specs):
        kw = s.kwargs
        if s.kind == "conv":
            kernel, stride, dilation, pads = conv_geometry(s)
            out = (kw["out_channels"], *output_size(shape[1:], kernel, stride, pads, dilation, WHERE))
        elif s.kind == "convtranspose":
            kernel, stride, dilation, padding, extra = transpose_geometry(s)
            out = (kw["out_channels"], *((n - 1) * st - 2 * p + d * (k - 1) + 1 + e for n, k, st, p, d, e
                                         in zip(shape[1:], kernel, stride, padding, dilation, extra, strict=True)))
        elif s.kind in ("maxpool", "avgpool"):
            kernel, stride, padding, dilation = pool_geometry(s)
            out = (shape[0], *output_size(shape[1:], kernel, stride, padding, dilation, WHERE,
                                          kw.get("ceil_mode", False)))
        elif s.kind in ("adaptiveavgpool", "adaptivemaxpool"):
            out = (shape[0], *adaptive_size(s, shape[1:]))
        elif s.kind in ("globalavgpool", "globalmaxpool"):
            out = (shape[0],)
        elif s.kind == "upsample":
            out = (shape[0], *Upsample(**kw).output_hw(shape[1:]))
        elif s.kind == "flatten":
            out = (int(np.prod(shape)),)
        elif s.kind == "linear":
            out = (kw["out_features"],)
        elif s.kind in SHAPE_PRESERVING:
            out = shape
        else:
            raise ValueError(f"{WHERE}: layer kind must be one of {KINDS}, got {s.kind!r}")
        yield i, s, shape, out
        shape = out


def _flax_convention(s: LayerSpec) -> LayerSpec:
    """One spec with the reference's convention switches set to what Flax computes."""
    if s.kind == "batchnorm":
        return spec("batchnorm", **{**s.kwargs, "unbiased_running_var": False})
    return s


def reference_case(case: Case) -> Case:
    """``case`` as Flax computes it: batch norm with the biased running variance (``unbiased_running_var=False``)."""
    specs = tuple(_flax_convention(s) for s in case.specs)
    return dataclasses.replace(case, specs=specs) if specs != case.specs else case


def unsupported(case: Case) -> str | None:
    """Why JAX/Flax cannot express ``case`` exactly, or None: every kind and option of the matrix is expressed
    (see the module docstring); a layer kind this adapter does not build is named, and the binary cross-entropy's
    ``clip_epsilon`` (Keras' clipping; :mod:`.losses` computes PyTorch's clamp)."""
    if case.binary_loss is not None and case.binary_loss.clip_epsilon is not None:
        return ("binary_cross_entropy: clip_epsilon is Keras' clipping of the probabilities; this adapter computes "
                "PyTorch's clamp of the logs at -100")
    for i, s in enumerate(case.specs):
        if s.kind not in KINDS:
            return f"layer {i} ({s.kind}): no Flax/JAX builder for this layer kind (known: {KINDS})"
        if s.kind == "convtranspose" and s.kwargs.get("groups", 1) > 1:
            return (f"layer {i} (convtranspose): nnx.ConvTranspose and lax.conv_transpose have no groups "
                    f"(feature_group_count); got groups={s.kwargs['groups']}")
    return None


def dtype_reason(case: Case, dtype: str) -> str | None:
    """Why JAX cannot run ``case`` in ``dtype`` to the harness's tolerance, or None: in float64 the autodiff
    derivative of ``jax.nn.gelu(approximate=True)`` (through ``1 - tanh(u)**2``) is 1.9e-14 relative from the
    reference's exact derivative at inputs of scale 5 (measured), above the 16-eps (3.6e-15) tolerance."""
    for i, s in enumerate(case.specs):
        if dtype == "float64" and s.kind == "gelu" and s.kwargs.get("approximate") == "tanh":
            return (f"layer {i} (gelu): JAX's float64 gradient of gelu(approximate=True) differs from the exact "
                    f"derivative by up to 1.9e-14 relative (1 - tanh(u)**2 loses digits where tanh(u) is near +-1)")
    return None
