"""Layout conversions: each one is undone exactly by its inverse and means what its docstring says.

The Keras-backed tests (``keras`` marker) check the padding map against Keras itself and port
the tutorial CNN reference -> Keras -> reference.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import reference as ref
from comparisons import cases, harness, layouts
from tests.strategies import pairs

dims = st.integers(1, 5)
floats = st.floats(-1e6, 1e6, allow_nan=False, width=64)


def arrays(ndim: int) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.float64, st.tuples(*[dims] * ndim), elements=floats)


ROUND_TRIPS = [
    (layouts.chw_to_hwc, layouts.hwc_to_chw, 3),
    (layouts.nchw_to_nhwc, layouts.nhwc_to_nchw, 4),
    (layouts.oihw_to_hwio, layouts.hwio_to_oihw, 4),
    (layouts.linear_to_torch, layouts.linear_from_torch, 2),
]


@pytest.mark.parametrize(("forward", "inverse", "ndim"), ROUND_TRIPS, ids=[f.__name__ for f, _, _ in ROUND_TRIPS])
@given(data=st.data())
def test_round_trip_is_exact(forward, inverse, ndim, data):
    x = data.draw(arrays(ndim))
    there = forward(x)
    assert there.flags.c_contiguous
    np.testing.assert_array_equal(inverse(there), x)
    np.testing.assert_array_equal(forward(inverse(there)), there)


@given(x=arrays(4))
def test_axis_meaning(x):
    """``x[n, c, h, w]`` is found at ``[n, h, w, c]`` channels-last; kernel ``w[o, i, h, w]`` at ``[h, w, i, o]``."""
    n, c, h, w = (int(i) - 1 for i in x.shape)
    assert layouts.nchw_to_nhwc(x)[n, h, w, c] == x[n, c, h, w]
    assert layouts.chw_to_hwc(x[n])[h, w, c] == x[n, c, h, w]
    assert layouts.oihw_to_hwio(x)[h, w, c, n] == x[n, c, h, w]
    assert layouts.linear_to_torch(x[n, c])[w, h] == x[n, c, h, w]


def _hwc(chw):
    c, h, w = chw
    return (h, w, c)


@given(x=arrays(3), out=dims, rows=dims)
def test_flatten_order_conversions_round_trip(x, out, rows):
    chw, hwc = x.shape, _hwc(x.shape)
    np.testing.assert_array_equal(layouts.flat_chw_to_hwc(x.reshape(-1), chw=chw), layouts.chw_to_hwc(x).reshape(-1))
    np.testing.assert_array_equal(layouts.flat_hwc_to_chw(layouts.chw_to_hwc(x).reshape(-1), hwc=hwc), x.reshape(-1))
    flat = np.stack([x.reshape(-1)] * rows)
    np.testing.assert_array_equal(layouts.flat_hwc_to_chw(layouts.flat_chw_to_hwc(flat, chw=chw), hwc=hwc), flat)
    w = np.arange(x.size * out, dtype=np.float64).reshape(x.size, out)
    np.testing.assert_array_equal(layouts.dense_rows_hwc_to_chw(layouts.dense_rows_chw_to_hwc(w, chw=chw), hwc=hwc), w)
    np.testing.assert_array_equal(layouts.dense_rows_chw_to_hwc(layouts.dense_rows_hwc_to_chw(w, hwc=hwc), chw=chw), w)


@given(x=arrays(3), out=dims)
def test_dense_rows_make_channels_last_flatten_compute_the_same(x, out):
    """``flatten_hwc(x) @ dense_rows_chw_to_hwc(W) == flatten_chw(x) @ W``: the same terms, permuted."""
    w = np.random.default_rng(x.size).standard_normal((x.size, out))
    keras_side = layouts.chw_to_hwc(x).reshape(-1) @ layouts.dense_rows_chw_to_hwc(w, chw=x.shape)
    reference_side = x.reshape(-1) @ w
    # the same products summed in another order: equal up to the rounding bound K * eps * sum |x_i w_ij|
    bound = 2 * x.size * np.finfo(np.float64).eps * (np.abs(x.reshape(-1)) @ np.abs(w))
    assert np.all(np.abs(keras_side - reference_side) <= bound)


SHAPED = {  # the conversions taking a feature-map shape: its keyword, and an input for a 60-feature map
    "dense_rows_chw_to_hwc": ("chw", np.zeros((60, 2))),
    "dense_rows_hwc_to_chw": ("hwc", np.zeros((60, 2))),
    "flat_chw_to_hwc": ("chw", np.zeros((2, 60))),
    "flat_hwc_to_chw": ("hwc", np.zeros((2, 60))),
    "flatten_permutation": ("chw", None),
}


def call_shaped(name: str, *shape, **keyword):
    """``layouts.<name>`` on its :data:`SHAPED` input with the feature shape passed as given."""
    a = SHAPED[name][1]
    return getattr(layouts, name)(*([] if a is None else [a]), *shape, **keyword)


@pytest.mark.parametrize("name", SHAPED)
def test_the_feature_shape_is_keyword_only(name):
    key = SHAPED[name][0]
    assert 60 in call_shaped(name, **{key: (3, 5, 4)}).shape
    with pytest.raises(TypeError):
        call_shaped(name, (3, 5, 4))


def test_the_shape_keyword_names_the_layout_of_the_input():
    """(8, 13, 13) and (13, 13, 8) hold as many features: the keyword says which order the shape is in."""
    w = np.random.default_rng(0).standard_normal((8 * 13 * 13, 10))
    keras_kernel = layouts.dense_rows_chw_to_hwc(w, chw=(8, 13, 13))
    np.testing.assert_array_equal(keras_kernel.reshape(13, 13, 8, 10), w.reshape(8, 13, 13, 10).transpose(1, 2, 0, 3))
    np.testing.assert_array_equal(layouts.dense_rows_hwc_to_chw(keras_kernel, hwc=(13, 13, 8)), w)
    x = np.arange(8 * 13 * 13).reshape(8, 13, 13)
    np.testing.assert_array_equal(layouts.flat_hwc_to_chw(layouts.chw_to_hwc(x).reshape(-1), hwc=(13, 13, 8)),
                                  x.reshape(-1))
    np.testing.assert_array_equal(layouts.flatten_permutation(chw=(8, 13, 13)), layouts.chw_to_hwc(x).reshape(-1))
    with pytest.raises(TypeError):
        layouts.dense_rows_chw_to_hwc(w, hwc=(13, 13, 8))  # a channels-first input takes chw=


@pytest.mark.parametrize("name", SHAPED)
@pytest.mark.parametrize("bad", [(3, 5), (3, 5, 4, 1), (3, 0, 4), (3, -5, 4), (3.0, 5, 4), (True, 5, 4), "354", 60],
                         ids=repr)
def test_the_feature_shape_must_be_three_positive_ints(name, bad):
    key = SHAPED[name][0]
    order = r"\(H, W, C\)" if key == "hwc" else r"\(C, H, W\)"
    with pytest.raises(ValueError, match=rf"layouts.{name}: {key} must be 3 positive ints {order}, got "):
        call_shaped(name, **{key: bad})


@pytest.mark.parametrize("name,key,a,message", [
    ("dense_rows_chw_to_hwc", "chw", np.zeros((61, 2)),
     r"w must have C\*H\*W = 60 features for chw=\(3, 5, 4\), got shape \(61, 2\)"),
    ("dense_rows_hwc_to_chw", "hwc", np.zeros((59, 2)),
     r"w must have H\*W\*C = 60 features for hwc=\(3, 5, 4\), got shape \(59, 2\)"),
    ("dense_rows_chw_to_hwc", "chw", np.zeros(60), r"w must have 2 dims \(features, out\), got shape \(60,\)"),
    ("dense_rows_hwc_to_chw", "hwc", np.zeros((60, 2, 1)), r"w must have 2 dims \(features, out\)"),
    ("flat_chw_to_hwc", "chw", np.zeros((60, 2)),
     r"a's last axis must have C\*H\*W = 60 features for chw=\(3, 5, 4\), got shape \(60, 2\)"),
    ("flat_hwc_to_chw", "hwc", np.zeros(()), r"a must have at least 1 dim \(..., features\), got shape \(\)"),
], ids=["chw-rows", "hwc-rows", "1-d-kernel", "3-d-kernel", "chw-features", "0-d"])
def test_the_array_must_match_the_feature_shape(name, key, a, message):
    with pytest.raises(ValueError, match=rf"layouts.{name}: {message}"):
        getattr(layouts, name)(a, **{key: (3, 5, 4)})


@given(padding=pairs(st.integers(0, 9), st.integers(0, 9)))
def test_padding_round_trip(padding):
    keras_padding = layouts.padding_to_keras(padding)
    assert keras_padding == ((padding[0], padding[0]), (padding[1], padding[1]))
    assert layouts.padding_from_keras(keras_padding) == padding
    assert layouts.padding_to_keras(padding[0]) == ((padding[0],) * 2,) * 2


@given(size=pairs(st.integers(1, 30), st.integers(1, 30)), kernel=pairs(dims, dims),
       stride=pairs(st.integers(1, 4), st.integers(1, 4)), dilation=pairs(st.integers(1, 3), st.integers(1, 3)))
def test_same_padding_keeps_ceil_size(size, kernel, stride, dilation):
    """With Keras' "same" padding a valid window op outputs ``ceil(n / s)``, extra zero at the bottom/right."""
    padding = layouts.keras_same_padding(size, kernel, stride, dilation)
    for n, k, s, d, (top, bottom) in zip(size, kernel, stride, dilation, padding, strict=True):
        assert 0 <= bottom - top <= 1
        assert (n + top + bottom - d * (k - 1) - 1) // s + 1 == -(-n // s)


