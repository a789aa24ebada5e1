"""Softmax cross-entropy on logits, with the options of ``torch.nn.functional.cross_entropy``.

Shapes: ``scores (N, C)`` or ``(N, C, d1, d2, ...)`` (classes on axis 1, as PyTorch), and
``target`` either class indices ``(N, d1, ...)`` of an integer dtype or class probabilities
of ``scores``' shape and a floating dtype. Every case is one formula: with ``logp =
log_softmax(scores, axis=1)`` and a per-class target mass ``q``,

    loss[n, ...] = -sum_c q[n, c, ...] * logp[n, c, ...]
    dloss / dscores = softmax(scores) * sum_c q - q

where ``q = weight[c] * ((1 - ls) * onehot(target) + ls / C)`` for class indices (0 at
positions whose target is ``ignore_index``) and ``q = weight[c] * ((1 - ls) * target +
ls / C)`` for probabilities (``ls`` is ``label_smoothing``).
"""

from __future__ import annotations

import numbers

import numpy as np

from .validation import as_float_array, check_choice

REDUCTIONS = ("mean", "sum", "none")


def log_softmax(scores: np.ndarray, axis: int = -1) -> np.ndarray:
    """``log(softmax(scores))`` along ``axis``, stable for logits of any magnitude."""
    shifted = scores - scores.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax_cross_entropy(
    scores: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    dloss: float | np.ndarray | None = None,
) -> tuple[float | np.ndarray, np.ndarray]:
    """Cross-entropy of ``softmax(scores)`` against ``target``, and its gradient w.r.t. ``scores``.

    ``torch.nn.functional.cross_entropy(scores, target, weight, ignore_index=ignore_index,
    reduction=reduction, label_smoothing=label_smoothing)``, computed in ``scores``' dtype:

    - ``scores (N, C)`` or ``(N, C, d1, ...)``: float logits, classes on axis 1.
    - ``target``: integer class indices ``(N, d1, ...)`` in ``[0, C)`` (or equal to
      ``ignore_index``: those positions add 0 and do not count in the mean), or float class
      probabilities shaped like ``scores`` (``ignore_index`` must stay -100 then).
    - ``weight (C,)``: per-class weights, or None for all ones.
    - ``reduction``: ``"mean"`` (class indices: divided by the summed weight
      ``sum(weight[target])`` of the non-ignored positions; probabilities: divided by the
      number of positions ``N * d1 * ...``), ``"sum"`` or ``"none"`` (loss ``(N, d1, ...)``).
    - ``label_smoothing`` in ``[0, 1]``: the target becomes ``(1 - ls) * target + ls / C``.
    - ``dloss``: the upstream gradient of the loss, so that ``dscores`` is the gradient of
      ``sum(loss * dloss)``: a scalar (default 1) for mean and sum, an array of the loss's
      shape ``(N, d1, ...)`` for ``"none"`` (default ones: the gradient of ``loss.sum()``).

    Returns ``(loss, dscores)``: ``loss`` a Python float for mean and sum, an array
    ``(N, d1, ...)`` for none; ``dscores`` shaped like ``scores``. When no position counts
    (all ignored, or N = 0) the mean is nan and its gradient 0, as in PyTorch.
    """
    where = "softmax_cross_entropy"
    scores = as_float_array(scores, where, "scores")
    if scores.ndim < 2:
        raise ValueError(f"{where}: scores must have at least 2 dims (N, C) or (N, C, d1, ...), got shape "
                         f"{scores.shape}")
    check_choice(reduction, REDUCTIONS, where, "reduction")
    smoothing = _label_smoothing(label_smoothing, where)
    n_classes = scores.shape[1]
    w = _class_weights(weight, scores, where)
    probabilities, counted = _check_target(target, scores, ignore_index, where)
    upstream = _upstream(dloss, reduction, scores.shape[:1] + scores.shape[2:], scores.dtype, where)

    logp = log_softmax(scores, axis=1)
    if probabilities:
        q = np.asarray(target, dtype=scores.dtype) * (1 - smoothing) + smoothing / n_classes
        q *= w
        denominator = float(counted.size)
    else:
        q, denominator = _index_mass(np.asarray(target), counted, w, smoothing, scores.dtype)
    losses = (q * -logp).sum(axis=1)
    dscores = np.exp(logp) * q.sum(axis=1, keepdims=True) - q

    if reduction == "none":
        return losses, dscores * np.expand_dims(upstream, 1)
    if reduction == "sum":
        return float(losses.sum()), dscores * upstream
    if denominator == 0:  # 0/0: nothing counts (gradient 0) or the counted weights sum to 0 (nan)
        return float("nan"), np.full_like(dscores, np.nan if counted.any() else 0.0)
    return float(losses.sum() / denominator), dscores * upstream / denominator


