"""PyTorch's cross-entropy options and binary cross-entropies as Keras losses (see :mod:`comparisons.frameworks.keras3`
for the mapping)."""

from __future__ import annotations

import keras
import numpy as np

KERAS_REDUCTION = {"mean": "sum_over_batch_size", "sum": "sum", "none": "none"}


def cross_entropy_reason(option) -> str | None:
    """Why Keras cannot compute the cross-entropy ``option``, or None."""
    if option.weight and (option.label_smoothing or option.target == "prob"):
        return ("no Keras equivalent of class weights with label smoothing or probability targets: Keras weights "
                "whole samples (sample_weight), PyTorch weights classes inside the smoothed / probability target")
    return None


def keras_cross_entropy(option, target: np.ndarray, weight: np.ndarray | None, dtype: str):
    """``(loss object, y_true, sample_weight)`` computing the cross-entropy ``option``
    (:class:`~comparisons.cases_options.CrossEntropyOption`) in Keras on class-last logits. ``target``:
    class indices ``(N, d1, ...)`` or probabilities ``(N, C, d1, ...)`` in the reference layout. Raises
    ValueError with :func:`cross_entropy_reason` when Keras has no equivalent."""
    reason = cross_entropy_reason(option)
    if reason is not None:
        raise ValueError(f"keras_cross_entropy: {reason}")
    weighted = "mean_with_sample_weight" if option.reduction == "mean" else option.reduction
    if option.target == "prob":
        loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=option.label_smoothing,
                                                    reduction=KERAS_REDUCTION[option.reduction], dtype=dtype)
        return loss, np.moveaxis(target, 1, -1), None
    counted = target != (-100 if option.ignore is None else option.ignore)
    if option.label_smoothing:
        n_classes = option.scores_shape[1]
        onehot = np.eye(n_classes, dtype=dtype)[np.where(counted, target, 0)] * counted[..., None]
        loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=option.label_smoothing,
                                                    reduction=weighted, dtype=dtype)
        return loss, onehot, counted.astype(dtype)
    if weight is None:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=option.ignore,
                                                          reduction=KERAS_REDUCTION[option.reduction], dtype=dtype)
        return loss, target, None
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=option.ignore,
                                                      reduction=weighted, dtype=dtype)
    return loss, target, np.where(counted, weight[np.where(counted, target, 0)], 0).astype(dtype)


def binary_cross_entropy_reason(pos_weight) -> str | None:
    """Why Keras cannot compute a binary cross-entropy with this ``pos_weight`` (an array, or None for none), or
    None."""
    if pos_weight is not None:
        return ("Keras' BinaryCrossentropy has no pos_weight (a weight on the positive term only): sample_weight "
                "scales both terms")
    return None


def keras_binary_cross_entropy(target: np.ndarray, weight: np.ndarray | None = None, reduction: str = "mean", *,
                               from_logits: bool, dtype: str):
    """``(loss object, y_true, sample_weight)``: Keras' ``BinaryCrossentropy(from_logits=...)`` computing PyTorch's
    elementwise binary cross-entropy of inputs shaped like ``target`` (any shape, the reference's layout), called
    as ``loss(y_true, keras.ops.expand_dims(inputs, -1), sample_weight=sample_weight)``.

    Keras averages each sample's loss over its last axis before reducing; a trailing axis of length 1 on the
    inputs and targets makes that mean the identity, so ``"none"`` is PyTorch's elementwise loss and ``"sum"`` its
    sum. The weights (``weight`` broadcastable to ``target``) are ``sample_weight`` of the elementwise loss's shape,
    and the weighted mean (``"sum_over_batch_size"``) divides by the element count, as PyTorch's."""
    loss_fn = keras.losses.BinaryCrossentropy(from_logits=from_logits, reduction=KERAS_REDUCTION[reduction],
                                              dtype=dtype)
    y_true = np.asarray(target, dtype)[..., None]
    sample_weight = None if weight is None else np.broadcast_to(np.asarray(weight, dtype), target.shape).copy()
    return loss_fn, y_true, sample_weight


def binary_cross_entropy(inputs: np.ndarray, target: np.ndarray, weight: np.ndarray | None = None,
                         reduction: str = "mean", dloss=None, *, from_logits: bool = False):
    """``(loss, dinputs)`` of Keras' ``BinaryCrossentropy(from_logits=...)`` on ``inputs`` (probabilities, or logits
    when ``from_logits``) of any shape, with ``target`` of that shape and ``weight`` broadcastable to it: the
    reference's ``binary_cross_entropy(..., clip_epsilon=keras.config.epsilon())`` and
    ``binary_cross_entropy_with_logits`` (no ``pos_weight``: :func:`binary_cross_entropy_reason`), with the same
    ``reduction`` and upstream gradient ``dloss`` (an array of the loss's shape for ``"none"``; ones when None), in
    ``inputs``' dtype, through the backend's autodiff (the loss as :func:`keras_binary_cross_entropy` builds it)."""
    from .gradients import vjp

    dtype = str(inputs.dtype)
    loss_fn, y_true, sample_weight = keras_binary_cross_entropy(target, weight, reduction, from_logits=from_logits,
                                                                dtype=dtype)

    def forward(x):
        return loss_fn(y_true, keras.ops.expand_dims(x, -1), sample_weight=sample_weight), {}

    upstream = dloss if dloss is not None else np.ones(target.shape) if reduction == "none" else 1.0
    loss, _, dinputs, _ = vjp(forward, inputs, [], np.asarray(upstream, dtype))
    return loss, dinputs