def test_errors_name_the_function_and_the_shape():
    with pytest.raises(ValueError, match=r"layouts.chw_to_hwc: the array must have 3 dims \(C,H,W\), got shape"):
        layouts.chw_to_hwc(np.zeros((2, 3, 4, 5)))
    with pytest.raises(ValueError, match=r"layouts.dense_rows_chw_to_hwc: w must have C\*H\*W = 60 features"):
        layouts.dense_rows_chw_to_hwc(np.zeros((61, 2)), chw=(3, 5, 4))
    with pytest.raises(ValueError, match="must be symmetric"):
        layouts.padding_from_keras(((0, 1), (1, 1)))


# -- against Keras -------------------------------------------------------------
def _keras_conv(x_nchw: np.ndarray, weight: np.ndarray, stride, dilation, padding: str) -> np.ndarray:
    """Keras ``Conv2D`` (no bias, float64) on a reference-layout batch; output NCHW."""
    import keras

    conv = keras.layers.Conv2D(weight.shape[0], weight.shape[2:], strides=stride, dilation_rate=dilation,
                               padding=padding, use_bias=False, dtype="float64")
    conv.build(layouts.nchw_to_nhwc(x_nchw).shape)
    conv.kernel.assign(layouts.oihw_to_hwio(weight))
    return layouts.nhwc_to_nchw(np.asarray(conv(layouts.nchw_to_nhwc(x_nchw))))


