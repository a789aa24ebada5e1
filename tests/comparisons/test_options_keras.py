"""Cross-entropy options and adaptive/global pooling against their Keras 3 equivalents.

Keras is channels-last: the class axis (``axis=1`` in the reference) moves last for the losses
(Keras' TensorFlow backend supports only ``axis=-1`` for the sparse loss), images go through
``layouts.nchw_to_nhwc``. Tolerance as in ``test_options_torch``: ``harness.tolerance(dtype, K)``.

How the options map (``keras_loss``):
- class indices, no smoothing: ``SparseCategoricalCrossentropy(from_logits=True, ignore_class=...)``;
  its mean (``"sum_over_batch_size"``) divides by the non-ignored count, as PyTorch's. Class
  weights: ``sample_weight = weight[target]`` with ``reduction="mean_with_sample_weight"``
  (divides by the summed sample weights, as PyTorch's weighted mean).
- class indices with smoothing: one-hot targets and ``CategoricalCrossentropy(label_smoothing=ls)``
  (the sparse loss has no ``label_smoothing``); ignored positions get ``sample_weight`` 0 and the
  mean ``"mean_with_sample_weight"``. Keras smooths ``y * (1 - ls) + ls / C``, PyTorch's formula.
- no equivalent: class weights together with label smoothing (Keras weights a whole sample;
  PyTorch weights each class inside the smoothing sum) and class weights with probability targets.
"""

from __future__ import annotations

import numpy as np
import pytest

from comparisons import harness, layouts
from comparisons.cases_options import CROSS_ENTROPY_OPTIONS, POOL_OPTIONS, ce_arrays
from reference import adaptive, max_rel_error, softmax_cross_entropy

pytestmark = pytest.mark.keras
DTYPES = ["float64", "float32"]
KERAS_MEAN = {"mean": "sum_over_batch_size", "sum": "sum", "none": "none"}


def keras_loss(opt, target, weight, dtype):
    """``(loss object, y_true, sample_weight)`` computing ``opt`` in Keras, or a skip reason (str)."""
    import keras

    if weight is not None and (opt.label_smoothing or opt.target == "prob"):
        return ("no Keras equivalent: Keras weights whole samples (sample_weight), PyTorch weights classes "
                "inside the smoothed / probability target")
    if opt.target == "prob":
        loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=opt.label_smoothing,
                                                    reduction=KERAS_MEAN[opt.reduction], dtype=dtype)
        return loss, np.moveaxis(target, 1, -1), None
    counted = target != (-100 if opt.ignore is None else opt.ignore)
    if opt.label_smoothing:
        n_classes = opt.scores_shape[1]
        onehot = np.eye(n_classes, dtype=dtype)[np.where(counted, target, 0)] * counted[..., None]
        reduction = "mean_with_sample_weight" if opt.reduction == "mean" else opt.reduction
        loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=opt.label_smoothing,
                                                    reduction=reduction, dtype=dtype)
        return loss, onehot, counted.astype(dtype)
    if weight is None:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=opt.ignore,
                                                          reduction=KERAS_MEAN[opt.reduction], dtype=dtype)
        return loss, target, None
    reduction = "mean_with_sample_weight" if opt.reduction == "mean" else opt.reduction
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=opt.ignore,
                                                      reduction=reduction, dtype=dtype)
    return loss, target, np.where(counted, weight[np.where(counted, target, 0)], 0).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opt", CROSS_ENTROPY_OPTIONS, ids=[o.id for o in CROSS_ENTROPY_OPTIONS])
def test_cross_entropy_matches_keras(opt, dtype, keras_adapter):
    import tensorflow as tf

    scores, target, weight, dloss = ce_arrays(opt, dtype)
    mapped = keras_loss(opt, target, weight, dtype)
    if isinstance(mapped, str):
        pytest.skip(mapped)
    loss_fn, y_true, sample_weight = mapped
    z = tf.Variable(np.moveaxis(scores, 1, -1))
    with tf.GradientTape() as tape:
        k_loss = loss_fn(y_true, z, sample_weight=sample_weight)
    k_dscores = np.moveaxis(tape.gradient(k_loss, z, output_gradients=tf.constant(dloss, dtype=dtype)).numpy(), -1, 1)
    loss, dscores = softmax_cross_entropy(scores, target, **opt.kwargs(weight), dloss=dloss)
    tol = harness.tolerance(dtype, scores.shape[1] + target.size)
    assert max_rel_error(np.asarray(loss), k_loss.numpy()) <= tol, f"loss {loss} vs keras {k_loss.numpy()}"
    assert max_rel_error(dscores, k_dscores) <= tol


KERAS_POOLS = {"AdaptiveAvgPool2d": "AdaptiveAveragePooling2D", "AdaptiveMaxPool2d": "AdaptiveMaxPooling2D",
               "GlobalMaxPool2d": "GlobalMaxPooling2D"}
# Keras' max gradients send a tie to other cells than the reference's first maximum (PyTorch's rule)
# Keras 3.15 / TF 2.21: AdaptiveMaxPooling2D(1) returns the right maximum but a gradient of uninitialised
# values (seen: 4.7e257, nan) on a 7x5 input. Its separable implementation also max-pools with a "big"
# window of size + 1 > size there (an empty VALID pool), the likely cause. Not strict: garbage may be right.
KERAS_BUG = pytest.mark.xfail(reason="Keras AdaptiveMaxPooling2D(1) gradient holds uninitialised values", strict=False)
POOL_CASES = [pytest.param(o, id=o.id, marks=KERAS_BUG if o.id == "adaptivemax-7x5-to-1-global" else ())
              for o in POOL_OPTIONS if not o.ties]


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


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opt", POOL_CASES)
def test_pool_matches_keras(opt, dtype, keras_adapter):
    x = opt.input(dtype)
    layer = getattr(adaptive, opt.layer)(**{k: v for k, v in opt.kwargs.items() if k != "return_indices"})
    out = layer.forward(x)
    dout = np.random.default_rng(opt.seed + 100).standard_normal(out.shape).astype(dtype)
    dx = layer.backward(dout)
    k_out, k_dx = keras_pool(opt, x, dout, dtype)
    tol = harness.tolerance(dtype, x.shape[-2] * x.shape[-1])
    assert max_rel_error(out, k_out) <= tol
    assert max_rel_error(dx, k_dx) <= tol


@pytest.mark.parametrize("opt", [o for o in POOL_OPTIONS if o.ties and o.layer != "AdaptiveAvgPool2d"],
                         ids=[o.id for o in POOL_OPTIONS if o.ties and o.layer != "AdaptiveAvgPool2d"])
def test_keras_routes_tied_max_gradient_to_other_cells(opt, keras_adapter):
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
