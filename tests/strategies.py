"""Hypothesis strategies shared by the property tests: valid layer configurations as Cases."""

from __future__ import annotations

from hypothesis import assume
from hypothesis import strategies as st

from comparisons.cases import Case, spec
from reference.windows import effective_kernel

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


@st.composite
def pool_cases(draw, kind: str) -> Case:
    """A random valid max/avg pooling case: padding at most half the kernel, stride 1..3 or None."""
    kernel = draw(pairs(st.integers(1, 4), st.integers(1, 4)))
    stride = draw(st.none() | pairs(st.integers(1, 3), st.integers(1, 3)))
    padding = draw(pairs(st.integers(0, kernel[0] // 2), st.integers(0, kernel[1] // 2)))
    h = draw(st.integers(max(1, kernel[0] - 2 * padding[0]), kernel[0] + 9))
    w = draw(st.integers(max(1, kernel[1] - 2 * padding[1]), kernel[1] + 9))
    batch = draw(st.booleans())
    c = draw(st.integers(1, 3))
    shape = (draw(st.integers(1, 3)), c, h, w) if batch else (c, h, w)
    layer_name = {"maxpool": "MaxPool2d", "avgpool": "AvgPool2d"}[kind]
    return Case(layer_name, f"hyp-{kind}-{kernel}-{stride}-{padding}-{shape}",
                (spec(kind, kernel_size=kernel, stride=stride, padding=padding),), shape,
                seed=draw(st.integers(0, 2**16)), tags=frozenset() if batch else frozenset({"single"}))


impls = st.sampled_from(("loop", "im2col"))
dtypes = st.sampled_from(("float64", "float32"))
