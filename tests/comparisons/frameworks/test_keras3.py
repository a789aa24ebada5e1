"""What the Keras 3 framework (:mod:`comparisons.frameworks.keras3`) does that the shared case matrix does
not show: float64 really computed in float64, channels-first order after a Flatten, the limits it reports
(``unsupported``) confirmed by Keras, -inf padding for max pooling, inverted dropout, the biased running
variance, LeakyReLU's float32 slope, the depthwise kernel conversion, the padding layers it builds, and where
Keras' max pools send a tied maximum's gradient.

Adaptive and global pooling and the cross-entropy options on random inputs are in the shared case matrix
(``tests/comparisons/test_matrix.py``, ``cnnref verify``), with the framework's reasons for what it skips;
the tie tests here run on inputs drawn from {0, 1}, where most windows hold tied maxima.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reference as ref
from comparisons import cases, harness, layouts
from comparisons.cases_options import POOL_OPTIONS
from reference import adaptive
from tests.comparisons.helpers import assert_all_pass

pytestmark = pytest.mark.keras

pairs_of_sizes = st.tuples(st.integers(1, 4), st.integers(1, 4))


def test_float64_really_computes_in_float64(keras_framework, keras3):
    """Keras' default float is float32; every layer here must compute (and the loss reduce) in float64."""
    case = cases.tutorial_cases()[1]
    records = harness.compare(case, "im2col", "float64", keras_framework)
    assert_all_pass(records)
    assert max(r.max_rel_err for r in records) < 1e-13  # float32 anywhere on the path would give ~1e-7
    model = keras3.model.build(case.specs, case.input_shape[1:], "float64")
    assert {layer.compute_dtype for layer in model.layers} == {"float64"}
    assert {v.dtype for layer in model.layers for v in layer.weights} == {"float64"}


def test_output_of_a_flatten_comes_back_in_channels_first_order(keras_framework):
    """A model ending in Flatten: Keras flattens H, W, C; the adapter returns C, H, W order (and takes dout so)."""
    conv = cases.spec("conv", in_channels=2, out_channels=3, kernel_size=2, stride=1, padding=1, dilation=1, bias=True)
    case = cases.Case("Conv2d", "conv-flatten", (conv, cases.spec("relu"), cases.spec("flatten")),
                      (2, 2, 5, 4), seed=5)
    for dtype in cases.DTYPES:
        assert_all_pass(harness.compare(case, "im2col", dtype, keras_framework))


def test_unsupported_reasons_are_true(keras_framework):
    """What ``unsupported`` claims, Keras confirms."""
    import keras

    conv = next(c for c in cases.conv_cases() if c.id.startswith("conv-k3x3-s2-p1-d2"))
    assert "dilation_rate" in keras_framework.unsupported(conv)
    with pytest.raises(ValueError, match="dilation_rate"):
        keras.layers.Conv2D(4, 3, strides=2, dilation_rate=2)


def test_max_pool_padding_needs_minus_infinity(keras_framework, keras3):
    """Why the adapter pads max pooling with -inf (``ConstantPadding2D``): Keras' ZeroPadding2D lets the padded
    zeros win the max of an all-negative input, the -inf padding does not."""
    import keras

    x = -np.ones((1, 3, 3, 1))
    zero_padded = keras.layers.MaxPooling2D(2, 1)(keras.layers.ZeroPadding2D(1)(x))
    assert np.max(zero_padded) == 0.0
    inf_padded = keras.layers.MaxPooling2D(2, 1)(keras3.layers.ConstantPadding2D(((1, 1), (1, 1)), -np.inf)(x))
    assert np.asarray(inf_padded).tolist() == (-np.ones((1, 4, 4, 1))).tolist()
    pool = next(c for c in cases.pool_cases() if c.id == "maxpool-k2x2-s1-p1-single")
    assert keras_framework.unsupported(pool) is None


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_keras_dropout_is_inverted_dropout(p, keras_framework):
    """What the adapter's fixed-mask dropout assumes: keras.layers.Dropout scales kept elements by 1/(1-p)
    and is the identity in inference mode."""
    import keras

    x = np.random.default_rng(0).uniform(1, 2, (50, 40))  # no element is 0
    layer = keras.layers.Dropout(p, seed=1, dtype="float64")
    out = np.asarray(layer(x, training=True))
    kept = out != 0
    assert 0 < kept.sum() < x.size
    assert harness.errors(out, x * kept / (1 - p))[1] <= 2 * np.finfo(np.float64).eps
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)


