"""PyTorch's ``F.cross_entropy`` in JAX, by hand on ``jax.nn.log_softmax`` (optax's losses have no class
weights, ``ignore_index`` or PyTorch's weighted mean): scores ``(N, C, d1, ...)`` with classes on axis 1.

PyTorch's formulas, which the reference follows:

- class indices ``y``: ``nll = -w[y] * logp[y]`` (0 where ``y == ignore_index``); with label smoothing
  ``ls``, ``smooth = -sum_c w_c * logp_c`` (0 where ignored) and ``loss = (1 - ls) * nll + ls / C * smooth``;
  the mean divides each sum by ``sum(w[y])`` over the counted positions (their count without weights).
- probabilities ``t``: ``t * (1 - ls) + ls / C``, then ``-sum_c w_c * t_c * logp_c``; the mean divides by the
  number of positions ``N * d1 * ...``.

And PyTorch's binary cross-entropies, elementwise on any shape (optax's ``sigmoid_binary_cross_entropy`` has no
weights, no ``pos_weight`` and no clamp): on logits ``w * ((1 - t) x - (1 + (c - 1) t) log_sigmoid(x))``; on
probabilities ``-w * (t * max(log p, -100) + (1 - t) * max(log(1 - p), -100))`` with PyTorch's backward
``w * (p - t) / max(p (1 - p), 1e-12)`` (a ``jax.custom_vjp``: autodiff through the clamped logs would give 0
where the clamp holds and ``inf * 0`` at p = 0 and 1).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

LOG_CLAMP = -100.0  # PyTorch's lower bound on each log of binary_cross_entropy
GRAD_EPSILON = float(np.float32(1e-12))  # PyTorch's lower bound on p * (1 - p) in its backward (a float32 constant)


def cross_entropy(scores: jnp.ndarray, target: jnp.ndarray, weight: jnp.ndarray | None = None,
                  ignore_index: int = -100, reduction: str = "mean", label_smoothing: float = 0.0,
                  probabilities: bool = False) -> jnp.ndarray:
    """The loss of ``scores (N, C, d1, ...)`` against ``target``: class indices ``(N, d1, ...)`` or, with
    ``probabilities``, class probabilities shaped like ``scores``; ``reduction`` "mean", "sum" or "none"
    (a loss per position ``(N, d1, ...)``)."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    n_classes, ls = scores.shape[1], label_smoothing
    logp = jax.nn.log_softmax(scores, axis=1)
    w = None if weight is None else weight.reshape((1, n_classes) + (1,) * (scores.ndim - 2))
    if probabilities:
        t = target * (1 - ls) + ls / n_classes if ls else target
        per = -(logp * t * w).sum(axis=1) if w is not None else -(logp * t).sum(axis=1)
        if reduction == "none":
            return per
        return per.sum() / per.size if reduction == "mean" else per.sum()
    counted = target != ignore_index
    safe = jnp.where(counted, target, 0)
    picked = jnp.take_along_axis(logp, safe[:, None], axis=1)[:, 0]
    wy = counted.astype(scores.dtype) if weight is None else jnp.where(counted, weight[safe], 0)
    nll = -picked * wy
    smooth = None
    if ls:
        smooth = -(logp * w).sum(axis=1) if w is not None else -logp.sum(axis=1)
        smooth = jnp.where(counted, smooth, 0)
    if reduction == "none":
        return nll if smooth is None else (1 - ls) * nll + ls / n_classes * smooth
    denominator = wy.sum() if reduction == "mean" else 1
    nll_r = nll.sum() / denominator if reduction == "mean" else nll.sum()
    if smooth is None:
        return nll_r
    smooth_r = smooth.sum() / denominator if reduction == "mean" else smooth.sum()
    return (1 - ls) * nll_r + ls / n_classes * smooth_r


def case_loss(option, scores: jnp.ndarray, target: jnp.ndarray, weight: jnp.ndarray | None) -> jnp.ndarray:
    """The cross-entropy of a case: ``option`` a :class:`~comparisons.cases_options.CrossEntropyOption`, or None
    for the plain mean over class indices."""
    if option is None:
        return cross_entropy(scores, target)
    return cross_entropy(scores, target, weight, ignore_index=-100 if option.ignore is None else option.ignore,
                         reduction=option.reduction, label_smoothing=option.label_smoothing,
                         probabilities=option.target == "prob")


def _reduce(loss: jnp.ndarray, reduction: str) -> jnp.ndarray:
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"binary cross-entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return loss if reduction == "none" else loss.sum() / loss.size if reduction == "mean" else loss.sum()


@jax.custom_vjp
def _bce_elementwise(p: jnp.ndarray, t: jnp.ndarray) -> jnp.ndarray:
    """``-(t * max(log p, -100) + (1 - t) * max(log(1 - p), -100))`` elementwise, with PyTorch's gradient in ``p``."""
    return -(t * jnp.maximum(jnp.log(p), LOG_CLAMP) + (1 - t) * jnp.maximum(jnp.log(1 - p), LOG_CLAMP))


def _bce_forward(p, t):
    return _bce_elementwise(p, t), (p, t)


def _bce_backward(saved, g):
    p, t = saved
    return g * (p - t) / jnp.maximum((1 - p) * p, jnp.asarray(GRAD_EPSILON, p.dtype)), None


_bce_elementwise.defvjp(_bce_forward, _bce_backward)


def binary_cross_entropy(probs: jnp.ndarray, target: jnp.ndarray, weight: jnp.ndarray | None = None,
                         reduction: str = "mean") -> jnp.ndarray:
    """PyTorch's ``F.binary_cross_entropy`` of probabilities ``probs`` against ``target`` (same shape), ``weight``
    broadcastable to them; a loss per element for ``"none"``."""
    loss = _bce_elementwise(probs, target)
    return _reduce(loss if weight is None else loss * weight, reduction)


def binary_cross_entropy_with_logits(scores: jnp.ndarray, target: jnp.ndarray, weight: jnp.ndarray | None = None,
                                     pos_weight: jnp.ndarray | None = None, reduction: str = "mean") -> jnp.ndarray:
    """PyTorch's ``F.binary_cross_entropy_with_logits`` of ``scores`` against ``target`` (same shape), ``weight`` and
    ``pos_weight`` broadcastable to them, through ``jax.nn.log_sigmoid`` (no overflow at any logit)."""
    log_sig = jax.nn.log_sigmoid(scores)
    coefficient = 1 if pos_weight is None else 1 + (pos_weight - 1) * target
    loss = (1 - target) * scores - coefficient * log_sig
    return _reduce(loss if weight is None else loss * weight, reduction)


def case_binary_loss(option, inputs: jnp.ndarray, target: jnp.ndarray, weight: jnp.ndarray | None,
                     pos_weight: jnp.ndarray | None) -> jnp.ndarray:
    """The binary cross-entropy of a case: ``option`` a :class:`~comparisons.cases_options.BinaryCrossEntropyOption`
    (``clip_epsilon`` is Keras', refused by :func:`..capability.unsupported`)."""
    if option.logits:
        return binary_cross_entropy_with_logits(inputs, target, weight, pos_weight, option.reduction)
    return binary_cross_entropy(inputs, target, weight, option.reduction)
