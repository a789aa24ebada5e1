"""Sequential: chaining, the parameter mappings, and the tutorial CNN's gradients."""

from __future__ import annotations

import numpy as np
import pytest

from comparisons.cases import build_reference, tutorial_cases, vgg_cases
from reference import (
    Conv2d,
    Linear,
    MaxPool2d,
    ReLU,
    Sequential,
    Sigmoid,
    max_rel_error,
    numerical_gradient,
    softmax_cross_entropy,
)


def tutorial_model(impl="im2col"):
    return Sequential([Conv2d(1, 8, 3, impl=impl, rng=0), ReLU(), MaxPool2d(2, impl=impl), Linear(1352, 10, rng=1)])


def test_forward_and_backward_chain_the_layers():
    rng = np.random.default_rng(0)
    model = tutorial_model()
    x = rng.uniform(0, 1, (1, 28, 28))
    h = x
    for layer in model.layers:
        h = layer.forward(h)
    assert np.array_equal(model.forward(x), h)
    d = rng.standard_normal(h.shape)
    g = d
    for layer in reversed(model.layers):
        g = layer.backward(g)
    assert np.array_equal(model.backward(d), g)


def test_parameter_mappings_are_live():
    model = tutorial_model()
    assert list(model.params) == ["0.weight", "0.bias", "3.weight", "3.bias"]
    assert model.params["0.weight"] is model.layers[0].params["weight"]
    model.params["3.bias"][:] = 1.0  # in place reaches the layer
    assert (model.layers[3].params["bias"] == 1.0).all()
    new = np.zeros((1352, 10))
    model.params["3.weight"] = new  # assignment writes through
    assert model.layers[3].params["weight"] is new
    with pytest.raises(KeyError):
        model.params["1.weight"] = new  # ReLU has no parameters
    model.forward(np.zeros((1, 28, 28)))
    model.backward(np.ones((1, 10)))
    assert set(model.grads) == set(model.params)


@pytest.mark.parametrize("impl", ["loop", "im2col"])
def test_tutorial_cnn_gradients_with_loss(impl):
    """The whole tutorial CNN with its loss against central differences, on a small random subset of
    coordinates of every parameter (all 13,610 would take minutes with the loop)."""
    case = tutorial_cases()[1]
    model = build_reference(case, impl, np.float64)
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 1, case.input_shape)
    y = rng.integers(0, 10, case.input_shape[0])

    def loss():
        return np.array(softmax_cross_entropy(model.forward(x), y)[0])

    _, dscores = softmax_cross_entropy(model.forward(x), y)
    model.backward(dscores)
    for key in model.params:
        p = model.params[key]
        idx = tuple(rng.integers(0, n, 6) for n in p.shape)
        analytic = model.grads[key][idx]
        numeric = np.empty(6)
        for k in range(6):
            coord = tuple(i[k] for i in idx)
            old = p[coord]
            p[coord] = old + 1e-5
            plus = loss()
            p[coord] = old - 1e-5
            minus = loss()
            p[coord] = old
            numeric[k] = (plus - minus) / 2e-5
        # 1e-6, not 1e-8: six sampled entries may all be small (the normwise scale is theirs, not the
        # whole gradient's), against a rounding floor of eps * loss / h ~ 5e-11 absolute.
        assert max_rel_error(analytic, numeric) < 1e-6, key


def test_numerical_gradient_of_a_known_function():
    x = np.array([1.0, -2.0, 3.0])
    g = numerical_gradient(lambda: x**3, x, np.array([1.0, 2.0, 3.0]))
    assert max_rel_error(g, 3 * np.array([1.0, 4.0, 9.0]) * np.array([1.0, 2.0, 3.0])) < 1e-9


def test_train_and_eval_reach_every_layer():
    model = build_reference(vgg_cases()[0], "im2col", np.float64)
    assert all(layer.training for layer in model.layers)
    model.eval()
    assert not any(layer.training for layer in model.layers) and not model.training
    assert build_reference(vgg_cases()[1], "im2col", np.float64).layers[1].training is False  # the "eval" tag


@pytest.mark.parametrize("case", vgg_cases(), ids=lambda c: c.id)
def test_vgg_loop_equals_im2col_with_buffers(case):
    """Same seed, same parameters, same dropout masks: both implementations agree, running statistics included."""
    loop, fast = (build_reference(case, impl, np.float64) for impl in ("loop", "im2col"))
    rng = np.random.default_rng(6)
    x = rng.standard_normal(case.input_shape)
    out = loop.forward(x)
    assert max_rel_error(fast.forward(x), out) < 1e-13
    dout = rng.standard_normal(out.shape)
    assert max_rel_error(fast.backward(dout), loop.backward(dout)) < 1e-13
    for key in loop.grads:
        assert max_rel_error(fast.grads[key], loop.grads[key]) < 1e-13, key
    assert set(loop.buffers) == {"1.running_mean", "1.running_var", "5.running_mean", "5.running_var"}
    for key in loop.buffers:
        assert max_rel_error(fast.buffers[key], loop.buffers[key]) < 1e-13, key


def test_the_same_layer_twice_is_refused():
    lin, relu = Linear(4, 4, rng=0), ReLU()
    with pytest.raises(ValueError, match=r"layers\[2\] is the same Linear instance as layers\[0\]"):
        Sequential([lin, relu, lin, ReLU()])
    with pytest.raises(ValueError, match=r"layers\[1\]\[0\] is the same ReLU instance as layers\[0\]"):
        Sequential([relu, Sequential([relu])])


def test_a_layer_shared_by_two_models_and_run_in_between_is_caught_at_backward():
    """Model a's forward, model b's forward through the shared layer, then a's backward: the shared layer's
    cache is b's, so a's gradients would be wrong; a's backward raises instead."""
    shared = Linear(4, 3, rng=0)
    a, b = Sequential([shared, ReLU()]), Sequential([shared, Sigmoid()])
    rng = np.random.default_rng(0)
    out = a.forward(rng.standard_normal((2, 4)))
    b.forward(rng.standard_normal((2, 4)))
    with pytest.raises(RuntimeError, match=r"layer 0 \(Linear\) ran another forward since this model's forward"):
        a.backward(np.ones_like(out))
    a.forward(rng.standard_normal((2, 4)))  # a fresh forward makes the backward valid again
    a.backward(np.ones_like(out))


def test_layers_changed_after_forward_are_caught_at_backward():
    model = Sequential([Linear(4, 3, rng=0), ReLU()])
    out = model.forward(np.ones((2, 4)))
    model.layers.append(ReLU())
    with pytest.raises(RuntimeError, match="layers list changed since forward"):
        model.backward(np.ones_like(out))
