"""The case matrix: one definition, used by pytest and by ``cnnref verify``.

A :class:`Case` is a small model (a chain of :class:`LayerSpec`, optionally ending in
softmax cross-entropy or a binary cross-entropy) and an input shape. The harness builds it once in the
reference and once in each framework, with the same parameters, and compares.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

import reference as ref

from . import cases_options, kinds
from .frameworks.layouts import keras_same_padding

IMPLS = ("loop", "im2col")
# The loss of a case that ends in ``softmax_cross_entropy(scores, labels)`` with PyTorch's defaults: the mean over
# class indices drawn uniformly, no options.
PLAIN_CROSS_ENTROPY = cases_options.CrossEntropyOption("plain", scores_shape=())
DTYPES = ("float64", "float32")
LOSS_OPTIONS = (cases_options.CrossEntropyOption, cases_options.BinaryCrossEntropyOption)


@dataclass(frozen=True)
class LayerSpec:
    """One layer: ``kind`` (a key of :data:`comparisons.kinds.KINDS`) and its arguments."""

    kind: str
    args: tuple[tuple[str, object], ...] = ()

    @property
    def kwargs(self) -> dict:
        return dict(self.args)


def spec(kind: str, **kwargs) -> LayerSpec:
    return LayerSpec(kind, tuple(sorted(kwargs.items())))


@dataclass(frozen=True)
class Case:
    """A model, an input shape and a readable id such as ``conv-k3x3-s2-p1-d1-batch-bias``.

    ``family``: the layer the case is about, as ``cnnref verify --layer`` takes it (``"Conv2d"``); ``variant``: which
    of its variants, if any (``"grouped"``): together the records' ``layer`` (``"Conv2d(grouped)"``).
    ``loss``: the loss ending the model, or None: softmax cross-entropy (:data:`PLAIN_CROSS_ENTROPY`, or a
    :class:`~.cases_options.CrossEntropyOption`), or a binary cross-entropy
    (:class:`~.cases_options.BinaryCrossEntropyOption`; on probabilities the model has no layers: its input, drawn
    as probabilities by ``cases_options.bce_probabilities``, is what the loss reads).
    Tags: ``"single"`` (the input is one ``(C, H, W)`` image), ``"eval"`` (the model runs in
    evaluation mode: batch norm uses its running statistics, dropout is the identity).
    """

    family: str
    id: str
    specs: tuple[LayerSpec, ...]
    input_shape: tuple[int, ...]
    loss: cases_options.CrossEntropyOption | cases_options.BinaryCrossEntropyOption | None = None
    scale: float = 1.0
    seed: int = 0
    tags: frozenset = field(default_factory=frozenset)
    variant: str | None = None

    def __post_init__(self) -> None:
        if "(" in self.family:
            raise ValueError(f"Case: family {self.family!r} holds a variant; pass variant= instead")
        if self.loss is not None and not isinstance(self.loss, LOSS_OPTIONS):
            raise TypeError(f"Case: loss must be a CrossEntropyOption, a BinaryCrossEntropyOption or None, got "
                            f"{self.loss!r}")
        if self.binary_loss is not None and not self.binary_loss.logits and self.specs:
            raise ValueError(f"Case {self.id!r}: a binary cross-entropy on probabilities reads the input itself (drawn "
                             f"as probabilities), so the model has no layers; got {len(self.specs)}")

    @property
    def layer(self) -> str:
        """The family with its variant: ``"Conv2d(grouped)"``, or ``"Conv2d"``."""
        return f"{self.family}({self.variant})" if self.variant else self.family

    @property
    def single(self) -> bool:
        """True when the input is one ``(C, H, W)`` image rather than a batch."""
        return "single" in self.tags

    @property
    def eval_mode(self) -> bool:
        """True when the model runs in evaluation (inference) mode rather than training mode."""
        return "eval" in self.tags

    @property
    def loss_option(self) -> cases_options.CrossEntropyOption | None:
        """The softmax cross-entropy options; None for the plain mean over class indices, a binary cross-entropy and
        no loss."""
        if self.loss is None or self.loss is PLAIN_CROSS_ENTROPY or self.binary_loss is not None:
            return None
        return self.loss

    @property
    def binary_loss(self) -> cases_options.BinaryCrossEntropyOption | None:
        """The binary cross-entropy ending the model, or None."""
        return self.loss if isinstance(self.loss, cases_options.BinaryCrossEntropyOption) else None

    @property
    def spatial(self) -> bool:
        """True when some layer has a ``loop`` and an ``im2col`` implementation."""
        return any(kinds.kind(s.kind).spatial for s in self.specs)

    @property
    def impls(self) -> tuple[str | None, ...]:
        """The implementations the case runs in: :data:`IMPLS` when it is spatial, else ``(None,)`` (one)."""
        return IMPLS if self.spatial else (None,)

    @property
    def config(self) -> str:
        parts = [f"{s.kind}({', '.join(f'{k}={v}' for k, v in s.args)})" for s in self.specs]
        if self.binary_loss is not None:
            parts.append(f"{self.binary_loss.function}({self.binary_loss.describe()})")
        elif self.loss:
            option = self.loss_option
            parts.append("softmax_cross_entropy" + (f"({option.describe()})" if option else ""))
        text = " -> ".join(parts)
        scale = f", scale={self.scale:g}" if self.scale != 1.0 else ""
        mode = ", eval mode" if self.eval_mode else ""
        return f"{text}; input {self.input_shape}{scale}{mode}"


def build_layer(s: LayerSpec, impl: str, dtype, rng: np.random.Generator) -> ref.Layer:
    """The reference layer for a spec (``impl`` ignored by non-spatial layers)."""
    return kinds.kind(s.kind).build(s.kwargs, impl, dtype, rng)


def build_reference(case: Case, impl: str | None, dtype) -> ref.Sequential:
    """The case's model in the reference, parameters drawn from the case's seed, in the case's mode (``impl`` None
    for a case that is not spatial)."""
    impl = impl or "im2col"
    rng = np.random.default_rng(case.seed)
    return ref.Sequential(build_layer(s, impl, dtype, rng) for s in case.specs).train(not case.eval_mode)


# -- the matrix ----------------------------------------------------------------
def _conv_case(k, s, p, d, batch: bool, bias: bool, in_hw=(11, 10), channels=(3, 4), seed=0) -> Case:
    kh, kw = (k, k) if isinstance(k, int) else k
    c, f = channels
    shape = (2, c, *in_hw) if batch else (c, *in_hw)
    tags = frozenset() if batch else frozenset({"single"})
    cid = f"conv-k{kh}x{kw}-s{s}-p{p}-d{d}-{'batch' if batch else 'single'}-{'bias' if bias else 'nobias'}"
    if in_hw != (11, 10):
        cid += f"-in{in_hw[0]}x{in_hw[1]}"
    layer = spec("conv", in_channels=c, out_channels=f, kernel_size=(kh, kw), stride=s, padding=p, dilation=d,
                 bias=bias)
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


def group_conv_cases() -> list[Case]:
    """Conv2d with ``groups``: grouped (1 < groups < C) and depthwise (groups == C, multiplier 1 or 2), with
    strides, padding, dilation, rectangular kernels, bias on and off, single images and batches."""
    configs = [  # (C, F, groups, kernel, stride, padding, dilation, bias, input (H, W), batch)
        (4, 6, 2, 3, 1, 1, 1, True, (7, 6), True), (4, 4, 2, (2, 3), 2, (1, 0), 1, False, (8, 9), False),
        (6, 3, 3, 1, 1, 0, 1, True, (5, 5), True), (6, 12, 3, 3, 1, 2, 2, True, (6, 7), False),
        (3, 3, 3, 3, 1, 1, 1, True, (6, 6), True), (3, 6, 3, 3, 2, 1, 1, False, (9, 8), False),
        (4, 4, 4, 3, 1, 2, 2, False, (7, 7), True), (4, 8, 4, (3, 2), 1, 0, 1, True, (6, 5), True),
    ]
    cases = []
    for n, (c, f, g, k, s, p, d, bias, hw, batch) in enumerate(configs):
        kind = "depthwise" if g == c else "grouped"
        kt = "x".join(map(str, k)) if isinstance(k, tuple) else f"{k}x{k}"
        pt = "x".join(map(str, p)) if isinstance(p, tuple) else str(p)
        cid = (f"conv-{kind}-c{c}-f{f}-g{g}-k{kt}-s{s}-p{pt}-d{d}-{'batch' if batch else 'single'}-"
               f"{'bias' if bias else 'nobias'}")
        layer = spec("conv", in_channels=c, out_channels=f, kernel_size=k, stride=s, padding=p, dilation=d,
                     bias=bias, groups=g)
        shape = (2, c, *hw) if batch else (c, *hw)
        cases.append(Case("Conv2d", cid, (layer,), shape, seed=700 + n, tags=_tags(batch), variant=kind))
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
        Case("Linear", "linear-flat-batch", (spec("linear", in_features=7, out_features=5, bias=True),), (4, 7),
             seed=1),
        Case("Linear", "linear-flat-nobias", (spec("linear", in_features=7, out_features=3, bias=False),), (4, 7),
             seed=2),
        Case("Flatten+Linear", "flatten-linear-batch",
             (spec("flatten"), spec("linear", in_features=60, out_features=10, bias=True)), (3, 3, 5, 4), seed=3),
        Case("Flatten+Linear", "flatten-linear-single",
             (spec("flatten"), spec("linear", in_features=60, out_features=10, bias=True)), (3, 5, 4), seed=4,
             tags=frozenset({"single"})),
    ]


def loss_cases() -> list[Case]:
    """Softmax cross-entropy on logits of magnitude 1 to 1e4."""
    return [
        Case("CrossEntropy", f"cross-entropy-scale{scale:g}", (), (6, 10), loss=PLAIN_CROSS_ENTROPY, scale=scale,
             seed=n)
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
        Case("TutorialCNN", "tutorial-cnn-single", tutorial_cnn_specs(), (1, 28, 28), loss=PLAIN_CROSS_ENTROPY, seed=7,
             tags=frozenset({"single"})),
        Case("TutorialCNN", "tutorial-cnn-batch", tutorial_cnn_specs(), (4, 1, 28, 28),
             loss=PLAIN_CROSS_ENTROPY, seed=8),
    ]


def _tags(batch: bool, eval_mode: bool = False) -> frozenset:
    return frozenset(({"eval"} if eval_mode else set()) | (set() if batch else {"single"}))


def batchnorm_cases() -> list[Case]:
    """BatchNorm2d in training mode (batch statistics, running-statistics update) and evaluation mode
    (random running statistics), on batches, one image, 1x1 maps, and non-default eps and momentum."""
    configs = [  # (input shape, eps, momentum, eval)
        ((2, 3, 5, 4), 1e-5, 0.1, False), ((3, 5, 4), 1e-5, 0.1, False), ((4, 2, 3, 3), 1e-3, 0.3, False),
        ((6, 3, 1, 1), 1e-5, 0.1, False), ((2, 4, 7, 6), 0.1, 1.0, False), ((2, 3, 5, 4), 1e-5, 0.1, True),
        ((3, 5, 4), 1e-3, 0.1, True), ((5, 2, 1, 1), 1e-5, 0.1, True),
    ]
    cases = []
    for n, (shape, eps, momentum, eval_mode) in enumerate(configs):
        batch = len(shape) == 4
        channels = shape[1] if batch else shape[0]
        cid = (f"batchnorm-{'eval' if eval_mode else 'train'}-eps{eps:g}-m{momentum:g}-"
               f"{'batch' if batch else 'single'}-{'x'.join(map(str, shape))}")
        layer = spec("batchnorm", num_features=channels, eps=eps, momentum=momentum, unbiased_running_var=True)
        cases.append(Case("BatchNorm2d", cid, (layer,), shape, seed=200 + n, tags=_tags(batch, eval_mode)))
    return cases


def dropout_cases() -> list[Case]:
    """Dropout in training mode (the reference's mask fed to the framework) and evaluation mode (identity)."""
    configs = [((2, 3, 5, 4), 0.5, False), ((3, 5, 4), 0.2, False), ((4, 7), 0.5, False), ((2, 3, 4, 4), 0.0, False),
               ((4, 9), 0.9, False), ((2, 3, 5, 4), 0.5, True), ((4, 7), 0.3, True)]
    cases = []
    for n, (shape, p, eval_mode) in enumerate(configs):
        batch = len(shape) != 3
        cid = f"dropout-{'eval' if eval_mode else 'train'}-p{p:g}-{'batch' if batch else 'single'}-" + \
            "x".join(map(str, shape))
        cases.append(Case("Dropout", cid, (spec("dropout", p=p),), shape, seed=300 + n, tags=_tags(batch, eval_mode)))
    # after a Flatten, Keras' features (and so the mask) are in H, W, C order
    head = (spec("flatten"), spec("dropout", p=0.5), spec("linear", in_features=60, out_features=5, bias=True))
    cases.append(Case("Dropout", "flatten-dropout-linear-train", head, (3, 3, 5, 4), seed=310))
    return cases


def activation_cases() -> list[Case]:
    """LeakyReLU (PyTorch's default slope and others), Sigmoid and Tanh, including saturated inputs."""
    configs = [("LeakyReLU", spec("leakyrelu", negative_slope=0.01), 1.0), ("LeakyReLU", spec("leakyrelu",
               negative_slope=0.2), 1.0), ("LeakyReLU", spec("leakyrelu", negative_slope=0.3), 3.0),
               ("Sigmoid", spec("sigmoid"), 1.0), ("Sigmoid", spec("sigmoid"), 30.0),
               ("Tanh", spec("tanh"), 1.0), ("Tanh", spec("tanh"), 10.0)]
    cases = []
    for n, (layer, s, scale) in enumerate(configs):
        batch = n % 2 == 0
        shape = (2, 3, 5, 4) if batch else (3, 5, 4)
        slope = f"-slope{s.kwargs['negative_slope']:g}" if s.args else ""
        cid = f"{s.kind}{slope}-scale{scale:g}-{'batch' if batch else 'single'}"
        cases.append(Case(layer, cid, (s,), shape, scale=scale, seed=400 + n, tags=_tags(batch)))
    return cases


def global_pool_cases() -> list[Case]:
    """GlobalAvgPool2d: (N, C, H, W) -> (N, C) on batches, one image, square, rectangular and 1x1 maps."""
    return [Case("GlobalAvgPool2d", f"globalavgpool-{'batch' if len(shape) == 4 else 'single'}-"
                 + "x".join(map(str, shape)), (spec("globalavgpool"),), shape, seed=500 + n,
                 tags=_tags(len(shape) == 4))
            for n, shape in enumerate([(2, 3, 5, 4), (3, 7, 6), (2, 4, 1, 1), (1, 2, 9, 9)])]


def vgg_specs() -> tuple[LayerSpec, ...]:
    """A small VGG-style CNN on (3, 8, 8) images: two conv blocks (conv, batch norm, ReLU, max pool), then a
    dense head with dropout."""
    def block(c_in, c_out):
        return (spec("conv", in_channels=c_in, out_channels=c_out, kernel_size=3, stride=1, padding=1, dilation=1,
                     bias=False),
                spec("batchnorm", num_features=c_out, eps=1e-5, momentum=0.1, unbiased_running_var=True),
                spec("relu"), spec("maxpool", kernel_size=2, stride=None, padding=0))
    return (*block(3, 4), *block(4, 8), spec("flatten"), spec("linear", in_features=8 * 2 * 2, out_features=16,
            bias=True), spec("relu"), spec("dropout", p=0.25), spec("linear", in_features=16, out_features=10,
            bias=True))


def vgg_cases() -> list[Case]:
    """The VGG-style CNN with its loss, in training mode and in evaluation mode."""
    return [Case("VGGStyleCNN", f"vgg-cnn-{mode}", vgg_specs(), (4, 3, 8, 8), loss=PLAIN_CROSS_ENTROPY, seed=600 + n,
                 tags=_tags(True, mode == "eval")) for n, mode in enumerate(("train", "eval"))]


def conv_transpose_cases() -> list[Case]:
    """ConvTranspose2d: stride, padding, output_padding (below the stride, and below the dilation only),
    dilation, groups (grouped and one group per input channel), rectangular kernels, bias on and off, single
    images and batches."""
    configs = [  # (C, F, kernel, stride, padding, output_padding, dilation, groups, bias, input (H, W), batch)
        (3, 4, 3, 1, 0, 0, 1, 1, True, (5, 6), True), (3, 4, 3, 2, 1, 1, 1, 1, False, (4, 5), False),
        (4, 6, (2, 3), (2, 3), (1, 0), (1, 2), 1, 2, True, (4, 5), True), (2, 4, 3, 1, 1, 0, 2, 2, True, (5, 5), False),
        (3, 6, 3, 2, 2, 1, 2, 3, True, (4, 4), True), (2, 2, 1, 3, 0, 2, 1, 1, True, (3, 3), True),
        (2, 4, 3, 1, 0, 1, 3, 1, False, (4, 4), True), (3, 3, 4, 2, 1, 0, 1, 1, True, (3, 4), False),
        (2, 3, (3, 2), (1, 2), (0, 1), (0, 1), (2, 1), 1, True, (5, 4), True),
    ]
    cases = []
    for n, (c, f, k, s, p, op, d, g, bias, hw, batch) in enumerate(configs):
        def text(v):
            return "x".join(map(str, v)) if isinstance(v, tuple) else str(v)
        cid = (f"convtranspose-c{c}-f{f}-k{text(k)}-s{text(s)}-p{text(p)}-op{text(op)}-d{text(d)}-g{g}-"
               f"{'batch' if batch else 'single'}-{'bias' if bias else 'nobias'}")
        layer = spec("convtranspose", in_channels=c, out_channels=f, kernel_size=k, stride=s, padding=p,
                     output_padding=op, dilation=d, groups=g, bias=bias)
        shape = (2, c, *hw) if batch else (c, *hw)
        cases.append(Case("ConvTranspose2d", cid, (layer,), shape, seed=1000 + n, tags=_tags(batch)))
    return cases


def sample_norm_cases() -> list[Case]:
    """LayerNorm over (C, H, W), (H, W), W and flat features, without affine parameters, without bias, other eps;
    GroupNorm with 1 group (layer norm), some, one per channel (instance norm), without affine, other eps, a
    single image and 1x1 maps."""
    ln = [  # (input shape, normalized_shape, options)
        ((2, 3, 4, 5), (3, 4, 5), {}), ((2, 3, 4, 5), (4, 5), {"eps": 1e-3}), ((2, 3, 4, 5), 5, {}),
        ((6, 7), 7, {}), ((2, 3, 4, 5), (4, 5), {"elementwise_affine": False}), ((3, 4, 6), 6, {"bias": False}),
    ]
    cases = []
    for n, (shape, normalized, options) in enumerate(ln):
        kw = {"normalized_shape": normalized, "eps": 1e-5, "elementwise_affine": True, "bias": True, **options}
        norm = "x".join(map(str, normalized)) if isinstance(normalized, tuple) else str(normalized)
        extra = "".join(f"-{k}{v}" for k, v in options.items())
        cid = f"layernorm-{norm}-in{'x'.join(map(str, shape))}{extra}"
        cases.append(Case("LayerNorm", cid, (spec("layernorm", **kw),), shape, seed=1100 + n))
    gn = [  # (input shape, groups, options)
        ((2, 6, 4, 5), 1, {}), ((2, 6, 4, 5), 2, {}), ((2, 6, 4, 5), 3, {"eps": 1e-3}), ((2, 6, 3, 3), 6, {}),
        ((2, 4, 3, 5), 2, {"affine": False}), ((6, 3, 4), 3, {}), ((4, 6, 1, 1), 2, {}),
    ]
    for n, (shape, groups, options) in enumerate(gn):
        batch = len(shape) == 4
        channels = shape[1] if batch else shape[0]
        kw = {"num_groups": groups, "num_channels": channels, "eps": 1e-5, "affine": True, **options}
        extra = "".join(f"-{k}{v}" for k, v in options.items())
        cid = f"groupnorm-g{groups}-{'batch' if batch else 'single'}-{'x'.join(map(str, shape))}{extra}"
        cases.append(Case("GroupNorm", cid, (spec("groupnorm", **kw),), shape, seed=1200 + n, tags=_tags(batch)))
    return cases


def upsample_cases() -> list[Case]:
    """Upsample: each mode (bilinear with align_corners False and True), scale factors 2, 3, 0.5, 1.7 and 0.6 (the
    fractional ones with and without recompute_scale_factor), a pair (2.1, 1.1) that gives twice and once the input
    size (PyTorch's nearest special cases), explicit sizes up and down, single images and batches."""
    grid = [  # (options, input shape)
        ({"scale_factor": 2.0}, (2, 3, 4, 5)), ({"scale_factor": 3.0}, (3, 4, 5)),
        ({"scale_factor": 0.5}, (2, 2, 7, 6)),
        ({"scale_factor": 1.7}, (2, 2, 5, 6)), ({"scale_factor": 1.7, "recompute_scale_factor": True}, (2, 5, 6)),
        ({"scale_factor": 0.6}, (2, 2, 5, 7)), ({"scale_factor": 0.6, "recompute_scale_factor": True}, (2, 2, 5, 7)),
        ({"scale_factor": (2.1, 1.1)}, (2, 2, 5, 6)), ({"size": (7, 9)}, (2, 2, 4, 5)), ({"size": (3, 2)}, (2, 7, 5)),
    ]
    cases = []
    for mode, align_corners in (("nearest", None), ("nearest-exact", None), ("bilinear", False), ("bilinear", True)):
        for options, shape in grid:
            kw = {"size": None, "scale_factor": None, "mode": mode, "align_corners": align_corners,
                  "recompute_scale_factor": None, **options}
            batch = len(shape) == 4
            text = "-".join(f"{k}{'x'.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in options.items())
            corners = "" if align_corners is None else f"-ac{align_corners}"
            cid = f"upsample-{mode}{corners}-{text}-{'batch' if batch else 'single'}-{'x'.join(map(str, shape))}"
            cases.append(Case("Upsample", cid, (spec("upsample", **kw),), shape, seed=1300 + len(cases),
                              tags=_tags(batch)))
    return cases


def more_activation_cases() -> list[Case]:
    """GELU (erf and tanh), Hardsigmoid (inside and beyond its kinks at +-3), Softmax along each axis of a batch,
    of a flat batch and of a single image (dim counts the batch axis)."""
    cases = []
    for n, (approximate, scale, batch) in enumerate([("none", 1.0, True), ("none", 5.0, False), ("tanh", 1.0, False),
                                                     ("tanh", 5.0, True)]):
        shape = (2, 3, 5, 4) if batch else (3, 5, 4)
        cid = f"gelu-{approximate}-scale{scale:g}-{'batch' if batch else 'single'}"
        cases.append(Case("GELU", cid, (spec("gelu", approximate=approximate),), shape, scale=scale, seed=1300 + n,
                          tags=_tags(batch)))
    for n, (scale, batch) in enumerate([(1.0, True), (4.0, False), (4.0, True)]):
        shape = (2, 3, 5, 4) if batch else (3, 5, 4)
        cid = f"hardsigmoid-scale{scale:g}-{'batch' if batch else 'single'}"
        cases.append(Case("Hardsigmoid", cid, (spec("hardsigmoid"),), shape, scale=scale, seed=1320 + n,
                          tags=_tags(batch)))
    for n, (shape, dim, scale) in enumerate([((2, 5, 3, 4), 1, 1.0), ((2, 5, 3, 4), -1, 3.0), ((2, 3, 4, 5), 2, 1.0),
                                             ((3, 4, 2, 2), 0, 1.0), ((2, 3, 4, 5), -3, 1.0), ((6, 10), 1, 10.0),
                                             ((6, 10), 0, 1.0), ((5, 3, 4), 1, 2.0), ((5, 3, 4), -1, 1.0),
                                             ((5, 3, 4), 0, 1.0)]):
        batch = len(shape) != 3
        cid = f"softmax-dim{dim}-{'x'.join(map(str, shape))}-scale{scale:g}-{'batch' if batch else 'single'}"
        cases.append(Case("Softmax", cid, (spec("softmax", dim=dim),), shape, scale=scale, seed=1340 + n,
                          tags=_tags(batch)))
    return cases


# -- every option the frameworks expose ------------------------------------------------
def _conv_option_case(variant: str, cid: str, shape, seed: int, **kwargs) -> Case:
    """One Conv2d case of ``variant`` with 3 -> 4 channels and the given options (stride and dilation default
    to 1)."""
    kw = {"in_channels": shape[-3], "out_channels": 4, "stride": 1, "dilation": 1, "bias": True, **kwargs}
    return Case("Conv2d", cid, (spec("conv", **kw),), shape, seed=seed, tags=_tags(len(shape) == 4), variant=variant)


def conv_padding_cases() -> list[Case]:
    """Conv2d ``padding``: "valid", "same" (PyTorch's: stride 1, any dilation, the odd cell at the bottom/right),
    explicit ``((top, bottom), (left, right))``, and Keras' "same" at strides 2 and 3 written explicitly
    (``layouts.keras_same_padding``), which the Keras adapter runs as ``Conv2D(padding="same")``."""
    c = _conv_option_case
    b, s1 = (2, 3, 9, 8), (3, 8, 9)
    return [
        c("padding", "conv-valid-k3-batch", b, 800, kernel_size=3, padding="valid"),
        c("padding", "conv-same-k3-single", s1, 801, kernel_size=3, padding="same", bias=False),
        c("padding", "conv-same-k4-batch", b, 802, kernel_size=4, padding="same"),
        c("padding", "conv-same-k2x4-d1x2-single", s1, 803, kernel_size=(2, 4), dilation=(1, 2),
          padding="same"),
        c("padding", "conv-same-k3-d2-batch", b, 804, kernel_size=3, dilation=2, padding="same"),
        c("padding", "conv-pad-1x2-0x3-k3-s2x1-batch", b, 805, kernel_size=3, stride=(2, 1),
          padding=((1, 2), (0, 3))),
        c("padding", "conv-pad-0x1-2x0-k2x3-d2-single", s1, 806, kernel_size=(2, 3), dilation=2,
          padding=((0, 1), (2, 0)), bias=False),
        c("padding", "conv-keras-same-k3-s2-in10x10-batch", (2, 3, 10, 10), 807, kernel_size=3, stride=2,
          padding=keras_same_padding((10, 10), 3, 2)),
        c("padding", "conv-keras-same-k4x5-s3x2-in11x9-single", (3, 11, 9), 808, kernel_size=(4, 5),
          stride=(3, 2), padding=keras_same_padding((11, 9), (4, 5), (3, 2))),
    ]


def conv_padding_mode_cases() -> list[Case]:
    """Conv2d ``padding_mode`` "reflect", "replicate", "circular" (and "zeros" spelled out): symmetric,
    rectangular, asymmetric and "same" padding, strides and dilation, and the largest padding each mode
    allows (reflect: input - 1, circular: input, replicate: more than the input)."""
    configs = [  # (id, input shape, options)
        ("p1-k3-batch", (2, 3, 7, 6), {"kernel_size": 3, "padding": 1}),
        ("p2x1-k3x2-s2x1-d1x2-single", (3, 8, 7), {"kernel_size": (3, 2), "stride": (2, 1), "dilation": (1, 2),
                                                   "padding": (2, 1), "bias": False}),
        ("pad-1x2-2x0-k3-batch", (2, 3, 6, 7), {"kernel_size": 3, "padding": ((1, 2), (2, 0))}),
        ("same-k4-d2-single", (3, 7, 8), {"kernel_size": 4, "dilation": 2, "padding": "same"}),
    ]
    limits = {"reflect": (2, 3), "circular": (3, 4), "replicate": (4, 5), "zeros": (4, 5)}  # on a 3x4 input
    cases = []
    for m, (mode, limit) in enumerate(limits.items()):
        at_limit = (f"p{limit[0]}x{limit[1]}-in3x4-k3-batch", (2, 3, 3, 4), {"kernel_size": 3, "padding": limit})
        for n, (cid, shape, kw) in enumerate([*configs, at_limit]):
            cases.append(_conv_option_case("padding_mode", f"conv-{mode}-{cid}", shape, 820 + 10 * m + n,
                                           padding_mode=mode, **kw))
    return cases


def _pool_spec(kind: str, kwargs: dict) -> LayerSpec:
    """A pooling spec with PyTorch's defaults made explicit (stride None = the kernel, padding 0)."""
    return spec(kind, **{"stride": None, "padding": 0, **kwargs})


POOL_KINDS = {"MaxPool2d": "maxpool", "AvgPool2d": "avgpool", "AdaptiveAvgPool2d": "adaptiveavgpool",
              "AdaptiveMaxPool2d": "adaptivemaxpool", "GlobalMaxPool2d": "globalmaxpool"}


def pool_option_cases() -> list[Case]:
    """MaxPool2d (dilation, ceil_mode, return_indices), AvgPool2d (ceil_mode, count_include_pad,
    divisor_override), AdaptiveAvgPool2d, AdaptiveMaxPool2d (return_indices) and GlobalMaxPool2d: the
    configurations of :mod:`comparisons.cases_options` on random normal inputs (no ties: the tie rules
    have their own tests, on inputs the matrix does not draw)."""
    cases = []
    options = [o for o in cases_options.POOL2D_OPTIONS + cases_options.POOL_OPTIONS if not o.ties]
    for n, opt in enumerate(options):
        kind = POOL_KINDS[opt.layer]
        s = _pool_spec(kind, opt.kwargs) if kind in ("maxpool", "avgpool") else spec(kind, **opt.kwargs)
        variant = "options" if kind in ("maxpool", "avgpool") else None
        cases.append(Case(opt.layer, opt.id, (s,), opt.input_shape, seed=900 + n,
                          tags=_tags(len(opt.input_shape) == 4), variant=variant))
    return cases


def loss_option_cases() -> list[Case]:
    """Cross-entropy with class weights, ignore_index, reductions, label smoothing, probability targets and
    ``(N, C, d1, ...)`` scores: the configurations of :mod:`comparisons.cases_options` (the scores are the
    input of an empty model, the targets drawn by ``cases_options.ce_targets``)."""
    return [Case("CrossEntropy", opt.id, (), opt.scores_shape, loss=opt, scale=opt.scale, seed=950 + n,
                 variant="options")
            for n, opt in enumerate(cases_options.CROSS_ENTROPY_OPTIONS)]


def binary_loss_cases() -> list[Case]:
    """``binary_cross_entropy`` (variant ``probabilities``: an empty model, its input the probabilities) and
    ``binary_cross_entropy_with_logits`` (variant ``logits``: an empty model on ``scale * standard_normal``
    logits): the configurations of :mod:`comparisons.cases_options`, targets drawn by
    ``cases_options.bce_targets``."""
    return [Case("BinaryCrossEntropy", opt.id, (), opt.scores_shape, loss=opt, scale=opt.scale, seed=1400 + n,
                 variant="logits" if opt.logits else "probabilities")
            for n, opt in enumerate(cases_options.BINARY_CROSS_ENTROPY_OPTIONS)]


def option_cases() -> list[Case]:
    """Every option case (cross-entropy, pooling, adaptive and global pooling options)."""
    return conv_padding_cases() + conv_padding_mode_cases() + pool_option_cases() + loss_option_cases()


def all_cases() -> list[Case]:
    return (conv_cases() + group_conv_cases() + pool_cases() + dense_cases() + loss_cases() + tutorial_cases()
            + batchnorm_cases()
            + dropout_cases() + activation_cases() + global_pool_cases() + vgg_cases() + option_cases()
            + conv_transpose_cases() + sample_norm_cases() + more_activation_cases() + upsample_cases()
            + binary_loss_cases())


def expand(cases: list[Case]) -> list[tuple[Case, str, str]]:
    """Every ``(case, impl, dtype)`` triple; ``impl`` is None for cases that are not spatial."""
    return [(c, impl, dt) for c in cases for impl in c.impls for dt in DTYPES]


def triple_id(triple: tuple[Case, str, str]) -> str:
    case, impl, dtype = triple
    return f"{case.id}-{impl}-{dtype}" if impl else f"{case.id}-{dtype}"