def test_batchnorm_running_variance_needs_the_biased_option(keras_framework):
    """Against Keras the reference runs with unbiased_running_var=False; with PyTorch's convention only the
    running variance differs (by the n/(n-1) factor), everything else still agrees."""
    case = cases.batchnorm_cases()[0]
    mapped = keras_framework.reference_case(case)
    assert mapped.specs[0].kwargs["unbiased_running_var"] is False
    assert_all_pass(harness.compare(case, None, "float64", keras_framework))
    unmapped = dataclasses.replace(keras_framework, reference_case=lambda c: c)
    failed = {r.quantity for r in harness.compare(case, None, "float64", unmapped) if not r.passed}
    assert failed == {"running_var"}


def test_keras_leaky_relu_slope_is_float32(keras_framework):
    """TensorFlow's LeakyRelu takes its slope as a float32 attribute, even in float64: the adapter gives the
    reference float32(slope), and the float64 cases agree to rounding only because of that."""
    import keras

    out = keras.layers.LeakyReLU(negative_slope=0.01, dtype="float64")(np.array([-1.0]))
    assert float(np.asarray(out)[0]) == -float(np.float32(0.01)) != -0.01
    case = next(c for c in cases.activation_cases() if c.layer == "LeakyReLU")
    assert keras_framework.reference_case(case).specs[0].kwargs["negative_slope"] == float(np.float32(0.01))


@settings(max_examples=30)
@given(c=st.integers(1, 4), m=st.integers(1, 3), k=pairs_of_sizes, seed=st.integers(0, 2**16))
def test_depthwise_kernel_conversion(c, m, k, seed, keras_framework):
    """OIHW (C*m, 1, kh, kw) <-> Keras depthwise (kh, kw, C, m): inverse of each other, and filter j of input
    channel c is PyTorch's output channel c*m + j."""
    w = np.random.default_rng(seed).standard_normal((c * m, 1, *k))
    kernel = layouts.oihw_to_keras_depthwise(w, c)
    assert kernel.shape == (*k, c, m)
    np.testing.assert_array_equal(layouts.keras_depthwise_to_oihw(kernel), w)
    np.testing.assert_array_equal(kernel[..., c - 1, m - 1], w[c * m - 1, 0])


def test_keras_same_padding_runs_as_conv2d_same(keras3):
    """Keras' "same" at stride 2 and 3 is the reference's explicit ((top, bottom), (left, right)): the adapter
    builds Conv2D(padding="same") with no padding layer; reflect padding is a ReflectionPadding2D layer."""
    import keras

    for case in cases.conv_padding_cases():
        if "keras-same" in case.id:
            model = keras3.model.build(case.specs, case.input_shape[-3:], "float64")
            assert [type(layer) for layer in model.layers] == [keras.layers.Conv2D]
            assert model.layers[0].padding == "same" and max(model.layers[0].strides) > 1
    reflect = next(c for c in cases.conv_padding_mode_cases() if c.id == "conv-reflect-p1-k3-batch")
    model = keras3.model.build(reflect.specs, reflect.input_shape[1:], "float64")
    assert isinstance(model.layers[0], keras3.layers.ReflectionPadding2D)


def test_option_skip_reasons_are_true(keras_framework):
    """The TensorFlow backend refuses edge / wrap padding (so the adapter gathers the border cells itself:
    SlicePadding2D); AdaptiveMaxPooling2D(1) over 7 cells uses an 8-cell "big" window; MaxPooling2D takes
    no dilation."""
    import keras
    from keras.src.backend.common.backend_utils import compute_adaptive_pooling_window_sizes

    replicate = next(c for c in cases.conv_padding_mode_cases() if c.id == "conv-replicate-p1-k3-batch")
    assert keras_framework.unsupported(replicate) is None
    for mode in ("edge", "wrap"):
        with pytest.raises(Exception, match="CONSTANT"):
            keras.ops.pad(np.zeros((1, 3, 3, 1)), ((0, 0), (1, 1), (1, 1), (0, 0)), mode=mode)
    bug = next(c for c in cases.pool_option_cases() if c.id == "adaptivemax-7x5-to-1-global")
    assert "empty VALID pool" in keras_framework.unsupported(bug)
    assert compute_adaptive_pooling_window_sizes(7, 1) == (7, 8)
    dilated = next(c for c in cases.pool_option_cases() if c.specs[0].kwargs.get("dilation", 1) != 1)
    assert "dilation" in keras_framework.unsupported(dilated)
    with pytest.raises(ValueError, match="Unrecognized keyword arguments.*dilation_rate"):
        keras.layers.MaxPooling2D(2, dilation_rate=2)


