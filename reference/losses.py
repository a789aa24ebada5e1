"""Softmax cross-entropy on logits."""

from __future__ import annotations

import numpy as np

from .validation import as_float_array, check_ndim


def log_softmax(scores: np.ndarray, axis: int = -1) -> np.ndarray:
    """``log(softmax(scores))`` along ``axis``, stable for logits of any magnitude."""
    shifted = scores - scores.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax_cross_entropy(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of ``softmax(scores)`` against class indices, and its gradient.

    ``scores (N, K)`` float logits, ``y (N,)`` integer labels in ``[0, K)``.
    Returns ``(loss, dscores)`` with ``dscores (N, K) = (softmax(scores) - onehot(y)) / N``.
    Equals ``torch.nn.functional.cross_entropy(scores, y)``.
    """
    where = "softmax_cross_entropy"
    scores = as_float_array(scores, where, "scores")
    check_ndim(scores, (2,), where, "scores", "(N, K)")
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"{where}: y must hold integer class indices, got dtype {y.dtype}")
    n, k = scores.shape
    if y.shape != (n,):
        raise ValueError(f"{where}: y must have shape ({n},) to match scores {scores.shape}, got shape {y.shape}")
    if n and (y.min() < 0 or y.max() >= k):
        bad = y[(y < 0) | (y >= k)][0]
        raise ValueError(f"{where}: labels must be in [0, {k}), got {bad}")
    logp = log_softmax(scores)
    rows = np.arange(n)
    loss = -logp[rows, y].mean()
    dscores = np.exp(logp)
    dscores[rows, y] -= 1
    dscores /= n
    return float(loss), dscores
