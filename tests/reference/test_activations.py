"""LeakyReLU, Sigmoid, Tanh: values, gradients, saturation, errors."""

from __future__ import annotations

import numpy as np
import pytest

from reference import Hardsigmoid, LeakyReLU, ReLU, Sigmoid, Tanh, max_rel_error
from tests.reference.helpers import assert_gradients_match


def away_from_zero(rng: np.random.Generator, shape) -> np.ndarray:
    """Normal values pushed at least 0.05 from the kink at 0 (finite differences use h = 1e-5)."""
    x = rng.standard_normal(shape)
    return x + 0.05 * np.sign(x)


@pytest.mark.parametrize("layer", [LeakyReLU(), LeakyReLU(0.3), Sigmoid(), Tanh()], ids=repr)
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (3, 4, 5), (6,)], ids=["batch", "single", "vector"])
def test_gradients(layer, shape):
    rng = np.random.default_rng(0)
    assert_gradients_match(layer, away_from_zero(rng, shape), rng)


def test_leaky_relu_values_and_gradient_at_zero():
    layer = LeakyReLU(0.1)
    out = layer.forward(np.array([-2.0, 0.0, 3.0]))
    assert out.tolist() == [-2.0 * 0.1, 0.0, 3.0]
    assert layer.backward(np.ones(3)).tolist() == [0.1, 0.1, 1.0]  # slope at exactly 0, as PyTorch
    assert LeakyReLU().negative_slope == 0.01  # PyTorch's default, not Keras' 0.3


def test_sigmoid_is_the_logistic_function_and_does_not_overflow():
    x = np.linspace(-30, 30, 61)
    assert max_rel_error(Sigmoid().forward(x), 1 / (1 + np.exp(-x))) < 1e-15
    with np.errstate(over="raise"):
        out = Sigmoid().forward(np.array([-1e4, 1e4]))
    assert out.tolist() == [0.0, 1.0]


def test_tanh_and_float32():
    x = np.random.default_rng(1).standard_normal(10).astype(np.float32)
    for layer in (Tanh(), Sigmoid(), LeakyReLU()):
        out = layer.forward(x)
        assert out.dtype == np.float32 and layer.backward(np.ones_like(out)).dtype == np.float32
    assert max_rel_error(Tanh().forward(x), np.tanh(x)) == 0.0


@pytest.mark.parametrize("call,error,match", [
    (lambda: LeakyReLU("0.1"), TypeError, "LeakyReLU: negative_slope must be a real number, got '0.1'"),
    (lambda: LeakyReLU(float("inf")), ValueError, "negative_slope must be a finite number, got inf"),
    (lambda: Sigmoid().forward(np.arange(3)), TypeError, "Sigmoid.forward: x must have a real floating dtype"),
    (lambda: Tanh().backward(np.ones(3)), RuntimeError, "Tanh.backward called before forward"),
])
def test_bad_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_backward_checks_dout_shape():
    layer = Sigmoid()
    layer.forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"Sigmoid.backward: dout must have shape \(2, 3\), got shape \(3, 2\)"):
        layer.backward(np.zeros((3, 2)))


@pytest.mark.parametrize("make", [Sigmoid, Tanh, LeakyReLU], ids=lambda m: m.__name__)
def test_changing_the_output_in_place_keeps_the_gradient(make):
    """The returned array is the caller's: scaling it in place before backward must not change dx."""
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    dout = np.random.default_rng(1).standard_normal(x.shape)
    untouched = make()
    untouched.forward(x)
    layer = make()
    y = layer.forward(x)
    y *= 3
    np.testing.assert_array_equal(layer.backward(dout), untouched.backward(dout))


# -- GELU and Hardsigmoid -------------------------------------------------------------------------------------------
def test_gelu_and_hardsigmoid_gradients():
    from reference import GELU, Hardsigmoid
    from tests.reference.helpers import assert_gradients_match

    rng = np.random.default_rng(20)
    x = 3 * rng.standard_normal((2, 3, 4, 5))
    for layer in (GELU(), GELU("tanh")):
        assert_gradients_match(layer, x, rng)
    away = np.where(np.abs(np.abs(x) - 3) < 1e-3, 1.0, x)  # no input at the kinks +-3
    assert_gradients_match(Hardsigmoid(), away, rng)


def test_gelu_values():
    import math

    from reference import GELU

    x = np.array([-3.0, -0.5, 0.0, 0.7, 2.0])
    exact = np.array([v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x])
    assert np.max(np.abs(GELU().forward(x) - exact)) < 1e-15
    tanh = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    assert np.max(np.abs(GELU("tanh").forward(x) - tanh)) < 1e-15
    assert GELU().forward(x.astype(np.float32)).dtype == np.float32


def test_hardsigmoid_values_and_kinks():
    from reference import Hardsigmoid

    x = np.array([-4.0, -3.0, -1.5, 0.0, 3.0, 4.0])
    layer = Hardsigmoid()
    np.testing.assert_allclose(layer.forward(x), [0, 0, 0.25, 0.5, 1, 1], rtol=0, atol=1e-16)
    np.testing.assert_array_equal(layer.backward(np.ones(6)), [0, 0, 1 / 6, 1 / 6, 0, 0])
    torch_like = Hardsigmoid(float32_slope=True)
    torch_like.forward(x)
    assert torch_like.backward(np.ones(6))[2] == float(np.float32(1) / np.float32(6))


def test_gelu_and_hardsigmoid_bad_arguments():
    from reference import GELU, Hardsigmoid
    from tests.reference.helpers import assert_refused_by_name, is_bool

    assert_refused_by_name(GELU, {}, "approximate", lambda v: isinstance(v, str) and v in ("none", "tanh"))
    assert_refused_by_name(Hardsigmoid, {}, "float32_slope", is_bool)


@pytest.mark.parametrize("layer, x, dout, want", [
    (ReLU(), [-1.0, 0.0, 2.0, -3.0], [np.inf, np.nan, np.inf, -np.inf], [0.0, 0.0, np.inf, 0.0]),
    (Hardsigmoid(), [-4.0, 0.0, 3.0, 1.0], [np.inf, np.inf, np.nan, -np.inf], [0.0, np.inf, 0.0, -np.inf]),
], ids=["relu", "hardsigmoid"])
def test_an_infinite_or_nan_dout_where_the_slope_is_zero_gives_zero(layer, x, dout, want):
    """Outside its region the gradient is 0 whatever ``dout`` is (PyTorch's ``threshold_backward`` and
    ``hardsigmoid_backward`` select): ``dout * 0`` would be NaN for an infinite or NaN ``dout``."""
    layer.forward(np.array(x))
    np.testing.assert_array_equal(layer.backward(np.array(dout)), np.array(want))