KERAS_POOLS = {"AdaptiveAvgPool2d": "AdaptiveAveragePooling2D", "AdaptiveMaxPool2d": "AdaptiveMaxPooling2D",
               "GlobalMaxPool2d": "GlobalMaxPooling2D"}


def keras_pool(opt, x, dout, dtype):
    """``(out, dx)`` of the Keras layer on channels-first ``x`` (a batch axis added for one image)."""
    import keras
    import tensorflow as tf

    single = x.ndim == 3
    xb, db = (x[None], dout[None]) if single else (x, dout)
    args = ()
    if opt.layer != "GlobalMaxPool2d":
        size = opt.kwargs["output_size"]
        size = (size, size) if isinstance(size, int) else size
        args = (tuple(s if o is None else o for o, s in zip(size, xb.shape[2:], strict=True)),)  # None: keep
    layer = getattr(keras.layers, KERAS_POOLS[opt.layer])(*args, dtype=dtype)
    v = tf.Variable(layouts.nchw_to_nhwc(xb))
    with tf.GradientTape() as tape:
        out = layer(v)
    d = db if opt.layer == "GlobalMaxPool2d" else layouts.nchw_to_nhwc(db)
    dx = layouts.nhwc_to_nchw(tape.gradient(out, v, output_gradients=tf.constant(d)).numpy())
    out = out.numpy() if opt.layer == "GlobalMaxPool2d" else layouts.nhwc_to_nchw(out.numpy())
    return (out[0], dx[0]) if single else (out, dx)


@pytest.mark.parametrize("opt", [o for o in POOL_OPTIONS if o.ties and o.layer != "AdaptiveAvgPool2d"],
                         ids=[o.id for o in POOL_OPTIONS if o.ties and o.layer != "AdaptiveAvgPool2d"])
def test_keras_routes_tied_max_gradient_to_other_cells(opt, keras_framework):
    """A porting difference pinned: same outputs and gradient totals, different cells. GlobalMaxPooling2D
    (``reduce_max``) splits a tie evenly among the tied cells; AdaptiveMaxPooling2D pools rows then columns
    (separable max pools), so its winner of a 2-D tie is not the row-major first."""
    x = opt.input()
    layer = getattr(adaptive, opt.layer)(**{k: v for k, v in opt.kwargs.items() if k != "return_indices"})
    out = layer.forward(x)
    dout = np.ones(out.shape)
    dx = layer.backward(dout)
    k_out, k_dx = keras_pool(opt, x, dout, "float64")
    assert np.array_equal(out, k_out)
    assert np.allclose(dx.sum(axis=(-2, -1)), k_dx.sum(axis=(-2, -1)), rtol=1e-14)
    assert not np.array_equal(dx, k_dx)
    if opt.layer == "GlobalMaxPool2d":
        assert np.count_nonzero(k_dx) > np.count_nonzero(dx)


# -- transposed conv, resizing, layer / group norm, GELU, softmax, hard sigmoid -----------------------------------
def _case(cid: str) -> cases.Case:
    return next(c for c in cases.all_cases() if c.id == cid)


REPRESENTATIVE = (  # each kind and option Keras expresses, once
    "convtranspose-c3-f4-k3-s1-p0-op0-d1-g1-batch-bias", "convtranspose-c3-f4-k3-s2-p1-op1-d1-g1-single-nobias",
    "upsample-nearest-scale_factor3.0-single-3x4x5", "upsample-nearest-exact-size3x2-single-2x7x5",
    "upsample-bilinear-acFalse-scale_factor0.6-recompute_scale_factorTrue-batch-2x2x5x7",
    "layernorm-3x4x5-in2x3x4x5", "layernorm-5-in2x3x4x5", "layernorm-6-in3x4x6-biasFalse",
    "groupnorm-g6-batch-2x6x3x3", "groupnorm-g2-batch-2x4x3x5-affineFalse", "gelu-tanh-scale5-batch",
    "softmax-dim2-2x3x4x5-scale1-batch", "softmax-dim1-5x3x4-scale2-single", "hardsigmoid-scale4-single",
)


@pytest.mark.parametrize("dtype", cases.DTYPES)
@pytest.mark.parametrize("cid", REPRESENTATIVE)
def test_transposed_conv_resizing_norm_and_activation_kinds_match(cid, dtype, keras_framework):
    case = _case(cid)
    reason = harness.skip_reason(keras_framework, case, dtype)
    if reason is not None:  # float64 bilinear resizing and GELU on TensorFlow only
        assert "on tensorflow, float64" in reason and dtype == "float64", reason
        return
    for triple in [t for t in cases.expand([case]) if t[2] == dtype]:
        records = harness.compare(*triple, keras_framework)
        assert_all_pass(records)
        if dtype == "float64":
            assert max(r.max_rel_err for r in records) < 1e-13  # float32 anywhere on the path would give ~1e-7


