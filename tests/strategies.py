"""Hypothesis strategies shared by the property tests: valid layer configurations as Cases."""

from __future__ import annotations

from hypothesis import assume
from hypothesis import strategies as st

from comparisons.cases import Case, spec
from reference.windows import effective_kernel, output_size

pairs = st.tuples


@st.composite
def conv_cases(draw) -> Case:
    """A random valid Conv2d case: kernel 1..5, stride 1..3, padding 0..3 (symmetric, or explicit
    ``((top, bottom), (left, right))``), dilation 1..3, every padding mode, any sizes."""
    kernel = draw(pairs(st.integers(1, 5), st.integers(1, 5)))
    stride = draw(pairs(st.integers(1, 3), st.integers(1, 3)))
    padding = draw(pairs(st.integers(0, 3), st.integers(0, 3)))
    explicit = draw(st.one_of(st.none(), pairs(pairs(st.integers(0, 3), st.integers(0, 3)),
                                                pairs(st.integers(0, 3), st.integers(0, 3)))))
    mode = draw(st.sampled_from(("zeros", "reflect", "replicate", "circular")))
    dilation = draw(pairs(st.integers(1, 3), st.integers(1, 3)))
    pads = explicit or ((padding[0], padding[0]), (padding[1], padding[1]))
    ek = effective_kernel(kernel, dilation)
    h = draw(st.integers(max(1, ek[0] - sum(pads[0])), ek[0] + 8))
    w = draw(st.integers(max(1, ek[1] - sum(pads[1])), ek[1] + 8))
    # PyTorch's limits: reflect pads less than the input, circular at most the input, per side
    limit = {"reflect": lambda p, n: p < n, "circular": lambda p, n: p <= n}.get(mode, lambda p, n: True)
    assume(all(limit(p, n) for side, n in zip(pads, (h, w), strict=True) for p in side))
    c, f = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    batch = draw(st.booleans())
    bias = draw(st.booleans())
    shape = (draw(st.integers(1, 3)), c, h, w) if batch else (c, h, w)
    layer = spec("conv", in_channels=c, out_channels=f, kernel_size=kernel, stride=stride,
                 padding=explicit or padding, dilation=dilation, bias=bias, padding_mode=mode)
    return Case("Conv2d", f"hyp-conv-{kernel}-{stride}-{explicit or padding}-{mode}-{dilation}-{shape}", (layer,),
                shape, seed=draw(st.integers(0, 2**16)), tags=frozenset() if batch else frozenset({"single"}))


def window_in_padding(n: int, k: int, s: int, p: int, d: int, out: int) -> bool:
    """Whether one of ``out`` windows along an axis of ``n`` cells reads padding only (the reference refuses
    such a max pool; PyTorch returns out-of-range indices for it: an audit finding)."""
    return any(all(not 0 <= i * s - p + j * d < n for j in range(k)) for i in range(out))


@st.composite
def pool_cases(draw, kind: str, options: bool = False) -> Case:
    """A random valid max/avg pooling case: padding at most half the kernel, stride 1..3 or None; with
    ``options`` also ``ceil_mode``, max pooling's ``dilation`` 1..2, average pooling's
    ``count_include_pad`` and ``divisor_override``."""
    kernel = draw(pairs(st.integers(1, 4), st.integers(1, 4)))
    stride = draw(st.none() | pairs(st.integers(1, 3), st.integers(1, 3)))
    padding = draw(pairs(st.integers(0, kernel[0] // 2), st.integers(0, kernel[1] // 2)))
    extra = {}
    if options:
        extra["ceil_mode"] = draw(st.booleans())
        if kind == "maxpool":
            extra["dilation"] = draw(pairs(st.integers(1, 2), st.integers(1, 2)))
        else:
            extra["count_include_pad"] = draw(st.booleans())
            extra["divisor_override"] = draw(st.none() | st.integers(1, 5))
    ek = effective_kernel(kernel, extra.get("dilation", (1, 1)))
    h = draw(st.integers(max(1, ek[0] - 2 * padding[0]), ek[0] + 9))
    w = draw(st.integers(max(1, ek[1] - 2 * padding[1]), ek[1] + 9))
    if kind == "maxpool" and options:
        pads = ((padding[0], padding[0]), (padding[1], padding[1]))
        out = output_size((h, w), kernel, stride or kernel, pads, extra["dilation"], "pool_cases",
                          ceil_mode=extra["ceil_mode"])
        assume(not any(window_in_padding(n, k, s_, p, d, o) for n, k, s_, p, d, o in
                       zip((h, w), kernel, stride or kernel, padding, extra["dilation"], out, strict=True)))
    batch = draw(st.booleans())
    c = draw(st.integers(1, 3))
    shape = (draw(st.integers(1, 3)), c, h, w) if batch else (c, h, w)
    layer_name = {"maxpool": "MaxPool2d", "avgpool": "AvgPool2d"}[kind]
    described = "-".join(f"{k}={v}" for k, v in extra.items())
    return Case(layer_name, f"hyp-{kind}-{kernel}-{stride}-{padding}-{described}-{shape}",
                (spec(kind, kernel_size=kernel, stride=stride, padding=padding, **extra),), shape,
                seed=draw(st.integers(0, 2**16)), tags=frozenset() if batch else frozenset({"single"}))


impls = st.sampled_from(("loop", "im2col"))
dtypes = st.sampled_from(("float64", "float32"))
