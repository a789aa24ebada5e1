"""Where Keras' max pools send a tied maximum's gradient (a porting difference the matrix cannot show).

Adaptive and global pooling and the cross-entropy options on random inputs are in the shared case
matrix (``test_keras``, ``cnnref verify``; the mapping of the loss options is
``keras_framework.keras_cross_entropy``), with the adapter's reasons for what it skips. Here they run on
inputs drawn from {0, 1}, where most windows hold tied maxima.
"""

from __future__ import annotations

import numpy as np
import pytest

from comparisons import layouts
from comparisons.cases_options import POOL_OPTIONS
from reference import adaptive

pytestmark = pytest.mark.keras


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