def test_conv_transpose_reasons_are_true(keras_framework):
    """Keras' Conv2DTranspose has no groups, refuses output_padding >= strides and strides > 1 with dilation > 1."""
    import keras

    groups, extra, dilated = (keras_framework.unsupported(_case(cid)) for cid in (
        "convtranspose-c4-f6-k2x3-s2x3-p1x0-op1x2-d1-g2-batch-bias",
        "convtranspose-c2-f4-k3-s1-p0-op1-d3-g1-batch-nobias",
        "convtranspose-c2-f3-k3x2-s1x2-p0x1-op0x1-d2x1-g1-batch-bias"))
    assert "no groups" in groups and "output_padding < strides" in extra and "dilation_rate > 1" in dilated
    with pytest.raises(ValueError, match="Unrecognized keyword arguments.*groups"):
        keras.layers.Conv2DTranspose(6, 3, groups=2)
    with pytest.raises(ValueError, match="output_padding"):
        keras.layers.Conv2DTranspose(4, 3, strides=1, output_padding=1, dilation_rate=3)
    with pytest.raises(ValueError, match="dilation_rate"):
        keras.layers.Conv2DTranspose(3, (3, 2), strides=(1, 2), dilation_rate=(2, 1))


@pytest.mark.parametrize("cid", ["upsample-nearest-scale_factor0.5-batch-2x2x7x6",
                                 "upsample-bilinear-acFalse-scale_factor1.7-batch-2x2x5x6",
                                 "upsample-bilinear-acTrue-size7x9-batch-2x2x4x5"])
def test_resize_reasons_are_true(cid, keras_framework):
    """PyTorch's nearest (floor(o * scale)), its 1 / scale_factor and align_corners=True are not Keras' resizing:
    Keras' Resizing to the same output size reads other cells or weights (its output differs from the reference's
    far beyond rounding)."""
    import keras

    case = _case(cid)
    assert keras_framework.unsupported(case) is not None
    x = np.random.default_rng(0).standard_normal(case.input_shape)
    s = case.specs[0]
    ours = ref.Upsample(**s.kwargs).forward(x)
    interpolation = "bilinear" if s.kwargs["mode"] == "bilinear" else "nearest"
    theirs = keras.layers.Resizing(*ours.shape[-2:], interpolation=interpolation, dtype="float64")(
        layouts.nchw_to_nhwc(x))
    assert ref.max_rel_error(layouts.nhwc_to_nchw(np.asarray(theirs)), ours) > 1e-3


@pytest.mark.parametrize("cid, dtype", [("gelu-none-scale1-batch", "float64"),
                                        ("upsample-bilinear-acFalse-size7x9-batch-2x2x4x5", "float64"),
                                        ("softmax-dim0-5x3x4-scale1-single", "float32")])
def test_tensorflow_precision_limits_are_true(cid, dtype, keras_framework):
    """Computed anyway, each case TensorFlow's limits name fails: GELU's float32 constants and float32 bilinear
    resizing in float64, the float32 softmax over an axis of length 1."""
    case = _case(cid)
    assert "on tensorflow" in keras_framework.dtype_reason(case, dtype)
    records = harness.compare(case, cases.expand([case])[0][1], dtype, keras_framework)
    assert not all(r.passed for r in records)


def test_layer_norm_over_a_whole_map_has_channels_last_parameters(keras3):
    """LayerNormalization over (H, W, C) holds its gamma as (H, W, C): the reference's (C, H, W) weight moves."""
    s = _case("layernorm-3x4x5-in2x3x4x5").specs[0]
    model = keras3.model.build((s,), (3, 4, 5), "float64")
    weight = np.arange(60.0).reshape(3, 4, 5)
    assert model.param_to_keras("0.weight", weight).shape == (4, 5, 3)
    assert np.array_equal(model.param_from_keras("0.weight", model.param_to_keras("0.weight", weight)), weight)


# -- binary cross-entropy -------------------------------------------------------------------------------------
BCE_TOL = {"float64": 1e-14, "float32": 1e-6}  # relative to max(1, |value|): the terms are O(1) here


