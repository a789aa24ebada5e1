"""Hypothesis strategies shared by the property tests: valid layer configurations as Cases."""

from __future__ import annotations

from hypothesis import assume
from hypothesis import strategies as st

from comparisons.cases import Case, spec
from comparisons.cases_options import CrossEntropyOption
from reference.conv import conv_pads
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
    h, w = _conv_input_hw(draw, kernel, dilation, pads, mode)
    c, f = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    batch = draw(st.booleans())
    bias = draw(st.booleans())
    shape = (draw(st.integers(1, 3)), c, h, w) if batch else (c, h, w)
    layer = spec("conv", in_channels=c, out_channels=f, kernel_size=kernel, stride=stride,
                 padding=explicit or padding, dilation=dilation, bias=bias, padding_mode=mode)
    return Case("Conv2d", f"hyp-conv-{kernel}-{stride}-{explicit or padding}-{mode}-{dilation}-{shape}", (layer,),
                shape, seed=draw(st.integers(0, 2**16)), tags=frozenset() if batch else frozenset({"single"}))


def _conv_input_hw(draw, kernel, dilation, pads, mode: str) -> tuple[int, int]:
    """An input ``(H, W)`` the (dilated) kernel fits in once padded, within PyTorch's limits of ``mode``."""
    ek = effective_kernel(kernel, dilation)
    h = draw(st.integers(max(1, ek[0] - sum(pads[0])), ek[0] + 8))
    w = draw(st.integers(max(1, ek[1] - sum(pads[1])), ek[1] + 8))
    # PyTorch's limits: reflect pads less than the input, circular at most the input, per side
    limit = {"reflect": lambda p, n: p < n, "circular": lambda p, n: p <= n}.get(mode, lambda p, n: True)
    assume(all(limit(p, n) for side, n in zip(pads, (h, w), strict=True) for p in side))
    return h, w


def window_in_padding(n: int, k: int, s: int, p: int, d: int, out: int) -> bool:
    """Whether one of ``out`` windows along an axis of ``n`` cells reads padding only (the reference refuses
    such a max pool; PyTorch returns out-of-range indices for it: an audit finding)."""
    return any(all(not 0 <= i * s - p + j * d < n for j in range(k)) for i in range(out))


@st.composite
def pool_cases(draw, kind: str, options: bool = False, indices: bool = False) -> Case:
    """A random valid max/avg pooling case: padding at most half the kernel, stride 1..3 or None; with
    ``options`` also ``ceil_mode``, max pooling's ``dilation`` 1..2, average pooling's
    ``count_include_pad`` and ``divisor_override``; with ``indices`` also max pooling's ``return_indices``."""
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
    if indices and kind == "maxpool":
        extra["return_indices"] = draw(st.booleans())
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


# -- every layer and option, for the fuzz suite (tests/fuzz) ---------------------------------------
def _tags(batch: bool, eval_mode: bool = False) -> frozenset:
    return frozenset(({"eval"} if eval_mode else set()) | (set() if batch else {"single"}))


@st.composite
def image_shapes(draw, channels: int, hw: tuple[int, int]) -> tuple[tuple[int, ...], bool]:
    """``((N, C, H, W) with N in 1..3, True)`` or ``((C, H, W), False)`` (one image)."""
    if draw(st.booleans()):
        return (draw(st.integers(1, 3)), channels, *hw), True
    return (channels, *hw), False


@st.composite
def conv_option_cases(draw) -> Case:
    """A random valid Conv2d case with every option: :func:`conv_cases`' kernels, strides, dilations and padding
    modes, plus ``groups`` (grouped, and depthwise with multiplier 1..2) and every spelling of ``padding``: an int,
    ``(ph, pw)``, explicit ``((top, bottom), (left, right))``, ``"valid"`` and ``"same"`` (stride 1)."""
    groups = draw(st.integers(1, 3))
    if draw(st.booleans()):  # depthwise: one input channel per group
        c, f = groups, groups * draw(st.integers(1, 2))
    else:
        c, f = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = draw(pairs(st.integers(1, 4), st.integers(1, 4)))
    dilation = draw(pairs(st.integers(1, 3), st.integers(1, 3)))
    spelling = draw(st.sampled_from(("int", "pair", "explicit", "valid", "same")))
    stride = (1, 1) if spelling == "same" else draw(pairs(st.integers(1, 3), st.integers(1, 3)))
    padding = {"int": lambda: draw(st.integers(0, 3)),
               "pair": lambda: draw(pairs(st.integers(0, 3), st.integers(0, 3))),
               "explicit": lambda: draw(pairs(pairs(st.integers(0, 3), st.integers(0, 3)),
                                              pairs(st.integers(0, 3), st.integers(0, 3)))),
               "valid": lambda: "valid", "same": lambda: "same"}[spelling]()
    mode = draw(st.sampled_from(("zeros", "reflect", "replicate", "circular")))
    pads = conv_pads(padding, kernel, stride, dilation)
    hw = _conv_input_hw(draw, kernel, dilation, pads, mode)
    shape, batch = draw(image_shapes(c, hw))
    layer = spec("conv", in_channels=c, out_channels=f, kernel_size=kernel, stride=stride, padding=padding,
                 dilation=dilation, bias=draw(st.booleans()), padding_mode=mode, groups=groups)
    return Case("Conv2d", f"fuzz-conv-g{groups}-{kernel}-{stride}-{padding}-{mode}-{dilation}-{shape}", (layer,),
                shape, seed=draw(st.integers(0, 2**16)), tags=_tags(batch))


