"""Binary cross-entropy on probabilities and on logits, as ``torch.nn.functional.binary_cross_entropy`` and
``binary_cross_entropy_with_logits``; each returns ``(loss, dinput)`` like ``softmax_cross_entropy``.

Shapes: ``probs``/``scores`` any shape, ``target`` the same shape (probabilities in ``[0, 1]``, 0 and 1
included), ``weight`` (and ``pos_weight``) broadcastable to it. Per element, with ``w`` the weight:

- on probabilities ``p``: ``loss = -w * (t * max(log p, -100) + (1 - t) * max(log(1 - p), -100))``
  (PyTorch clamps each log at -100, so ``p`` = 0 or 1 gives a finite loss), and
  ``dloss/dp = w * (p - t) / max(p * (1 - p), 1e-12)`` (PyTorch's backward, finite at 0 and 1; its 1e-12 is a
  float32 constant, 9.99999996e-13, in every dtype);
  ``clip_epsilon=e`` is Keras' ``BinaryCrossentropy`` instead: ``p`` clipped to ``[e, 1 - e]`` (Keras'
  ``keras.config.epsilon()`` is 1e-7), no clamp of the logs, and ``dloss/dp = 0`` where the clip is active
  (outside ``[e, 1 - e]``).
- on logits ``x`` with ``pos_weight`` ``c`` (default 1): ``loss = w * ((1 - t) * x - (1 + (c - 1) * t) *
  log_sigmoid(x))``, ``dloss/dx = w * ((1 + (c - 1) * t) * sigmoid(x) - c * t)`` (PyTorch's arrangement:
  ``(c t + 1 - t) sigmoid(x) - c t``, or ``sigmoid(x) - t`` without ``pos_weight``).

``reduction``: ``"mean"`` (over every element), ``"sum"`` or ``"none"``; ``dloss`` is the upstream gradient
(a scalar for mean and sum, an array of the loss's shape for none), as in ``softmax_cross_entropy``.
"""

from __future__ import annotations

import numpy as np

from .losses import REDUCTIONS, _upstream
from .validation import as_float_array, canonical, check_choice, check_real

LOG_CLAMP = -100.0  # PyTorch's lower bound on each log of binary_cross_entropy
GRAD_EPSILON = float(np.float32(1e-12))  # PyTorch's lower bound on p * (1 - p) in its backward: a float32 constant


def _operand(value, shape, dtype, where: str, name: str) -> np.ndarray:
    """``value`` as a float array of ``dtype`` broadcastable to ``shape``; TypeError/ValueError naming ``name``."""
    arr = canonical(as_float_array(value, where, name))
    try:
        np.broadcast_shapes(arr.shape, shape)
    except ValueError:
        raise ValueError(f"{where}: {name} of shape {arr.shape} does not broadcast to the input's shape "
                         f"{shape}") from None
    if np.broadcast_shapes(arr.shape, shape) != tuple(shape):
        raise ValueError(f"{where}: {name} of shape {arr.shape} would broadcast the input's shape {shape} to "
                         f"{np.broadcast_shapes(arr.shape, shape)}")
    return arr.astype(dtype, copy=False)


def _target(target, x: np.ndarray, where: str) -> np.ndarray:
    """``target`` of ``x``'s shape, floating, every value in ``[0, 1]``."""
    t = canonical(as_float_array(target, where, "target"))
    if t.shape != x.shape:
        raise ValueError(f"{where}: target must have the input's shape {x.shape}, got shape {t.shape}")
    if t.size and not (np.all(t >= 0) and np.all(t <= 1)):
        bad = t[~((t >= 0) & (t <= 1))][0]
        raise ValueError(f"{where}: target must hold probabilities in [0, 1], got {bad}")
    return t.astype(x.dtype, copy=False)