def assert_bce_close(ours, theirs, dtype):
    for mine, other in zip(ours, theirs, strict=True):
        mine, other = np.asarray(mine, np.float64), np.asarray(other, np.float64)
        assert np.max(np.abs(mine - other)) <= BCE_TOL[dtype] * max(1.0, float(np.max(np.abs(other))))


def bce_draws(dtype):
    """Probabilities and targets in [0, 1] with every pairing of 0 and 1, and labels 0 and 1 on random ones."""
    rng = np.random.default_rng(0)
    p, t = rng.uniform(0, 1, (4, 5)), rng.uniform(0, 1, (4, 5))
    p[0, :4], t[0, :4] = [0, 0, 1, 1], [0, 1, 0, 1]
    t[1] = rng.integers(0, 2, 5)
    p[2, :2] = [0, 1]
    return p.astype(dtype), t.astype(dtype), rng


@pytest.mark.parametrize("dtype", cases.DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_binary_cross_entropy_matches_with_keras_clipping(dtype, reduction, weighted, keras3):
    """``BinaryCrossentropy()`` is the reference's ``binary_cross_entropy(..., clip_epsilon=1e-7)``: probabilities
    clipped to [1e-7, 1 - 1e-7], zero gradient outside, at probabilities and labels of exactly 0 and 1 too."""
    p, t, rng = bce_draws(dtype)
    w = rng.uniform(0.5, 2, 5).astype(dtype) if weighted else None
    dloss = rng.standard_normal(p.shape).astype(dtype) if reduction == "none" else 1.3
    ours = ref.binary_cross_entropy(p, t, w, reduction, dloss, clip_epsilon=1e-7)
    assert_bce_close(ours, keras3.losses.binary_cross_entropy(p, t, w, reduction, dloss), dtype)


def test_binary_cross_entropy_at_zero_and_one_needs_the_clip(keras3):
    """Without ``clip_epsilon`` (PyTorch's clamp of the logs at -100), the loss at p = 0 or 1 is Keras' far off."""
    p, t, _ = bce_draws("float64")
    theirs = keras3.losses.binary_cross_entropy(p, t, reduction="none")
    ours = ref.binary_cross_entropy(p, t, reduction="none")
    assert np.max(np.abs(ours[0] - theirs[0])) > 1.0


@pytest.mark.parametrize("dtype", cases.DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("scale", [1.0, 50.0])
def test_binary_cross_entropy_with_logits_matches(dtype, reduction, scale, keras3):
    """``BinaryCrossentropy(from_logits=True)`` with a (broadcast) weight is ``binary_cross_entropy_with_logits``;
    Keras has no pos_weight."""
    p, t, rng = bce_draws(dtype)
    x = (scale * rng.standard_normal(p.shape)).astype(dtype)
    w = rng.uniform(0.5, 2, (4, 1)).astype(dtype)
    dloss = rng.standard_normal(p.shape).astype(dtype) if reduction == "none" else 0.7
    ours = ref.binary_cross_entropy_with_logits(x, t, w, None, reduction, dloss)
    assert_bce_close(ours, keras3.losses.binary_cross_entropy(x, t, w, reduction, dloss, from_logits=True), dtype)
    assert "no pos_weight" in keras3.losses.binary_cross_entropy_reason(np.ones(5))
    assert keras3.losses.binary_cross_entropy_reason(None) is None


def test_binary_cross_entropy_cases_compare_with_keras_clipping(keras_framework):
    """The matrix's binary cross-entropies on probabilities run against ``clip_epsilon=keras.config.epsilon()``
    (1e-7): at probabilities of exactly 0 and 1 Keras' loss is the clipped one (all-edge inputs: the gradient is 0
    everywhere) and agrees to rounding; the logits need no switch; pos_weight is refused."""
    probs = _case("bce-probs-N6C5-mean-weight-edges")
    switched = keras_framework.reference_case(probs)
    assert probs.loss.clip_epsilon is None and switched.loss.clip_epsilon == 1e-7
    assert "clip_epsilon=1e-07" in switched.config
    records = harness.compare(probs, None, "float64", keras_framework)
    assert_all_pass(records)
    assert max(r.max_rel_err for r in records) < 1e-13
    run = harness.run_reference(switched, None, "float64")
    assert not run.results["dx"].any() and set(np.unique(run.x)) == {0.0, 1.0}
    logits = _case("bce-logits-N6C5-sum-weight-soft-edges-scale800")
    assert keras_framework.reference_case(logits) is logits
    assert_all_pass(harness.compare(logits, None, "float32", keras_framework))
    assert "has no pos_weight" in keras_framework.unsupported(_case("bce-logits-N6C5-none-weight-posweight"))
