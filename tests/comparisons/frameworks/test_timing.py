"""The benchmark steps of the in-process frameworks (``pytorch/timing.py``, ``jaxflax/timing.py``): each builds the
benchmarked layer through its kind table, and computes the reference's gradients (the Keras steps:
``test_keras_timing.py``).

Checked where the framework's own initial weights do not enter: a pooling layer's input gradient, and the shapes
of a convolution's and a dense layer's. Each step draws ``dout`` as ``standard_normal`` from ``seed + 1`` in its
own layout (NCHW for PyTorch, NHWC for Flax), which the reference is given here.
"""

from __future__ import annotations

import numpy as np
import pytest

from comparisons.bench.measure import input_data, reference_layer
from comparisons.bench.shapes import LAYERS, Shape
from tests.frameworks import framework_or_skip

TINY = Shape("tiny", 2, 3, 6, 6, 4, padding=1)
SEED = 0
CHANNELS_LAST = {"torch": False, "jax": True}
NAMES = [pytest.param(name, marks=getattr(pytest.mark, name)) for name in CHANNELS_LAST]


def _reference_dx(layer: str, channels_last: bool) -> np.ndarray:
    """The reference's float64 input gradient for the step's input and ``dout``, in the step's layout."""
    model = reference_layer(layer, TINY, "im2col", "float64", SEED)
    out = model.forward(input_data(TINY, "float64", SEED).reshape(TINY.n, *TINY.sample_shape(layer)))
    drawn = out.shape if out.ndim == 2 or not channels_last else (out.shape[0], *out.shape[2:], out.shape[1])
    dout = np.random.default_rng(SEED + 1).standard_normal(drawn).astype("float32").astype("float64")
    dx = model.backward(dout.transpose(0, 3, 1, 2) if channels_last and dout.ndim == 4 else dout)
    return dx.transpose(0, 2, 3, 1) if channels_last and dx.ndim == 4 else dx


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("name", NAMES)
def test_each_step_computes_the_input_gradient_of_its_layer(name, layer):
    step = framework_or_skip(name).bench_step(layer, TINY, "float32", 1, SEED)
    out = step()
    dx = np.asarray(out[0] if isinstance(out, tuple) else out)
    expected = _reference_dx(layer, CHANNELS_LAST[name])
    assert dx.shape == expected.shape
    if layer in ("maxpool", "avgpool"):  # no weights: the same numbers, to float32 rounding of a sum of <= 4 terms
        np.testing.assert_allclose(dx, expected, rtol=0, atol=1e-6 * np.abs(expected).max())
