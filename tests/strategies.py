"""Hypothesis strategies shared by the property tests: valid layer configurations as Cases."""

from __future__ import annotations

from hypothesis import strategies as st

from comparisons.cases import Case, spec
from reference.windows import effective_kernel

pairs = st.tuples


@st.composite
def conv_cases(draw) -> Case:
    """A random valid Conv2d case: kernel 1..5, stride 1..3, padding 0..3, dilation 1..3, any sizes."""
    kernel = draw(pairs(st.integers(1, 5), st.integers(1, 5)))
    stride = draw(pairs(st.integers(1, 3), st.integers(1, 3)))
    padding = draw(pairs(st.integers(0, 3), st.integers(0, 3)))
    dilation = draw(pairs(st.integers(1, 3), st.integers(1, 3)))
    ek = effective_kernel(kernel, dilation)
    h = draw(st.integers(max(1, ek[0] - 2 * padding[0]), ek[0] + 8))
    w = draw(st.integers(max(1, ek[1] - 2 * padding[1]), ek[1] + 8))
    c, f = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    batch = draw(st.booleans())
    bias = draw(st.booleans())
    shape = (draw(st.integers(1, 3)), c, h, w) if batch else (c, h, w)
    layer = spec("conv", in_channels=c, out_channels=f, kernel_size=kernel, stride=stride, padding=padding,
                 dilation=dilation, bias=bias)
    return Case("Conv2d", f"hyp-conv-{kernel}-{stride}-{padding}-{dilation}-{shape}", (layer,), shape,
                seed=draw(st.integers(0, 2**16)), tags=frozenset() if batch else frozenset({"single"}))


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