@st.composite
def adaptive_cases(draw, kind: str) -> Case:
    """AdaptiveAvgPool2d / AdaptiveMaxPool2d (``kind`` "adaptiveavgpool" / "adaptivemaxpool"): any input size
    1..9, an output size (an int, or a pair with None keeping that side) that need not divide it and may exceed it;
    max pooling also ``return_indices``."""
    hw = (draw(st.integers(1, 9)), draw(st.integers(1, 9)))
    side = st.integers(1, 11)
    output = draw(side | pairs(st.none() | side, st.none() | side))
    kwargs = {"output_size": output}
    if kind == "adaptivemaxpool":
        kwargs["return_indices"] = draw(st.booleans())
    c = draw(st.integers(1, 3))
    shape, batch = draw(image_shapes(c, hw))
    layer = {"adaptiveavgpool": "AdaptiveAvgPool2d", "adaptivemaxpool": "AdaptiveMaxPool2d"}[kind]
    return Case(layer, f"fuzz-{kind}-{output}-{shape}", (spec(kind, **kwargs),), shape,
                seed=draw(st.integers(0, 2**16)), tags=_tags(batch))


@st.composite
def global_pool_cases(draw, kind: str) -> Case:
    """GlobalAvgPool2d / GlobalMaxPool2d (``kind`` "globalavgpool" / "globalmaxpool") on any input size."""
    c, hw = draw(st.integers(1, 3)), (draw(st.integers(1, 9)), draw(st.integers(1, 9)))
    shape, batch = draw(image_shapes(c, hw))
    layer = {"globalavgpool": "GlobalAvgPool2d", "globalmaxpool": "GlobalMaxPool2d"}[kind]
    return Case(layer, f"fuzz-{kind}-{shape}", (spec(kind),), shape, seed=draw(st.integers(0, 2**16)),
                tags=_tags(batch))