def _index_mass(target, counted, w, smoothing, dtype) -> tuple[np.ndarray, float]:
    """``q (N, C, d1, ...)`` for class indices, and the summed weight of the counted positions."""
    safe = np.where(counted, target, 0)[:, np.newaxis]  # ignored positions point at class 0, then get q = 0
    w_target = w.ravel()[safe]  # (N, 1, d1, ...)
    onehot = np.arange(w.size).reshape(w.shape) == safe
    q = (smoothing / w.size) * w + (1 - smoothing) * w_target * onehot
    q *= counted[:, np.newaxis]
    return q.astype(dtype, copy=False), float(w_target.sum(where=counted[:, np.newaxis]))


def _label_smoothing(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where}: label_smoothing must be a real number, got {value!r} ({type(value).__name__})")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{where}: label_smoothing must be in [0, 1], got {value}")
    return float(value)


def _class_weights(weight, scores: np.ndarray, where: str) -> np.ndarray:
    """``weight (C,)`` (or ones) in ``scores``' dtype, shaped ``(1, C, 1, ...)`` to broadcast against it."""
    n_classes = scores.shape[1]
    shape = (1, n_classes) + (1,) * (scores.ndim - 2)
    if weight is None:
        return np.ones(shape, dtype=scores.dtype)
    w = as_float_array(weight, where, "weight")
    if w.shape != (n_classes,):
        raise ValueError(f"{where}: weight must have shape ({n_classes},), one per class of scores, got shape "
                         f"{w.shape}")
    return w.astype(scores.dtype).reshape(shape)


def _check_target(target, scores: np.ndarray, ignore_index, where: str) -> tuple[bool, np.ndarray]:
    """``(is_probabilities, counted)``: ``counted (N, d1, ...)`` bool marks positions that enter the loss."""
    t = np.asarray(target)
    index_shape = scores.shape[:1] + scores.shape[2:]
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"{where}: ignore_index must be an int, got {ignore_index!r}")
    if np.issubdtype(t.dtype, np.floating) and t.shape == scores.shape:
        if ignore_index != -100:
            raise ValueError(f"{where}: ignore_index applies to class-index targets only, got ignore_index="
                             f"{ignore_index} with class-probability target of shape {t.shape}")
        return True, np.ones(index_shape, dtype=bool)
    if not np.issubdtype(t.dtype, np.integer) or np.issubdtype(t.dtype, np.bool_):
        if t.shape == index_shape:
            raise TypeError(f"{where}: target of shape {t.shape} must hold integer class indices, got dtype "
                            f"{t.dtype} (class probabilities must have scores' shape {scores.shape})")
        raise TypeError(f"{where}: target must hold integer class indices or floating class probabilities, "
                        f"got dtype {t.dtype}")
    if t.shape != index_shape:
        raise ValueError(f"{where}: target must have shape {index_shape} (class indices) or {scores.shape} "
                         f"(probabilities) to match scores {scores.shape}, got shape {t.shape}")
    counted = t != ignore_index
    bad = counted & ((t < 0) | (t >= scores.shape[1]))
    if bad.any():
        raise ValueError(f"{where}: labels must be in [0, {scores.shape[1]}), got {t[bad][0]} "
                         f"(only ignore_index={ignore_index} may lie outside)")
    return False, counted


def _upstream(dloss, reduction: str, loss_shape: tuple[int, ...], dtype, where: str) -> np.ndarray | float:
    """The upstream gradient: a float (default 1.0) for mean/sum, an array of the loss's shape
    (default ones) for none."""
    if reduction == "none":
        if dloss is None:
            return np.ones(loss_shape, dtype=dtype)
        d = as_float_array(dloss, where, "dloss")
        if d.shape != loss_shape:
            raise ValueError(f"{where}: dloss must have shape {loss_shape} for reduction='none', got shape "
                             f"{d.shape}")
        return d.astype(dtype, copy=False)
    if dloss is None:
        return 1.0
    d = np.asarray(dloss)
    if d.shape != () or not np.issubdtype(d.dtype, np.number) or np.issubdtype(d.dtype, np.complexfloating):
        raise ValueError(f"{where}: dloss must be a real scalar for reduction={reduction!r}, got {dloss!r}")
    return float(d)