def _finish(loss: np.ndarray, grad: np.ndarray, reduction: str, dloss, where: str):
    """Reduce the elementwise ``loss`` and scale its elementwise gradient ``grad`` by the upstream gradient."""
    upstream = _upstream(dloss, reduction, loss.shape, loss.dtype, where)
    if reduction == "none":
        return loss, grad * upstream
    if reduction == "sum":
        return float(loss.sum()), grad * upstream
    count = loss.size
    if count == 0:
        return float("nan"), grad
    return float(loss.sum() / count), grad * (upstream / count)


def binary_cross_entropy(probs, target, weight=None, reduction: str = "mean", dloss=None, *,
                         clip_epsilon: float | None = None):
    """Binary cross-entropy of probabilities ``probs`` (each in ``[0, 1]``) against ``target``; returns
    ``(loss, dprobs)``: ``loss`` a float for mean and sum, an array shaped like ``probs`` for none. See the
    module docstring for the formulas and ``clip_epsilon`` (Keras' clipping, keyword-only)."""
    where = "binary_cross_entropy"
    p = canonical(as_float_array(probs, where, "probs"))
    if p.size and not (np.all(p >= 0) and np.all(p <= 1)):
        raise ValueError(f"{where}: probs must hold probabilities in [0, 1], got {p[~((p >= 0) & (p <= 1))][0]}")
    t = _target(target, p, where)
    check_choice(reduction, REDUCTIONS, where, "reduction")
    w = None if weight is None else _operand(weight, p.shape, p.dtype, where, "weight")
    if clip_epsilon is not None:
        eps = check_real(clip_epsilon, where, "clip_epsilon", minimum=0.0, maximum=0.5, min_inclusive=False,
                         max_inclusive=False)
        lo, hi = p.dtype.type(eps), p.dtype.type(1.0 - eps)
        q = np.clip(p, lo, hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            loss = -(t * np.log(q) + (1 - t) * np.log(1 - q))
            grad = np.where((p >= lo) & (p <= hi), (q - t) / (q * (1 - q)), 0).astype(p.dtype, copy=False)
    else:
        with np.errstate(divide="ignore"):
            loss = -(t * np.maximum(np.log(p), LOG_CLAMP) + (1 - t) * np.maximum(np.log(1 - p), LOG_CLAMP))
        grad = (p - t) / np.maximum((1 - p) * p, p.dtype.type(GRAD_EPSILON))
    if w is not None:
        loss, grad = loss * w, grad * w
    return _finish(loss, grad, reduction, dloss, where)


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    """``log(sigmoid(x))`` without overflow: ``min(x, 0) - log1p(exp(-|x|))``."""
    return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def binary_cross_entropy_with_logits(scores, target, weight=None, pos_weight=None, reduction: str = "mean",
                                     dloss=None):
    """Binary cross-entropy of ``sigmoid(scores)`` against ``target``, computed from the logits without overflow;
    returns ``(loss, dscores)``. ``pos_weight`` (broadcastable, e.g. one per class on the last axis) weighs the
    positive term. See the module docstring for the formulas. Keras: ``BinaryCrossentropy(from_logits=True)``
    (no ``pos_weight``)."""
    where = "binary_cross_entropy_with_logits"
    x = canonical(as_float_array(scores, where, "scores"))
    t = _target(target, x, where)
    check_choice(reduction, REDUCTIONS, where, "reduction")
    w = None if weight is None else _operand(weight, x.shape, x.dtype, where, "weight")
    c = None if pos_weight is None else _operand(pos_weight, x.shape, x.dtype, where, "pos_weight")
    logsig = log_sigmoid(x)
    if c is None:
        loss = (1 - t) * x - logsig
        grad = _sigmoid(x) - t
    else:
        ct = c * t
        loss = (1 - t) * x - logsig * ((c - 1) * t + 1)
        grad = (ct + 1 - t) * _sigmoid(x) - ct
    if w is not None:
        loss, grad = loss * w, grad * w
    return _finish(loss, grad, reduction, dloss, where)
