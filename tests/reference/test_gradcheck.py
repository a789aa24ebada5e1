"""gradient_errors in its three modes: the same verdicts, and the directional one in a fraction of the time."""

import time

import numpy as np
import pytest

import reference as ref
from reference.gradcheck import gradient_errors


def _conv(impl="im2col"):
    return ref.Conv2d(3, 4, 3, padding=1, impl=impl, rng=0)


@pytest.mark.parametrize("mode", ["full", "directional", "sampled"])
def test_modes_agree_on_a_right_gradient(mode):
    rng = np.random.default_rng(0)
    layer, x = _conv(), rng.standard_normal((2, 3, 5, 5))
    dout = rng.standard_normal(layer.forward(x).shape)
    errs = gradient_errors(layer, x, dout, mode=mode)
    assert set(errs) == {"x", "weight", "bias"} and max(errs.values()) < 1e-8, errs


class _WrongBias(ref.Conv2d):
    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["bias"] = self.grads["bias"] * 1.01
        return dx


@pytest.mark.parametrize("mode", ["full", "directional", "sampled"])
def test_modes_catch_a_wrong_gradient(mode):
    rng = np.random.default_rng(1)
    layer, x = _WrongBias(3, 4, 3, rng=0), rng.standard_normal((2, 3, 5, 5))
    dout = rng.standard_normal(layer.forward(x).shape)
    errs = gradient_errors(layer, x, dout, mode=mode)
    assert errs["bias"] > 1e-4 and errs["x"] < 1e-8


def test_directional_is_fast_on_a_loop_conv():
    rng = np.random.default_rng(2)
    layer, x = _conv("loop"), rng.standard_normal((2, 3, 16, 16))
    dout = rng.standard_normal(layer.forward(x).shape)
    start = time.process_time()
    errs = gradient_errors(layer, x, dout, mode="directional")
    assert time.process_time() - start < 5.0 and max(errs.values()) < 1e-8


def test_unknown_mode():
    with pytest.raises(ValueError, match="mode must be one of"):
        gradient_errors(_conv(), np.zeros((1, 3, 4, 4)), np.zeros((1, 4, 4, 4)), mode="fast")