def _reference_conv(x: np.ndarray, weight: np.ndarray, stride, dilation, padding) -> np.ndarray:
    conv = ref.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2:], stride=stride, padding=padding,
                      dilation=dilation, bias=False)
    conv.params["weight"] = weight
    return conv.forward(x)


def _pad_same(x: np.ndarray, padding: layouts.KerasPadding) -> np.ndarray:
    return np.pad(x, ((0, 0), (0, 0), *padding))


@pytest.mark.keras
def test_keras_same_differs_from_symmetric_padding(keras_framework):
    """10x10 input, 3x3 kernel, stride 2: "same" pads (0, 1) per axis, symmetric padding 1 pads (1, 1).

    Both give a 5x5 output, with different values; the reference on the input padded by
    :func:`layouts.keras_same_padding` (then ``padding=0``) is Keras' "same" result.
    """
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 10, 10)), rng.standard_normal((4, 3, 3, 3))
    same = layouts.keras_same_padding((10, 10), 3, 2)
    assert same == ((0, 1), (0, 1))
    keras_out = _keras_conv(x, w, 2, 1, "same")
    symmetric = _reference_conv(x, w, 2, 1, 1)
    assert keras_out.shape == symmetric.shape == (2, 4, 5, 5)
    assert ref.rel_error(keras_out, symmetric) > 0.1
    assert harness.errors(_reference_conv(_pad_same(x, same), w, 2, 1, 0), keras_out)[1] < 1e-13


@pytest.mark.keras
@settings(max_examples=40)  # each example builds a Keras layer (~5 ms); 40 cover the odd/even/stride/dilation mix
@given(size=pairs(st.integers(1, 12), st.integers(1, 12)), kernel=pairs(dims, dims),
       stride=pairs(st.integers(1, 3), st.integers(1, 3)), dilation=pairs(st.integers(1, 2), st.integers(1, 2)),
       seed=st.integers(0, 2**16))
def test_keras_same_padding_matches_keras(size, kernel, stride, dilation, seed, keras_framework):
    if max(stride) > 1:
        dilation = (1, 1)  # Keras Conv2D rejects strides > 1 with dilation_rate > 1
    padding = layouts.keras_same_padding(size, kernel, stride, dilation)
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((1, 2, *size)), rng.standard_normal((3, 2, *kernel))
    padded = _pad_same(x, padding)
    # "same" always pads up to at least one whole (dilated) kernel
    assert all(n >= d * (k - 1) + 1 for n, k, d in zip(padded.shape[2:], kernel, dilation, strict=True))
    keras_out = _keras_conv(x, w, stride, dilation, "same")
    assert harness.errors(_reference_conv(padded, w, stride, dilation, 0), keras_out)[1] < 1e-13


@pytest.mark.keras
@settings(max_examples=20)  # one cached Keras model; 20 draws of the weights are plenty for a permutation
@given(seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 3))
def test_tutorial_cnn_reference_to_keras_to_reference(seed, batch, keras3):
    """Port the tutorial CNN's weights to Keras and back: same logits in Keras, identical weights back."""
    model = ref.Sequential(cases.build_layer(s, "im2col", np.float64, np.random.default_rng(seed))
                           for s in cases.tutorial_cnn_specs())
    x = np.random.default_rng(seed + 1).standard_normal((batch, 1, 28, 28))
    logits = model.forward(x)
    keras_model = keras3.model.build(cases.tutorial_cnn_specs(), (1, 28, 28), "float64")
    keras_model.load(dict(model.params))
    keras_logits = np.asarray(keras_model(keras_model.to_keras(x)))
    assert harness.errors(keras_logits, logits)[1] < 1e-12

    back = ref.Sequential(cases.build_layer(s, "loop", np.float64, np.random.default_rng(seed + 2))
                          for s in cases.tutorial_cnn_specs())
    exported = keras_model.export()
    assert exported.keys() == set(model.params)
    for key, value in exported.items():
        back.params[key] = value
        np.testing.assert_array_equal(value, model.params[key], err_msg=key)
    assert harness.errors(back.forward(x), logits)[1] < 1e-12
