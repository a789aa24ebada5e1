"""Every case of the matrix against Keras 3 (TensorFlow backend): forward, dx and every parameter gradient.

The adapter converts layouts both ways (:mod:`comparisons.layouts`); a case Keras cannot
express exactly is skipped with the adapter's reason.
"""

from __future__ import annotations

import dataclasses
import types

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from comparisons import cases, harness, layouts
from tests import strategies
from tests.comparisons.test_torch import assert_all_pass

pytestmark = pytest.mark.keras

pairs_of_sizes = st.tuples(st.integers(1, 4), st.integers(1, 4))

TRIPLES = cases.expand(cases.all_cases())


@pytest.mark.parametrize("triple", TRIPLES, ids=[cases.triple_id(t) for t in TRIPLES])
def test_matches_keras(triple, keras_framework):
    case, impl, dtype = triple
    reason = keras_framework.unsupported(case)
    if reason is not None:
        pytest.skip(reason)
    records = harness.compare(case, impl, dtype, keras_framework)
    expected = {"forward", "dx"} | ({"loss"} if case.loss else set())
    assert expected <= {r.quantity for r in records}
    assert_all_pass(records)


# What Keras cannot express, and how many (case, impl, dtype) runs of the matrix each limit skips: a
# change in the adapter that skips more (or other) runs fails here instead of passing as skips.
KERAS_LIMITS = {
    "Keras Conv2D rejects strides > 1 together with dilation_rate > 1": 144,
    "no Keras equivalent of class weights with label smoothing or probability targets": 16,
    "Keras MaxPooling2D has no dilation": 12,
    "Keras has no average pooling that leaves the padding out of the divisor": 12,
    "Keras AveragePooling2D has no divisor_override": 8,
    "has no return_indices": 6,
    "AdaptiveMaxPooling2D max-pools with a window of": 2,
}


def test_the_matrix_skips_only_the_known_keras_limits(keras_framework):
    """Each skipped run is explained by exactly one known limit, with the counts above (748 of 948 runs go
    ahead)."""
    counts = dict.fromkeys(KERAS_LIMITS, 0)
    for case, impl, dtype in TRIPLES:
        reason = keras_framework.unsupported(case)
        if reason is None:
            continue
        limits = [limit for limit in KERAS_LIMITS if limit in reason]
        assert len(limits) == 1, f"{cases.triple_id((case, impl, dtype))}: unexpected skip reason {reason!r}"
        counts[limits[0]] += 1
    assert counts == KERAS_LIMITS
    assert len(TRIPLES) - sum(counts.values()) >= 748


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
    case = cases.Case("Conv2d+Flatten", "conv-flatten", (conv, cases.spec("relu"), cases.spec("flatten")),
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


@st.composite
def keras_conv_cases(draw) -> cases.Case:
    """``strategies.conv_cases`` without what Keras cannot express: stride > 1 together with
    dilation > 1 (Keras rejects it).

    Filtering would discard most draws; instead one of stride and dilation is set to 1 (the
    input still fits: the effective kernel only shrinks).
    """
    case = draw(strategies.conv_cases())
    kw = case.specs[0].kwargs
    changed = False
    if max(kw["stride"]) > 1 and max(kw["dilation"]) > 1:
        kw[draw(st.sampled_from(("stride", "dilation")))] = (1, 1)
        changed = True
    if changed:
        case = dataclasses.replace(case, specs=(cases.spec("conv", **kw),),
                                   id=f"{case.id}-s{kw['stride']}-d{kw['dilation']}-{kw['padding_mode']}")
    return case


# Each example builds fresh Keras layers (a few ms each, plus the reference loop): 50 examples
# keep this test near a second while covering odd sizes, rectangular kernels and both dtypes.
@settings(max_examples=50)
@given(case=keras_conv_cases(), impl=strategies.impls, dtype=strategies.dtypes)
def test_conv_property_matches_keras(case, impl, dtype, keras_framework):
    assert keras_framework.unsupported(case) is None
    assert_all_pass(harness.compare(case, impl, dtype, keras_framework))


@settings(max_examples=50)  # as above
@given(case=strategies.pool_cases("avgpool"), impl=strategies.impls, dtype=strategies.dtypes)
def test_avgpool_property_matches_keras(case, impl, dtype, keras_framework):
    assert_all_pass(harness.compare(case, impl, dtype, keras_framework))


@settings(max_examples=50)  # as above
@given(case=strategies.pool_cases("maxpool", options=True), impl=strategies.impls, dtype=strategies.dtypes)
def test_maxpool_property_matches_keras(case, impl, dtype, keras_framework):
    """Any padding and ceil_mode (through -inf padding where "same" differs); dilation is not in Keras."""
    kw = case.specs[0].kwargs
    if kw["dilation"] != (1, 1):
        kw = {**kw, "dilation": (1, 1)}
        case = dataclasses.replace(case, specs=(cases.spec("maxpool", **kw),), id=f"{case.id}-d1")
    assert keras_framework.unsupported(case) is None
    assert_all_pass(harness.compare(case, impl, dtype, keras_framework))


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
    assert_all_pass(harness.compare(case, "n/a", "float64", keras_framework))
    unmapped = types.SimpleNamespace(**{k: getattr(keras_framework, k) for k in ("name", "version", "run")},
                                     reference_case=lambda c: c)
    failed = {r.quantity for r in harness.compare(case, "n/a", "float64", unmapped) if not r.passed}
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
