"""Bad input gets a clear exception naming the argument, the expected and the actual value."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest

from reference import (
    AdaptiveMaxPool2d,
    AvgPool2d,
    Conv2d,
    Flatten,
    GlobalMaxPool2d,
    Linear,
    MaxPool2d,
    ReLU,
    Sequential,
    softmax_cross_entropy,
    validation,
)
from reference.validation import all_finite

X = np.zeros((2, 3, 8, 8))

CASES = [
    # (id, callable, exception, message fragment)
    ("conv-rank-2", lambda: Conv2d(3, 4, 3).forward(np.zeros((28, 28))), ValueError,
     r"Conv2d.forward: x must have 3 or 4 dims \(C,H,W\) or \(N,C,H,W\), got shape \(28, 28\)"),
    ("conv-rank-5", lambda: Conv2d(3, 4, 3).forward(np.zeros((1, 2, 3, 8, 8))), ValueError,
     r"got shape \(1, 2, 3, 8, 8\)"),
    ("conv-channels", lambda: Conv2d(1, 4, 3).forward(X), ValueError, r"x has 3 channels, expected in_channels=1"),
    ("conv-kernel-too-big", lambda: Conv2d(3, 4, 5, padding=1).forward(np.zeros((3, 2, 8))), ValueError,
     r"kernel height \(effective size 5\) is larger than the padded input height 4"),
    ("conv-dilated-kernel-too-big", lambda: Conv2d(3, 4, 3, dilation=4).forward(X), ValueError,
     r"effective size 9"),
    ("conv-stride-zero", lambda: Conv2d(3, 4, 3, stride=0), ValueError, r"Conv2d: stride must be positive, got 0"),
    ("conv-dilation-negative", lambda: Conv2d(3, 4, 3, dilation=(1, -2)), ValueError,
     r"dilation must be positive, got -2"),
    ("conv-padding-negative", lambda: Conv2d(3, 4, 3, padding=-1), ValueError, r"padding must be >= 0, got -1"),
    ("conv-kernel-float", lambda: Conv2d(3, 4, 2.5), TypeError, r"kernel_size must be an int, got 2.5"),
    ("conv-kernel-triple", lambda: Conv2d(3, 4, (1, 2, 3)), ValueError, r"kernel_size must be an int or a pair"),
    ("conv-impl", lambda: Conv2d(3, 4, 3, impl="fft"), ValueError, r"impl must be one of \('loop', 'im2col'\)"),
    ("conv-dtype", lambda: Conv2d(3, 4, 3, dtype=np.float16), TypeError, r"dtype must be float32 or float64"),
    ("conv-int-input", lambda: Conv2d(3, 4, 3).forward(X.astype(np.int64)), TypeError,
     r"x must have a real floating dtype .* got dtype int64"),
    ("conv-float16-input", lambda: Conv2d(3, 4, 3).forward(X.astype(np.float16)), TypeError,
     r"x must have a real floating dtype \(float32 or float64\), got dtype float16"),
    ("relu-longdouble", lambda: ReLU().forward(X.astype(np.longdouble)), TypeError, r"float32 or float64"),
    ("conv-bias-string", lambda: Conv2d(3, 4, 3, bias="no"), TypeError, r"Conv2d: bias must be a bool, got 'no'"),
    ("linear-dtype-bogus", lambda: Linear(3, 4, dtype="bogus"), TypeError,
     r"Linear: dtype must be float32 or float64, got 'bogus'"),
    ("conv-weight-missing", lambda: _without_param(Conv2d(3, 4, 3), "weight").forward(X), KeyError,
     r"Conv2d.forward: params has no 'weight' \(it has \['bias'\]\)"),
    ("conv-complex-input", lambda: Conv2d(3, 4, 3).forward(X.astype(complex)), TypeError, r"got dtype complex128"),
    ("conv-backward-first", lambda: Conv2d(3, 4, 3).backward(np.zeros((2, 4, 6, 6))), RuntimeError,
     r"Conv2d.backward called before forward"),
    ("conv-dout-shape", lambda: _forwarded(Conv2d(3, 4, 3)).backward(np.zeros((2, 4, 6, 5))), ValueError,
     r"dout must have shape \(2, 4, 6, 6\), got shape \(2, 4, 6, 5\)"),
    ("conv-weight-replaced-wrong", lambda: _with_param(Conv2d(3, 4, 3), "weight", np.zeros((4, 3, 2, 2))).forward(X),
     ValueError, r"params\['weight'\] must have shape \(4, 3, 3, 3\), got shape \(4, 3, 2, 2\)"),
    ("maxpool-padding-over-half", lambda: MaxPool2d(2, padding=2), ValueError,
     r"padding must be at most half the kernel size"),
    ("avgpool-rank", lambda: AvgPool2d(2).forward(np.zeros(8)), ValueError, r"AvgPool2d.forward: x must have 3 or 4"),
    ("maxpool-int", lambda: MaxPool2d(2).forward(np.zeros((1, 4, 4), dtype=np.int32)), TypeError, r"int32"),
    ("maxpool-too-small", lambda: MaxPool2d(3).forward(np.zeros((1, 2, 2))), ValueError, r"larger than the padded"),
    ("pool-backward-first", lambda: MaxPool2d(2).backward(np.zeros((1, 2, 2))), RuntimeError,
     r"MaxPool2d.backward called before forward"),
    ("linear-features", lambda: Linear(10, 2).forward(np.zeros((3, 4))), ValueError,
     r"Linear.forward: x must hold in_features=10 values per sample.* got shape \(3, 4\)"),
    ("linear-backward-first", lambda: Linear(10, 2).backward(np.zeros((1, 2))), RuntimeError, r"before forward"),
    ("linear-out-zero", lambda: Linear(10, 0), ValueError, r"out_features must be positive, got 0"),
    ("relu-bool", lambda: ReLU().forward(np.array([True])), TypeError, r"got dtype bool"),
    ("flatten-dout", lambda: _forwarded(Flatten()).backward(np.zeros((2, 10))), ValueError,
     r"dout must have shape \(2, 192\)"),
    ("ce-labels-range", lambda: softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3])), ValueError,
     r"labels must be in \[0, 3\), got 3"),
    ("ce-labels-negative", lambda: softmax_cross_entropy(np.zeros((2, 3)), np.array([-1, 0])), ValueError,
     r"got -1"),
    ("ce-labels-float", lambda: softmax_cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0])), TypeError,
     r"target of shape \(2,\) must hold integer class indices, got dtype float64"),
    ("ce-labels-shape", lambda: softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 1, 2])), ValueError,
     r"target must have shape"
     r" \(2,\) \(class indices\) or \(2, 3\) \(probabilities\) to match scores \(2, 3\), got shape \(3,\)"),
    ("ce-scores-rank", lambda: softmax_cross_entropy(np.zeros(3), np.array([0])), ValueError,
     r"scores must have at least 2 dims \(N, C\) or \(N, C, d1, ...\)"),
    ("sequential-not-layer", lambda: Sequential([ReLU(), np.zeros(3)]), TypeError,
     r"layers\[1\] must be a Layer or have forward, backward, params and grads, got ndarray"),
]


def _forwarded(layer):
    layer.forward(X)
    return layer


def _without_param(layer, key):
    del layer.params[key]
    return layer


def _with_param(layer, key, value):
    layer.params[key] = value
    return layer


@pytest.mark.parametrize("call,exc,message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_clear_error(call, exc, message):
    with pytest.raises(exc, match=message):
        call()


@pytest.mark.parametrize("impl", ["loop", "im2col"])
@pytest.mark.parametrize("make,out_shape", [
    (lambda impl: Conv2d(3, 4, 3, impl=impl), (0, 4, 4, 4)),
    (lambda impl: MaxPool2d(2, impl=impl), (0, 3, 3, 3)),
    (lambda impl: AvgPool2d(2, impl=impl), (0, 3, 3, 3)),
    (lambda impl: AdaptiveMaxPool2d(2), (0, 3, 2, 2)),
    (lambda impl: GlobalMaxPool2d(), (0, 3)),
    (lambda impl: Flatten(), (0, 108)),
], ids=["conv", "maxpool", "avgpool", "adaptivemaxpool", "globalmaxpool", "flatten"])
def test_an_empty_batch_gives_empty_outputs_and_gradients(make, out_shape, impl):
    """N = 0 is a batch like any other (as in PyTorch): the shapes follow, no reshape of -1 on an empty array."""
    layer = make(impl)
    out = layer.forward(np.zeros((0, 3, 6, 6)))
    assert out.shape == out_shape
    assert layer.backward(np.zeros(out_shape)).shape == (0, 3, 6, 6)


# -- the argument checks themselves ----------------------------------------------------------------
# Through the module (not ``from ... import``), so that each test below fails on its own where a check is absent.
HUGE = [10**24, 2**31, np.int64(2**40), np.uint64(2**63)]


@pytest.mark.parametrize("value", HUGE, ids=["1e24", "2**31", "int64-2**40", "uint64-2**63"])
def test_check_int_refuses_values_above_max_int_naming_the_bound(value):
    with pytest.raises(ValueError, match=rf"Conv2d: stride must be <= 2147483647, got {int(value)} \("):
        validation.check_int(value, "Conv2d", "stride", 1)
    with pytest.raises(ValueError, match=r"Conv2d: stride must be <= 2147483647"):
        validation.as_pair((1, value), "Conv2d", "stride", 1)


def test_check_int_takes_an_upper_bound():
    assert validation.MAX_INT == 2**31 - 1
    assert validation.check_int(np.int16(7), "W", "n", 0, maximum=7) == 7
    assert validation.as_pair(np.int8(3), "W", "n", 0, maximum=3) == (3, 3)
    with pytest.raises(ValueError, match=r"W: n must be <= 7, got 8 \(int\)"):
        validation.check_int(8, "W", "n", 0, maximum=7)
    with pytest.raises(ValueError, match=r"W: n must be <= 3, got 4 \(int\)"):
        validation.as_pair((3, 4), "W", "n", 0, maximum=3)


@pytest.mark.parametrize("call,message", [
    (lambda: Conv2d(3, 4, 3, stride=10**24), r"Conv2d: stride must be <= 2147483647, got 10{24}"),
    (lambda: Conv2d(3, 4, 3, padding=(2**31, 0)), r"Conv2d: padding must be <= 2147483647, got 2147483648"),
    (lambda: MaxPool2d(2**31), r"MaxPool2d: kernel_size must be <= 2147483647, got 2147483648"),
], ids=["conv-stride", "conv-padding", "maxpool-kernel"])
def test_sizes_beyond_max_int_are_refused_at_construction(call, message):
    """Without the bound these pass construction and fail at forward, inside numpy ("Maximum allowed dimension
    exceeded", a 768 GiB allocation for the padding)."""
    with pytest.raises(ValueError, match=message):
        call()


REALS = [
    (3, 3.0), (0.25, 0.25), (np.float32(1e-5), float(np.float32(1e-5))), (np.float64(0.5), 0.5),
    (np.int64(2), 2.0), (np.uint8(2), 2.0), (np.asarray(0.9), 0.9), (np.asarray(np.float32(2.5)), 2.5),
    (Fraction(1, 4), 0.25),
]


@pytest.mark.parametrize("value,expected", REALS, ids=[f"{type(v).__name__}-{v}" for v, _ in REALS])
def test_check_real_accepts_python_and_numpy_real_scalars(value, expected):
    got = validation.check_real(value, "W", "x")
    assert type(got) is float and got == expected


NOT_REALS = [True, np.True_, "1.0", None, 1j, np.complex128(1), [1.0], (1.0,), np.zeros(2), np.zeros((1, 1)),
             np.asarray(True), np.asarray(1j), np.asarray("a"), Decimal("0.1")]


@pytest.mark.parametrize("value", NOT_REALS, ids=[f"{type(v).__name__}-{v!r}" for v in NOT_REALS])
def test_check_real_refuses_other_types_with_type_error(value):
    with pytest.raises(TypeError, match=rf"W: x must be a real number, got .* \({type(value).__name__}\)$"):
        validation.check_real(value, "W", "x")


BAD_REALS = [
    # (id, value, bounds, message)
    ("nan", float("nan"), {}, r"W: x must be a finite number, got nan \(float\)"),
    ("nan-not-finite", np.float32("nan"), {"finite": False},
     r"W: x must be a number \(not nan\), got np.float32\(nan\) \(float32\)"),
    ("inf", float("inf"), {}, r"W: x must be a finite number, got inf \(float\)"),
    ("minus-inf", -np.inf, {"minimum": 0}, r"W: x must be a finite number >= 0, got -inf \(float\)"),
    ("huge-int", 10**400, {}, r"W: x must be a finite number, got 1000"),
    ("negative", -1, {"minimum": 0}, r"W: x must be a finite number >= 0, got -1 \(int\)"),
    ("zero-exclusive", 0.0, {"minimum": 0, "min_inclusive": False},
     r"W: x must be a finite number > 0, got 0.0 \(float\)"),
    ("one-exclusive", 1.0, {"minimum": 0, "maximum": 1, "max_inclusive": False},
     r"must be a finite number in \[0, 1\), got 1.0"),
    ("below-open", -0.5, {"minimum": 0, "maximum": 1, "min_inclusive": False},
     r"must be a finite number in \(0, 1\], got -0.5"),
    ("above", np.float64(2), {"maximum": 1}, r"W: x must be a finite number <= 1, got np.float64\(2.0\) \(float64\)"),
    ("minus-inf-not-finite", -np.inf, {"minimum": 0, "finite": False},
     r"W: x must be a number \(not nan\) >= 0, got -inf"),
]


@pytest.mark.parametrize("value,bounds,message", [b[1:] for b in BAD_REALS], ids=[b[0] for b in BAD_REALS])
def test_check_real_refuses_nan_inf_and_out_of_bounds_with_value_error(value, bounds, message):
    with pytest.raises(ValueError, match=message):
        validation.check_real(value, "W", "x", **bounds)


def test_check_real_bounds_and_infinity_when_allowed():
    assert validation.check_real(0, "W", "x", minimum=0) == 0.0
    assert validation.check_real(1, "W", "x", maximum=1) == 1.0
    assert validation.check_real(np.inf, "W", "x", minimum=0, finite=False) == np.inf
    assert validation.check_real(-(10**400), "W", "x", finite=False) == -np.inf  # too large for a float: -inf


BETAS = {"minimum": 0, "maximum": 1, "max_inclusive": False}


@pytest.mark.parametrize("value", [(0.9, 0.999), [0.9, 0.999], np.array([0.9, 0.999]),
                                   (np.float32(0.9), np.asarray(0.999))], ids=["tuple", "list", "array", "numpy"])
def test_check_real_pair_returns_two_floats(value):
    got = validation.check_real_pair(value, "Adam", "betas", **BETAS)
    assert type(got) is tuple and [type(v) for v in got] == [float, float]
    assert got == (float(np.float32(0.9)) if isinstance(value[0], np.float32) else 0.9, 0.999)


BAD_PAIRS = [
    (0.9, TypeError, r"Adam: betas must be a pair of real numbers, got 0.9 \(float\)"),
    (None, TypeError, r"got None \(NoneType\)"),
    ("ab", TypeError, r"got 'ab' \(str\)"),
    ((0.9,), ValueError, r"Adam: betas must be a pair of real numbers, got \(0.9,\) \(tuple\)"),
    ((0.9, 0.99, 0.999), ValueError, r"got \(0.9, 0.99, 0.999\) \(tuple\)"),
    (np.zeros((2, 2)), ValueError, r"betas must be a pair of real numbers"),
    ((1.0, 0.5), ValueError, r"Adam: betas\[0\] must be a finite number in \[0, 1\), got 1.0 \(float\)"),
    ((0.5, float("nan")), ValueError, r"Adam: betas\[1\] must be a finite number in \[0, 1\), got nan"),
    (("0.9", 0.5), TypeError, r"Adam: betas\[0\] must be a real number, got '0.9' \(str\)"),
    ((0.9, None), TypeError, r"Adam: betas\[1\] must be a real number, got None"),
    ((0.9, True), TypeError, r"Adam: betas\[1\] must be a real number, got True \(bool\)"),
]


@pytest.mark.parametrize("value,exc,message", BAD_PAIRS, ids=[f"{type(v).__name__}-{i}" for i, (v, _, _) in
                                                              enumerate(BAD_PAIRS)])
def test_check_real_pair_errors_name_the_element(value, exc, message):
    with pytest.raises(exc, match=message):
        validation.check_real_pair(value, "Adam", "betas", **BETAS)


PARAMS = {"0.weight": np.zeros((2, 3)), "0.bias": np.zeros(3, dtype=np.float32)}


def test_check_gradients_returns_the_arrays_in_parameter_order():
    g_w, g_b = np.ones((2, 3), dtype=np.float32), np.ones(3)
    got = validation.check_gradients({"0.bias": g_b, "extra": None, "0.weight": g_w}, PARAMS, "SGD.step")
    assert got[0] is g_w and got[1] is g_b  # arrays pass through; an entry that is not a parameter is ignored
    listed = validation.check_gradients({"0.weight": [[1.0] * 3] * 2, "0.bias": (0.5, 0.5, 0.5)}, PARAMS, "W")
    assert [a.shape for a in listed] == [(2, 3), (3,)] and listed[1].dtype == np.float64


BAD_GRADS = [
    ("list", [np.ones((2, 3)), np.ones(3)], TypeError, r"SGD.step: grads must be a mapping name -> array, got list"),
    ("none-mapping", None, TypeError, r"grads must be a mapping name -> array, got NoneType"),
    ("missing", {"0.weight": np.ones((2, 3))}, KeyError,
     r"SGD.step: grads has no entry '0.bias' \(params keys: \['0.weight', '0.bias'\]\)"),
    ("none", {"0.weight": None, "0.bias": np.ones(3)}, TypeError,
     r"SGD.step: grads\['0.weight'\] must be a float32 or float64 array of shape \(2, 3\), got None \(NoneType\)"),
    ("str", {"0.weight": "0", "0.bias": np.ones(3)}, TypeError, r"grads\['0.weight'\] must be a float32 .* got '0'"),
    ("list-shape", {"0.weight": np.ones((2, 3)), "0.bias": [1.0, 2.0]}, ValueError,
     r"SGD.step: grads\['0.bias'\] must have shape \(3,\), got shape \(2,\)"),
    ("array-shape", {"0.weight": np.ones((3, 2)), "0.bias": np.ones(3)}, ValueError,
     r"grads\['0.weight'\] must have shape \(2, 3\), got shape \(3, 2\)"),
    ("ragged", {"0.weight": [[1.0, 2.0], [1.0]], "0.bias": np.ones(3)}, TypeError,
     r"grads\['0.weight'\] must be a float32 or float64 array of shape \(2, 3\), got list \("),
    ("int", {"0.weight": np.ones((2, 3), dtype=int), "0.bias": np.ones(3)}, TypeError,
     r"grads\['0.weight'\] must be a float32 or float64 array of shape \(2, 3\), got dtype int64 \(ndarray\)"),
    ("int-list", {"0.weight": np.ones((2, 3)), "0.bias": [1, 2, 3]}, TypeError, r"grads\['0.bias'\].*int64 \(list\)"),
    ("complex", {"0.weight": np.ones((2, 3), dtype=complex), "0.bias": np.ones(3)}, TypeError, r"complex128"),
    ("float16", {"0.weight": np.ones((2, 3)), "0.bias": np.ones(3, dtype=np.float16)}, TypeError, r"float16"),
    ("scalar", {"0.weight": np.ones((2, 3)), "0.bias": 1.0}, ValueError,
     r"grads\['0.bias'\] must have shape \(3,\), got shape \(\)"),
]


@pytest.mark.parametrize("grads,exc,message", [b[1:] for b in BAD_GRADS], ids=[b[0] for b in BAD_GRADS])
def test_check_gradients_errors_name_the_entry(grads, exc, message):
    with pytest.raises(exc, match=message):
        validation.check_gradients(grads, PARAMS, "SGD.step")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_finite_finds_any_infinity_or_nan_and_reads_an_overflow_as_not_finite(dtype):
    a = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(dtype)
    assert all_finite(a) and all_finite(a[:, ::2].transpose(2, 0, 1)) and all_finite(a[:0])
    for value in (np.inf, -np.inf, np.nan):
        b = a.copy()
        b[2, 3, 4] = value
        assert not all_finite(b) and not all_finite(b[:, ::-1])
    big = np.full(4, np.finfo(dtype).max / 2, dtype=dtype)  # finite, but its squares overflow: the exact path
    assert np.isfinite(big).all() and not all_finite(big)
