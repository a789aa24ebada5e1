"""The option configurations (cross-entropy and binary cross-entropy options, pooling options, adaptive and global
pooling).

Data only, plus the seeded arrays each configuration runs on. The shared case matrix
(``cases.py``) turns them into cases; the reference tests and the tie-rule tests read them
directly, so a configuration is written once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class CrossEntropyOption:
    """One ``softmax_cross_entropy`` configuration.

    ``target``: ``"index"`` (integer classes) or ``"prob"`` (random class probabilities).
    ``ignore``: None (no ignored position), or the ``ignore_index`` planted in about a
    quarter of the index targets (-100 is PyTorch's default; an in-range class also works).
    ``scale``: logits are ``scale * standard_normal``.
    """

    id: str
    scores_shape: tuple[int, ...]
    target: str = "index"
    weight: bool = False
    ignore: int | None = None
    reduction: str = "mean"
    label_smoothing: float = 0.0
    scale: float = 1.0
    seed: int = 0

    def kwargs(self, weight: np.ndarray | None) -> dict:
        """Keyword arguments shared by ``softmax_cross_entropy`` and ``F.cross_entropy``."""
        out = {"weight": weight, "reduction": self.reduction, "label_smoothing": self.label_smoothing}
        if self.ignore is not None:
            out["ignore_index"] = self.ignore
        return out


    def describe(self) -> str:
        """The options as ``softmax_cross_entropy`` keywords, for a case's config."""
        text = f"target={self.target}, weight={self.weight}, reduction={self.reduction!r}"
        text += f", label_smoothing={self.label_smoothing:g}" if self.label_smoothing else ""
        return text + (f", ignore_index={self.ignore}" if self.ignore is not None else "")


def ce_arrays(opt: CrossEntropyOption, dtype: str = "float64"):
    """``(scores, target, weight, dloss)`` for ``opt``, seeded; see :func:`ce_targets`."""
    rng = np.random.default_rng(opt.seed)
    scores = (opt.scale * rng.standard_normal(opt.scores_shape)).astype(dtype)
    return (scores, *ce_targets(opt, opt.scores_shape, dtype, rng))


def ce_targets(opt: CrossEntropyOption, shape: tuple[int, ...], dtype: str, rng: np.random.Generator):
    """``(target, weight, dloss)`` for scores of ``shape`` ``(N, C, d1, ...)``, drawn from ``rng``:
    index targets (int64, ``ignore`` planted) or probabilities, class weights or None, and ``dloss``
    a float for mean/sum, an array of the loss's shape ``(N, d1, ...)`` for none."""
    n_classes, loss_shape = shape[1], shape[:1] + shape[2:]
    if opt.target == "prob":
        target = np.moveaxis(rng.dirichlet(np.ones(n_classes), loss_shape), -1, 1).astype(dtype)
    else:
        target = rng.integers(0, n_classes, loss_shape)
        if opt.ignore is not None:
            target[rng.uniform(size=loss_shape) < 0.25] = opt.ignore
            target.flat[0] = opt.ignore  # at least one ignored position
    weight = rng.uniform(0.2, 2.0, n_classes).astype(dtype) if opt.weight else None
    dloss = rng.standard_normal(loss_shape).astype(dtype) if opt.reduction == "none" else float(rng.uniform(0.5, 2))
    return target, weight, dloss


_CE = CrossEntropyOption
CROSS_ENTROPY_OPTIONS: list[CrossEntropyOption] = [
    _CE("ce-idx-N6C5-mean", (6, 5)),
    _CE("ce-idx-N6C5-mean-weight", (6, 5), weight=True, seed=1),
    _CE("ce-idx-N8C5-mean-weight-ign-100", (8, 5), weight=True, ignore=-100, seed=2),
    _CE("ce-idx-N8C5-mean-ign2", (8, 5), ignore=2, seed=3),
    _CE("ce-idx-N8C5-mean-ign-100-ls0.1", (8, 5), ignore=-100, label_smoothing=0.1, seed=4),
    _CE("ce-idx-N6C5-sum-weight-ls0.2", (6, 5), weight=True, reduction="sum", label_smoothing=0.2, seed=5),
    _CE("ce-idx-N8C5-none-weight-ign-100-ls0.1", (8, 5), weight=True, ignore=-100, reduction="none",
        label_smoothing=0.1, seed=6),
    _CE("ce-idx-N6C5-mean-ls1", (6, 5), label_smoothing=1.0, seed=7),
    _CE("ce-idx-N6C10-mean-weight-ls0.1-scale1e4", (6, 10), weight=True, label_smoothing=0.1, scale=1e4, seed=8),
    _CE("ce-idx-N3C4d2x3-mean-weight-ign-100-ls0.1", (3, 4, 2, 3), weight=True, ignore=-100, label_smoothing=0.1,
        seed=9),
    _CE("ce-idx-N3C4d2x3-none", (3, 4, 2, 3), reduction="none", seed=10),
    _CE("ce-idx-N2C3d5-sum-ign-100", (2, 3, 5), ignore=-100, reduction="sum", seed=11),
    _CE("ce-prob-N6C5-mean", (6, 5), target="prob", seed=12),
    _CE("ce-prob-N6C5-mean-weight-ls0.2", (6, 5), target="prob", weight=True, label_smoothing=0.2, seed=13),
    _CE("ce-prob-N6C5-sum-weight", (6, 5), target="prob", weight=True, reduction="sum", seed=14),
    _CE("ce-prob-N6C5-none-ls0.1", (6, 5), target="prob", reduction="none", label_smoothing=0.1, seed=15),
    _CE("ce-prob-N3C4d2x3-mean-weight", (3, 4, 2, 3), target="prob", weight=True, seed=16),
    _CE("ce-prob-N3C4d2x3-none-weight-ls0.3", (3, 4, 2, 3), target="prob", weight=True, reduction="none",
        label_smoothing=0.3, seed=17),
    _CE("ce-prob-N6C10-mean-ls0.1-scale1e4", (6, 10), target="prob", label_smoothing=0.1, scale=1e4, seed=18),
]


REDUCTIONS = ("mean", "sum", "none")
BINARY_TARGETS = ("binary", "soft")
EDGE_PAIRS = ((0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0))  # (probability, target) planted first under edges


@dataclass(frozen=True)
class BinaryCrossEntropyOption:
    """One ``binary_cross_entropy`` (``logits=False``: the input is probabilities) or
    ``binary_cross_entropy_with_logits`` (``logits=True``) configuration, on an input of ``scores_shape``
    ``(N, C)`` or ``(N, C, H, W)``.

    - ``weight``: a weight per class, shaped ``(C, 1, ...)`` to broadcast over the input (PyTorch's ``weight``);
      ``pos_weight`` (logits only): a weight per class on the positive term, same shape.
    - ``targets``: ``"binary"`` (exactly 0.0 and 1.0) or ``"soft"`` (uniform in ``[0, 1]``).
    - ``edges``: probabilities of exactly 0 and 1 (``logits=False``: every probability is 0.0 or 1.0, the
      first four positions paired with targets as :data:`EDGE_PAIRS`; soft targets get those four 0/1 targets
      too, and with ``logits=True`` only those). The large logits of a high ``scale`` are the logits' edge:
      sigmoid rounds them to exactly 0.0 and 1.0 in float32 (and to 1.0 in float64).
    - ``scale``: logits are ``scale * standard_normal``; probabilities without edges are ``uniform(0, 1)``.
    - ``clip_epsilon``: the reference's switch to Keras' clipping of the probabilities (``None``: PyTorch's clamp
      of the logs at -100); set by a framework's ``reference_case``, never in a configuration.
    """

    id: str
    scores_shape: tuple[int, ...]
    logits: bool
    weight: bool = False
    pos_weight: bool = False
    reduction: str = "mean"
    targets: str = "binary"
    edges: bool = False
    scale: float = 1.0
    seed: int = 0
    clip_epsilon: float | None = None

    def __post_init__(self) -> None:
        where = f"BinaryCrossEntropyOption {self.id!r}"
        if len(self.scores_shape) not in (2, 4):
            raise ValueError(f"{where}: scores_shape must be (N, C) or (N, C, H, W), got {self.scores_shape}")
        if self.reduction not in REDUCTIONS:
            raise ValueError(f"{where}: reduction must be one of {REDUCTIONS}, got {self.reduction!r}")
        if self.targets not in BINARY_TARGETS:
            raise ValueError(f"{where}: targets must be one of {BINARY_TARGETS}, got {self.targets!r}")
        if self.pos_weight and not self.logits:
            raise ValueError(f"{where}: pos_weight needs logits=True (binary_cross_entropy has no pos_weight)")
        if self.clip_epsilon is not None and self.logits:
            raise ValueError(f"{where}: clip_epsilon applies to probabilities only (logits=False)")
        if self.edges and not self.logits and int(np.prod(self.scores_shape)) < len(EDGE_PAIRS):
            raise ValueError(f"{where}: edges need at least {len(EDGE_PAIRS)} positions, got {self.scores_shape}")

    @property
    def function(self) -> str:
        """The reference's (and ``torch.nn.functional``'s) name of the loss."""
        return "binary_cross_entropy_with_logits" if self.logits else "binary_cross_entropy"

    def kwargs(self, weight, pos_weight) -> dict:
        """Keyword arguments shared by the reference's function and PyTorch's (``clip_epsilon`` not included)."""
        return {"weight": weight, "reduction": self.reduction, **({"pos_weight": pos_weight} if self.logits else {})}

    def describe(self) -> str:
        """The options as the function's keywords, for a case's config."""
        text = f"targets={self.targets}, edges={self.edges}, weight={self.weight}"
        text += f", pos_weight={self.pos_weight}" if self.logits else ""
        text += f", reduction={self.reduction!r}"
        return text + (f", clip_epsilon={self.clip_epsilon:g}" if self.clip_epsilon is not None else "")


def bce_probabilities(opt: BinaryCrossEntropyOption, shape: tuple[int, ...], dtype: str,
                      rng: np.random.Generator) -> np.ndarray:
    """The input of a probabilities configuration (``opt.logits`` False), shaped ``shape``: ``uniform(0, 1)``, or
    under ``edges`` every value 0.0 or 1.0, the first four as :data:`EDGE_PAIRS`."""
    if not opt.edges:
        return rng.uniform(0.0, 1.0, shape).astype(dtype)
    p = rng.integers(0, 2, shape).astype(dtype)
    p.flat[:len(EDGE_PAIRS)] = [pair[0] for pair in EDGE_PAIRS]
    return p


def bce_targets(opt: BinaryCrossEntropyOption, shape: tuple[int, ...], dtype: str, rng: np.random.Generator):
    """``(target, weight, pos_weight, dloss)`` for an input of ``shape`` ``(N, C, ...)``, drawn from ``rng``:
    targets of ``shape`` (binary, or soft with the edge targets of :data:`EDGE_PAIRS` first under ``edges``),
    per-class weights ``(C, 1, ...)`` or None, and ``dloss`` a float for mean/sum, an array of ``shape`` for
    none."""
    if opt.targets == "binary":
        target = rng.integers(0, 2, shape).astype(dtype)
    else:
        target = rng.uniform(0.0, 1.0, shape).astype(dtype)
    if opt.edges:
        target.flat[:len(EDGE_PAIRS)] = [pair[1] for pair in EDGE_PAIRS]
    per_class = (shape[1],) + (1,) * (len(shape) - 2)
    weight = rng.uniform(0.2, 2.0, per_class).astype(dtype) if opt.weight else None
    pos_weight = rng.uniform(0.5, 3.0, per_class).astype(dtype) if opt.pos_weight else None
    dloss = rng.standard_normal(shape).astype(dtype) if opt.reduction == "none" else float(rng.uniform(0.5, 2))
    return target, weight, pos_weight, dloss


_BCE = BinaryCrossEntropyOption
BINARY_CROSS_ENTROPY_OPTIONS: list[BinaryCrossEntropyOption] = [
    _BCE("bce-logits-N6C5-mean", (6, 5), logits=True),
    _BCE("bce-logits-N6C5-sum-weight-soft", (6, 5), logits=True, weight=True, reduction="sum", targets="soft",
         seed=1),
    _BCE("bce-logits-N6C5-none-weight-posweight", (6, 5), logits=True, weight=True, pos_weight=True,
         reduction="none", seed=2),
    _BCE("bce-logits-N6C5-mean-posweight-soft-edges", (6, 5), logits=True, pos_weight=True, targets="soft",
         edges=True, seed=3),
    _BCE("bce-logits-N3C4H2W3-mean-weight-posweight", (3, 4, 2, 3), logits=True, weight=True, pos_weight=True,
         seed=4),
    _BCE("bce-logits-N3C4H2W3-none-soft-edges", (3, 4, 2, 3), logits=True, reduction="none", targets="soft",
         edges=True, seed=5),
    _BCE("bce-logits-N6C5-mean-scale40", (6, 5), logits=True, scale=40.0, seed=6),
    _BCE("bce-logits-N6C5-sum-weight-soft-edges-scale800", (6, 5), logits=True, weight=True, reduction="sum",
         targets="soft", edges=True, scale=800.0, seed=7),
    _BCE("bce-probs-N6C5-mean", (6, 5), logits=False, seed=8),
    _BCE("bce-probs-N6C5-sum-weight-soft", (6, 5), logits=False, weight=True, reduction="sum", targets="soft",
         seed=9),
    _BCE("bce-probs-N6C5-none-edges", (6, 5), logits=False, reduction="none", edges=True, seed=10),
    _BCE("bce-probs-N6C5-mean-weight-edges", (6, 5), logits=False, weight=True, edges=True, seed=11),
    _BCE("bce-probs-N3C4H2W3-mean-soft-edges", (3, 4, 2, 3), logits=False, targets="soft", edges=True, seed=12),
    _BCE("bce-probs-N3C4H2W3-none-weight-soft", (3, 4, 2, 3), logits=False, weight=True, reduction="none",
         targets="soft", seed=13),
    _BCE("bce-probs-N3C4H2W3-sum-edges", (3, 4, 2, 3), logits=False, reduction="sum", edges=True, seed=14),
]


@dataclass(frozen=True)
class PoolOption:
    """One pooling configuration: ``layer`` is a reference class name (``reference.adaptive`` or
    ``MaxPool2d``/``AvgPool2d``), ``kwargs`` its arguments;
    ``ties`` draws the input from {0, 1} so most windows hold tied maxima."""

    id: str
    layer: str
    input_shape: tuple[int, ...]
    kwargs: dict = field(default_factory=dict)
    ties: bool = False
    seed: int = 0

    def input(self, dtype: str = "float64") -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        if self.ties:
            return rng.integers(0, 2, self.input_shape).astype(dtype)
        return rng.standard_normal(self.input_shape).astype(dtype)


def _adaptive(kind: str) -> list[PoolOption]:
    layer = f"Adaptive{kind}Pool2d"
    tag = f"adaptive{kind.lower()}"
    return [
        PoolOption(f"{tag}-5x7-to-3x4", layer, (2, 3, 5, 7), {"output_size": (3, 4)}),
        PoolOption(f"{tag}-6x6-to-3-divisible", layer, (2, 2, 6, 6), {"output_size": 3}, seed=1),
        PoolOption(f"{tag}-3x5-to-5x7-upsample", layer, (1, 2, 3, 5), {"output_size": (5, 7)}, seed=2),
        PoolOption(f"{tag}-7x5-to-1-global", layer, (2, 3, 7, 5), {"output_size": 1}, seed=3),
        PoolOption(f"{tag}-9x4-to-4xNone-single", layer, (3, 9, 4), {"output_size": (4, None)}, seed=4),
        PoolOption(f"{tag}-10x10-to-4x6", layer, (2, 2, 10, 10), {"output_size": (4, 6)}, seed=5),
    ]


POOL_OPTIONS: list[PoolOption] = [
    *_adaptive("Avg"),
    *_adaptive("Max"),
    PoolOption("adaptivemax-5x7-to-3x4-indices", "AdaptiveMaxPool2d", (2, 3, 5, 7),
               {"output_size": (3, 4), "return_indices": True}, seed=6),
    PoolOption("adaptivemax-5x7-to-3x4-indices-ties", "AdaptiveMaxPool2d", (2, 3, 5, 7),
               {"output_size": (3, 4), "return_indices": True}, ties=True, seed=7),
    PoolOption("adaptivemax-3x5-to-5x7-ties", "AdaptiveMaxPool2d", (1, 2, 3, 5), {"output_size": (5, 7)},
               ties=True, seed=8),
    PoolOption("globalmax-5x7", "GlobalMaxPool2d", (2, 3, 5, 7), seed=9),
    PoolOption("globalmax-4x4-single", "GlobalMaxPool2d", (3, 4, 4), seed=10),
    PoolOption("globalmax-1x1", "GlobalMaxPool2d", (2, 2, 1, 1), seed=11),
    PoolOption("globalmax-6x5-ties", "GlobalMaxPool2d", (2, 3, 6, 5), ties=True, seed=12),
]


# MaxPool2d / AvgPool2d option configurations use the same record: ``kwargs`` as PyTorch spells them
# (``kernel_size, stride, padding`` included), inputs drawn as for the adaptive pools.
Pool2dOption = PoolOption


_MAX, _AVG = "MaxPool2d", "AvgPool2d"
POOL2D_OPTIONS: list[Pool2dOption] = [
    Pool2dOption("maxpool-k3-s1-p1-d2", _MAX, (2, 2, 7, 8), {"kernel_size": 3, "stride": 1, "padding": 1,
                                                              "dilation": 2}),
    Pool2dOption("maxpool-k2x3-s2x1-d3x2", _MAX, (2, 2, 9, 8), {"kernel_size": (2, 3), "stride": (2, 1),
                                                                 "dilation": (3, 2)}, seed=1),
    Pool2dOption("maxpool-k2-s2-ceil", _MAX, (2, 2, 5, 7), {"kernel_size": 2, "ceil_mode": True}, seed=2),
    Pool2dOption("maxpool-k3-s3-p1-ceil-drop", _MAX, (1, 2, 5, 5), {"kernel_size": 3, "stride": 3, "padding": 1,
                                                                    "ceil_mode": True}, seed=3),
    Pool2dOption("maxpool-k3-s2-p1-d2-ceil-indices", _MAX, (2, 2, 8, 9),
                 {"kernel_size": 3, "stride": 2, "padding": 1, "dilation": 2, "ceil_mode": True,
                  "return_indices": True}, seed=4),
    Pool2dOption("maxpool-k3-s1-indices-ties", _MAX, (2, 2, 6, 6), {"kernel_size": 3, "stride": 1,
                                                                   "return_indices": True}, ties=True, seed=5),
    Pool2dOption("maxpool-k2-s2-p1-ceil-indices-single", _MAX, (3, 5, 6),
                 {"kernel_size": 2, "padding": 1, "ceil_mode": True, "return_indices": True}, seed=6),
    Pool2dOption("avgpool-k3-s2-p1-exclude-pad", _AVG, (2, 2, 7, 6), {"kernel_size": 3, "stride": 2, "padding": 1,
                                                                     "count_include_pad": False}, seed=7),
    Pool2dOption("avgpool-k2-s2-ceil", _AVG, (2, 2, 5, 7), {"kernel_size": 2, "ceil_mode": True}, seed=8),
    Pool2dOption("avgpool-k3-s2-p1-ceil", _AVG, (2, 2, 6, 6), {"kernel_size": 3, "stride": 2, "padding": 1,
                                                              "ceil_mode": True}, seed=9),
    Pool2dOption("avgpool-k3-s2-p1-ceil-exclude-pad", _AVG, (2, 2, 6, 6),
                 {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False},
                 seed=10),
    Pool2dOption("avgpool-k3-s3-p1-ceil-drop", _AVG, (1, 2, 5, 5), {"kernel_size": 3, "stride": 3, "padding": 1,
                                                                   "ceil_mode": True}, seed=11),
    Pool2dOption("avgpool-k2x3-s1-p1-divisor5", _AVG, (2, 2, 5, 6), {"kernel_size": (2, 3), "stride": 1,
                                                                    "padding": 1, "divisor_override": 5}, seed=12),
    Pool2dOption("avgpool-k3-s2-p1-ceil-divisor4-single", _AVG, (2, 6, 7),
                 {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True, "divisor_override": 4}, seed=13),
    # options with the windows and divisors of Keras' padding="same" pooling (so Keras runs them too)
    Pool2dOption("maxpool-k3-s2-ceil-keras-same", _MAX, (2, 2, 6, 8), {"kernel_size": 3, "stride": 2,
                                                                      "ceil_mode": True}, seed=14),
    Pool2dOption("avgpool-k3-s2-ceil-keras-same", _AVG, (2, 2, 6, 8), {"kernel_size": 3, "stride": 2,
                                                                      "ceil_mode": True}, seed=15),
    Pool2dOption("avgpool-k3-s1-p1-exclude-pad-keras-same", _AVG, (2, 2, 6, 5),
                 {"kernel_size": 3, "stride": 1, "padding": 1, "count_include_pad": False}, seed=16),
]
