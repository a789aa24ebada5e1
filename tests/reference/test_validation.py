"""Bad input gets a clear exception naming the argument, the expected and the actual value."""

from __future__ import annotations

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
)

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
     r"layers\[1\] must be a Layer, got ndarray"),
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