@st.composite
def batchnorm_cases(draw) -> Case:
    """BatchNorm2d in training or evaluation mode, any ``eps`` in [1e-6, 1] and ``momentum`` in [0, 1] (random
    gamma, beta and running statistics: ``comparisons.cases``); training on 3+ values per channel."""
    c, hw = draw(st.integers(1, 4)), (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    shape, batch = draw(image_shapes(c, hw))
    eval_mode = draw(st.booleans())
    # training needs 2 values per channel; with exactly 2 the normalised output is +-1 whatever x, so dx is
    # rounding noise on both sides (no meaningful relative error): at least 3
    assume(eval_mode or np_prod(shape) // c >= 3)
    eps = draw(st.sampled_from((1e-5, 1e-3, 0.1, 1.0)) | st.floats(1e-6, 1.0))
    momentum = draw(st.sampled_from((0.0, 0.1, 1.0)) | st.floats(0.0, 1.0))
    layer = spec("batchnorm", num_features=c, eps=eps, momentum=momentum, unbiased_running_var=True)
    return Case("BatchNorm2d", f"fuzz-batchnorm-{'eval' if eval_mode else 'train'}-eps{eps:g}-m{momentum:g}-{shape}",
                (layer,), shape, seed=draw(st.integers(0, 2**16)), tags=_tags(batch, eval_mode))


def np_prod(shape) -> int:
    out = 1
    for n in shape:
        out *= n
    return out


@st.composite
def any_shapes(draw) -> tuple[tuple[int, ...], bool]:
    """An input for a layer of any shape: ``(N, D)``, ``(N, C, H, W)`` or one ``(C, H, W)`` image; and whether it
    is a batch."""
    kind = draw(st.sampled_from(("flat", "batch", "single")))
    n = draw(st.integers(1, 3))
    if kind == "flat":
        return (n, draw(st.integers(1, 8))), True
    chw = (draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    return ((n, *chw), True) if kind == "batch" else (chw, False)


@st.composite
def dropout_cases(draw) -> Case:
    """Dropout with ``p`` in [0, 0.95] (the harness feeds the reference's mask to the framework) in training
    mode, or the identity in evaluation mode."""
    shape, batch = draw(any_shapes())
    p = draw(st.sampled_from((0.0, 0.5)) | st.floats(0.0, 0.95))
    eval_mode = draw(st.booleans())
    return Case("Dropout", f"fuzz-dropout-p{p:g}-{'eval' if eval_mode else 'train'}-{shape}", (spec("dropout", p=p),),
                shape, seed=draw(st.integers(0, 2**16)), tags=_tags(batch, eval_mode))


@st.composite
def activation_cases(draw) -> Case:
    """ReLU, LeakyReLU (any slope in [-2, 2]), Sigmoid or Tanh on inputs of scale 1 to 30 (saturated)."""
    kind = draw(st.sampled_from(("relu", "leakyrelu", "sigmoid", "tanh")))
    kwargs = {"negative_slope": draw(st.floats(-2.0, 2.0))} if kind == "leakyrelu" else {}
    shape, batch = draw(any_shapes())
    scale = draw(st.sampled_from((1.0, 3.0, 30.0)))
    layer = {"relu": "ReLU", "leakyrelu": "LeakyReLU", "sigmoid": "Sigmoid", "tanh": "Tanh"}[kind]
    return Case(layer, f"fuzz-{kind}-{kwargs}-scale{scale:g}-{shape}", (spec(kind, **kwargs),), shape, scale=scale,
                seed=draw(st.integers(0, 2**16)), tags=_tags(batch))


@st.composite
def dense_cases(draw) -> Case:
    """Flatten alone, Linear on ``(N, in)``, or Flatten + Linear on a batch or one image; bias on or off."""
    shape, batch = draw(any_shapes())
    features = np_prod(shape[1:]) if batch else np_prod(shape)
    kind = draw(st.sampled_from(("flatten", "linear", "flatten+linear")))
    if kind == "linear":
        shape, batch = (shape[0], features), True
    linear = spec("linear", in_features=features, out_features=draw(st.integers(1, 6)), bias=draw(st.booleans()))
    specs = {"flatten": (spec("flatten"),), "linear": (linear,), "flatten+linear": (spec("flatten"), linear)}[kind]
    layer = {"flatten": "Flatten", "linear": "Linear", "flatten+linear": "Flatten+Linear"}[kind]
    return Case(layer, f"fuzz-{kind}-{shape}", specs, shape, seed=draw(st.integers(0, 2**16)), tags=_tags(batch))


@st.composite
def cross_entropy_options(draw) -> CrossEntropyOption:
    """A random ``softmax_cross_entropy`` configuration: scores ``(N, C)`` or ``(N, C, d1[, d2])``, class-index
    or probability targets, class weights, ``ignore_index`` (-100 or a class), every reduction, any label
    smoothing in [0, 1], logits of scale 1 to 1e4."""
    n, c = draw(st.integers(1, 4)), draw(st.integers(1, 6))
    extra = draw(st.lists(st.integers(1, 3), max_size=2))
    target = draw(st.sampled_from(("index", "prob")))
    ignore = draw(st.none() | st.just(-100) | st.integers(0, c - 1)) if target == "index" else None
    return CrossEntropyOption(
        f"fuzz-ce-{target}", (n, c, *extra), target=target, weight=draw(st.booleans()), ignore=ignore,
        reduction=draw(st.sampled_from(("mean", "sum", "none"))),
        label_smoothing=draw(st.sampled_from((0.0, 1.0)) | st.floats(0.0, 1.0)),
        scale=draw(st.sampled_from((1.0, 10.0, 1e4))), seed=draw(st.integers(0, 2**16)))


@st.composite
def cross_entropy_cases(draw) -> Case:
    """:func:`cross_entropy_options` as a case of the matrix: the scores are the input of an empty model."""
    opt = draw(cross_entropy_options())
    return Case("CrossEntropy", f"{opt.id}-{opt.describe()}-{opt.scores_shape}", (), opt.scores_shape, loss=opt,
                scale=opt.scale, seed=opt.seed)


def layer_cases() -> dict[str, st.SearchStrategy[Case]]:
    """Every layer of the reference, each with every option: layer name -> strategy of Cases."""
    return {
        "Conv2d": conv_option_cases(),
        "MaxPool2d": pool_cases("maxpool", options=True, indices=True),
        "AvgPool2d": pool_cases("avgpool", options=True),
        "AdaptiveAvgPool2d": adaptive_cases("adaptiveavgpool"),
        "AdaptiveMaxPool2d": adaptive_cases("adaptivemaxpool"),
        "GlobalAvgPool2d": global_pool_cases("globalavgpool"),
        "GlobalMaxPool2d": global_pool_cases("globalmaxpool"),
        "BatchNorm2d": batchnorm_cases(),
        "Dropout": dropout_cases(),
        "Activation": activation_cases(),
        "Dense": dense_cases(),
    }
