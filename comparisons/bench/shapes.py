"""The benchmark shapes, defined once for ``benchmarks/`` (pytest-benchmark) and ``cnnref bench``.

Each named shape is an input batch ``(N, C, H, W)`` and a 3x3 convolution on it. The
other layers reuse the same input: pooling is a 2x2 max/avg pool (stride 2), and
``Linear`` maps the flattened input ``(N, C*H*W)`` to ``filters`` outputs.

Work is counted in floating-point operations of forward + backward:

- conv: ``3 * 2*N*H'*W'*F*C*kh*kw`` (forward, weight gradient, input gradient);
- linear: ``3 * 2*N*D*F``;
- pooling: ``2 * N*C*H'*W'*kh*kw`` (one operation per window element forward, one backward).
"""

from __future__ import annotations

from dataclasses import dataclass

from comparisons.cases import LayerSpec, spec

LAYERS = ("conv", "maxpool", "avgpool", "linear")
DTYPES = ("float32", "float64")
POOL = 2

# The loop kernels visit one output position at a time; above this much work a
# forward + backward takes more than a few seconds, so the loop is not timed there.
LOOP_MAX_FLOPS = {"conv": 2e9, "maxpool": 1e7, "avgpool": 1e7, "linear": 0}


@dataclass(frozen=True)
class Shape:
    """A named input ``(n, c, h, w)`` and the 3x3 convolution benchmarked on it."""

    name: str
    n: int
    c: int
    h: int
    w: int
    filters: int
    kernel: int = 3
    padding: int = 0

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.n, self.c, self.h, self.w)

    def spec(self, layer: str) -> LayerSpec:
        """The benchmarked ``layer`` as a layer spec of the case matrix: the reference and every framework build
        it with their own table of layer kinds (:mod:`comparisons.kinds`), as for a comparison. Conv and linear
        have a bias; ``linear`` takes the input flattened, ``(N, C*H*W)``."""
        if layer == "conv":
            return spec("conv", in_channels=self.c, out_channels=self.filters, kernel_size=self.kernel, stride=1,
                        padding=self.padding, dilation=1, bias=True)
        if layer in ("maxpool", "avgpool"):
            return spec(layer, kernel_size=POOL, stride=None, padding=0)
        if layer == "linear":
            return spec("linear", in_features=self.c * self.h * self.w, out_features=self.filters, bias=True)
        raise ValueError(f"Shape.spec: layer must be one of {LAYERS}, got {layer!r}")

    def sample_shape(self, layer: str) -> tuple[int, ...]:
        """One sample's input to ``layer``: ``(C, H, W)``, or ``(C*H*W,)`` for ``linear``."""
        return (self.c * self.h * self.w,) if layer == "linear" else (self.c, self.h, self.w)

    def describe(self, layer: str) -> str:
        """Human-readable layer + shape, e.g. ``64x16x28x28 -> 32 (3x3, pad 1)``."""
        x = f"{self.n}x{self.c}x{self.h}x{self.w}"
        if layer == "conv":
            return f"{x} -> {self.filters} ({self.kernel}x{self.kernel}, pad {self.padding})"
        if layer == "linear":
            return f"{self.n}x{self.c * self.h * self.w} -> {self.filters}"
        return f"{x}, {POOL}x{POOL} stride {POOL}"

    def flops(self, layer: str) -> float:
        """Floating-point operations of one forward + backward of ``layer`` on this shape."""
        n, c, h, w, f, k, p = self.n, self.c, self.h, self.w, self.filters, self.kernel, self.padding
        if layer == "conv":
            oh, ow = h + 2 * p - k + 1, w + 2 * p - k + 1
            return 3.0 * 2 * n * oh * ow * f * c * k * k
        if layer == "linear":
            return 3.0 * 2 * n * c * h * w * f
        if layer in ("maxpool", "avgpool"):
            return 2.0 * n * c * (h // POOL) * (w // POOL) * POOL * POOL
        raise ValueError(f"Shape.flops: layer must be one of {LAYERS}, got {layer!r}")

    def loop_feasible(self, layer: str) -> bool:
        """True when the loop implementation finishes in seconds here (see LOOP_MAX_FLOPS)."""
        return self.flops(layer) <= LOOP_MAX_FLOPS[layer]


SHAPES = {
    s.name: s
    for s in (
        Shape("tutorial", 1, 1, 28, 28, 8),
        Shape("batch64", 64, 1, 28, 28, 8),
        Shape("mid", 64, 16, 28, 28, 32, padding=1),
        Shape("large", 32, 64, 32, 32, 64, padding=1),
    )
}
