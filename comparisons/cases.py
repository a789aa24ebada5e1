"""The case matrix: one definition, used by pytest and by ``cnnref verify``.

A :class:`Case` is a small model (a chain of :class:`LayerSpec`, optionally ending in
softmax cross-entropy) and an input shape. The harness builds it once in the
reference and once in each framework, with the same parameters, and compares.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

import reference as ref

IMPLS = ("loop", "im2col")
DTYPES = ("float64", "float32")
SPATIAL_KINDS = ("conv", "maxpool", "avgpool")


@dataclass(frozen=True)
class LayerSpec:
    """One layer: ``kind`` in conv/maxpool/avgpool/relu/flatten/linear, and its arguments."""

    kind: str
    args: tuple[tuple[str, object], ...] = ()

    @property
    def kwargs(self) -> dict:
        return dict(self.args)


def spec(kind: str, **kwargs) -> LayerSpec:
    return LayerSpec(kind, tuple(sorted(kwargs.items())))


@dataclass(frozen=True)
class Case:
    """A model, an input shape and a readable id such as ``conv-k3x3-s2-p1-d1-batch-bias``."""

    layer: str
    id: str
    specs: tuple[LayerSpec, ...]
    input_shape: tuple[int, ...]
    loss: bool = False
    scale: float = 1.0
    seed: int = 0
    tags: frozenset = field(default_factory=frozenset)

    @property
    def single(self) -> bool:
        """True when the input is one ``(C, H, W)`` image rather than a batch."""
        return "single" in self.tags

    @property
    def spatial(self) -> bool:
        """True when some layer has a ``loop`` and an ``im2col`` implementation."""
        return any(s.kind in SPATIAL_KINDS for s in self.specs)

    @property
    def impls(self) -> tuple[str, ...]:
        return IMPLS if self.spatial else ("n/a",)

    @property
    def config(self) -> str:
        parts = [f"{s.kind}({', '.join(f'{k}={v}' for k, v in s.args)})" for s in self.specs]
        if self.loss:
            parts.append("softmax_cross_entropy")
        text = " -> ".join(parts)
        scale = f", scale={self.scale:g}" if self.scale != 1.0 else ""
        return f"{text}; input {self.input_shape}{scale}"


def build_layer(s: LayerSpec, impl: str, dtype, rng: np.random.Generator) -> ref.Layer:
    """The reference layer for a spec (``impl`` ignored by non-spatial layers)."""
    kw = s.kwargs
    if s.kind == "conv":
        return ref.Conv2d(**kw, impl=impl, dtype=dtype, rng=rng)
    if s.kind == "maxpool":
        return ref.MaxPool2d(**kw, impl=impl)
    if s.kind == "avgpool":
        return ref.AvgPool2d(**kw, impl=impl)
    if s.kind == "relu":
        return ref.ReLU()
    if s.kind == "flatten":
        return ref.Flatten()
    if s.kind == "linear":
        return ref.Linear(**kw, dtype=dtype, rng=rng)
    raise ValueError(f"build_layer: unknown layer kind {s.kind!r}")


def build_reference(case: Case, impl: str, dtype) -> ref.Sequential:
    """The case's model in the reference, parameters drawn from the case's seed."""
    impl = "im2col" if impl == "n/a" else impl
    rng = np.random.default_rng(case.seed)
    return ref.Sequential(build_layer(s, impl, dtype, rng) for s in case.specs)


# -- the matrix ----------------------------------------------------------------
def _conv_case(k, s, p, d, batch: bool, bias: bool, in_hw=(11, 10), channels=(3, 4), seed=0) -> Case:
    kh, kw = (k, k) if isinstance(k, int) else k
    c, f = channels
    shape = (2, c, *in_hw) if batch else (c, *in_hw)
    tags = frozenset() if batch else frozenset({"single"})
    cid = f"conv-k{kh}x{kw}-s{s}-p{p}-d{d}-{'batch' if batch else 'single'}-{'bias' if bias else 'nobias'}"
    if in_hw != (11, 10):
        cid += f"-in{in_hw[0]}x{in_hw[1]}"
    layer = spec("conv", in_channels=c, out_channels=f, kernel_size=(kh, kw), stride=s, padding=p, dilation=d, bias=bias)
    return Case("Conv2d", cid, (layer,), shape, seed=seed, tags=tags)


def conv_cases() -> list[Case]:
    """Kernel 1..5 x stride 1..3 x padding 0..2 x dilation 1..2, alternating single/batch and bias,
    plus rectangular kernels and inputs."""
    cases = []
    for n, (k, s, p, d) in enumerate(itertools.product(range(1, 6), range(1, 4), range(3), range(1, 3))):
        cases.append(_conv_case(k, s, p, d, batch=n % 2 == 0, bias=n % 3 != 0, seed=n))
    for n, (k, s, p, hw) in enumerate([((1, 3), 1, 0, (7, 12)), ((3, 1), 2, 1, (12, 7)), ((2, 5), 1, 2, (9, 13)),
                                       ((5, 2), 3, 1, (13, 9)), ((3, 4), 2, 0, (10, 16)), ((4, 3), 1, 1, (5, 6))]):
        cases.append(_conv_case(k, s, p, 1 + n % 2, batch=n % 2 == 1, bias=n != 2, in_hw=hw, seed=100 + n))
    return cases


def pool_cases() -> list[Case]:
    """Max and average pooling: kernel (square and rectangular) x stride x padding <= kernel/2."""
    cases = []
    for kind, layer in (("maxpool", "MaxPool2d"), ("avgpool", "AvgPool2d")):
        configs = [(k, s, p) for k in (1, 2, 3) for s in (None, 1, 2, 3) for p in range(k // 2 + 1)]
        configs += [((2, 3), (1, 2), (1, 1)), ((3, 2), 2, (1, 0)), ((1, 3), (2, 1), (0, 1))]
        for n, (k, s, p) in enumerate(configs):
            batch = n % 2 == 0
            shape = (2, 3, 9, 8) if batch else (3, 9, 8)
            kt = f"{k[0]}x{k[1]}" if isinstance(k, tuple) else f"{k}x{k}"
            st = "x".join(map(str, s)) if isinstance(s, tuple) else ("k" if s is None else str(s))
            pt = "x".join(map(str, p)) if isinstance(p, tuple) else str(p)
            cid = f"{kind}-k{kt}-s{st}-p{pt}-{'batch' if batch else 'single'}"
            cases.append(Case(layer, cid, (spec(kind, kernel_size=k, stride=s, padding=p),), shape, seed=n,
                              tags=frozenset() if batch else frozenset({"single"})))
    return cases


def dense_cases() -> list[Case]:
    """ReLU, Flatten + Linear (the weight convention), Linear on a flat batch."""
    return [
        Case("ReLU", "relu-batch", (spec("relu"),), (2, 3, 5, 4)),
        Case("ReLU", "relu-single", (spec("relu"),), (3, 5, 4), tags=frozenset({"single"})),
        Case("Linear", "linear-flat-batch", (spec("linear", in_features=7, out_features=5, bias=True),), (4, 7), seed=1),
        Case("Linear", "linear-flat-nobias", (spec("linear", in_features=7, out_features=3, bias=False),), (4, 7), seed=2),
        Case("Flatten+Linear", "flatten-linear-batch",
             (spec("flatten"), spec("linear", in_features=60, out_features=10, bias=True)), (3, 3, 5, 4), seed=3),
        Case("Flatten+Linear", "flatten-linear-single",
             (spec("flatten"), spec("linear", in_features=60, out_features=10, bias=True)), (3, 5, 4), seed=4,
             tags=frozenset({"single"})),
    ]


def loss_cases() -> list[Case]:
    """Softmax cross-entropy on logits of magnitude 1 to 1e4."""
    return [
        Case("CrossEntropy", f"cross-entropy-scale{scale:g}", (), (6, 10), loss=True, scale=scale, seed=n)
        for n, scale in enumerate((1.0, 10.0, 100.0, 1e4))
    ]


def tutorial_cnn_specs() -> tuple[LayerSpec, ...]:
    """conv 1->8 3x3, ReLU, 2x2 max pool, Linear 1352->10: the tutorial's CNN."""
    return (
        spec("conv", in_channels=1, out_channels=8, kernel_size=3, stride=1, padding=0, dilation=1, bias=True),
        spec("relu"),
        spec("maxpool", kernel_size=2, stride=None, padding=0),
        spec("flatten"),
        spec("linear", in_features=13 * 13 * 8, out_features=10, bias=True),
    )


def tutorial_cases() -> list[Case]:
    """The tutorial's whole CNN end to end with its loss, on one image and on a batch."""
    return [
        Case("TutorialCNN", "tutorial-cnn-single", tutorial_cnn_specs(), (1, 28, 28), loss=True, seed=7,
             tags=frozenset({"single"})),
        Case("TutorialCNN", "tutorial-cnn-batch", tutorial_cnn_specs(), (4, 1, 28, 28), loss=True, seed=8),
    ]


def all_cases() -> list[Case]:
    return conv_cases() + pool_cases() + dense_cases() + loss_cases() + tutorial_cases()


def expand(cases: list[Case]) -> list[tuple[Case, str, str]]:
    """Every ``(case, impl, dtype)`` triple; ``impl`` is ``"n/a"`` for non-spatial cases."""
    return [(c, impl, dt) for c in cases for impl in c.impls for dt in DTYPES]


def triple_id(triple: tuple[Case, str, str]) -> str:
    case, impl, dtype = triple
    return f"{case.id}-{impl}-{dtype}" if impl != "n/a" else f"{case.id}-{dtype}"
