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

The loss is evaluated in PyTorch's own arrangement, so that it is finite, inf or nan where
PyTorch's is: for class indices only ``logp[target]`` enters the unsmoothed term (a ``-inf``
logit on another class, i.e. a masked class, leaves the loss finite), the smoothing term is a
separate sum reduced on its own, and ignored positions are 0 without being multiplied.
"""

from __future__ import annotations

import numbers

import numpy as np

from .validation import as_float_array, canonical, check_choice, check_int

REDUCTIONS = ("mean", "sum", "none")


def log_softmax(scores: np.ndarray, axis: int = -1) -> np.ndarray:
    """``log(softmax(scores))`` along ``axis``, stable for logits of any magnitude: ``torch.log_softmax``.

    Computed as PyTorch does, ``x - max - log(sum(exp(x - max)))``, so it agrees with it on every input,
    non-finite ones included, and silently (no RuntimeWarning, as PyTorch): a ``-inf`` logit gives
    ``-inf`` (probability 0) and leaves the others finite; ``x - max`` below the dtype's range (float32
    logits ``3e38`` and ``-3e38``) rounds to ``-inf``, as the exact result does; a slice holding
    ``+inf`` or nan, or only ``-inf``, is nan throughout (``inf - inf``: no softmax is defined there).
    An empty ``axis`` gives an empty result.
    """
    scores = canonical(as_float_array(scores, "log_softmax", "scores"))
    axis = check_int(axis, "log_softmax", "axis", -max(scores.ndim, 1), max(scores.ndim, 1) - 1)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        shifted = scores - scores.max(axis=axis, keepdims=True, initial=-np.inf)
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

    Non-finite logits give PyTorch's results (values and gradients): a ``-inf`` logit on a
    non-target class a finite loss; on the target an infinite loss with a finite gradient; a row
    of only ``-inf``, or holding ``+inf`` or nan, nan (0 if that position is ignored, its gradient
    nan either way). Where PyTorch multiplies 0 by an infinite log-probability (a class weight 0,
    a zero target probability, ``label_smoothing=1`` times an infinite unsmoothed term) the loss
    is nan as in PyTorch. No RuntimeWarning is emitted for any of these.
    """
    where = "softmax_cross_entropy"
    scores = canonical(as_float_array(scores, where, "scores"))
    if scores.ndim < 2:
        raise ValueError(f"{where}: scores must have at least 2 dims (N, C) or (N, C, d1, ...), got shape "
                         f"{scores.shape}")
    check_choice(reduction, REDUCTIONS, where, "reduction")
    smoothing = _label_smoothing(label_smoothing, where)
    n_classes = scores.shape[1]
    w = _class_weights(weight, scores, where)
    probabilities, counted = _check_target(target, scores, ignore_index, where)
    target, counted = canonical(np.asarray(target)), canonical(counted)  # their sums add in memory order
    upstream = _upstream(dloss, reduction, scores.shape[:1] + scores.shape[2:], scores.dtype, where)

    logp = log_softmax(scores, axis=1)
    if probabilities:
        q = canonical(np.asarray(target, dtype=scores.dtype)) * (1 - smoothing) + smoothing / n_classes
        q *= w
        with np.errstate(over="ignore", invalid="ignore"):  # q = 0 at a -inf logit: nan, as PyTorch's
            terms = [(1.0, (q * -logp).sum(axis=1))]
        denominator = float(counted.size)
    else:
        q, denominator = _index_mass(np.asarray(target), counted, w, smoothing, scores.dtype)
        terms = _index_terms(logp, np.asarray(target), counted, w, smoothing)
    dscores = np.exp(logp) * q.sum(axis=1, keepdims=True) - q

    if reduction == "none":
        return _reduce(terms, reduction, denominator), dscores * np.expand_dims(upstream, 1)
    if reduction == "sum":
        return float(_reduce(terms, reduction, denominator)), dscores * upstream
    if denominator == 0:  # 0/0: nothing counts, or the counted weights sum to 0
        return float("nan"), _gradient_of_empty_mean(dscores, counted)
    return float(_reduce(terms, reduction, denominator)), dscores * upstream / denominator


def _gradient_of_empty_mean(dscores: np.ndarray, counted: np.ndarray) -> np.ndarray:
    """PyTorch's gradient of a mean over a total weight of 0: nan at counted positions (their weight 0 times
    ``1/0``), and elsewhere what the softmax passes back of a zero gradient: 0, or nan where ``logp`` is."""
    return np.where(np.expand_dims(counted, 1), np.nan, dscores * 0)


def _reduce(terms: list[tuple[float, np.ndarray]], reduction: str, denominator: float):
    """``sum_i coef_i * reduce(term_i)`` as PyTorch orders it (each term reduced, then scaled and added; a single
    term keeps its bits). Silent on overflow to inf and on ``0 * inf`` (``label_smoothing=1`` times an infinite
    term): PyTorch's inf and nan."""
    reduce = {"none": lambda t: t, "sum": np.sum, "mean": lambda t: t.sum() / denominator}[reduction]
    with np.errstate(over="ignore", invalid="ignore"):
        parts = [coef * reduce(t) for coef, t in terms]
        total = parts[0]
        for part in parts[1:]:
            total = total + part
    return total


def _index_terms(logp, target, counted, w, smoothing) -> list[tuple[float, np.ndarray]]:
    """PyTorch's terms for class indices, per position ``(N, d1, ...)``, each with its coefficient:
    ``nll = -logp[y] * w[y]``, and with label smoothing also ``smooth = -sum_c logp[c] * w[c]``, both 0 at
    ignored positions; the loss is ``(1 - ls) * nll + ls / C * smooth``, each term reduced on its own.

    Only the target's log-probability enters ``nll``: a ``-inf`` logit elsewhere leaves the loss finite
    (a one-hot product would make it ``0 * inf = nan``). Where PyTorch's products are ``0 * inf`` (a
    weight 0 on a ``-inf`` logit, ``ls = 1`` times an infinite ``nll``) the result is its nan too.
    """
    safe = np.where(counted, target, 0)[:, np.newaxis]  # ignored positions read class 0, then count 0
    picked = np.take_along_axis(logp, safe, axis=1)[:, 0]
    with np.errstate(over="ignore", invalid="ignore"):  # PyTorch's inf and nan, silently
        nll = np.where(counted, -picked * w.ravel()[safe[:, 0]], 0)
        if smoothing == 0:
            return [(1.0, nll)]
        smooth = np.where(counted, -(logp * w).sum(axis=1), 0)
        return [(1 - smoothing, nll), (smoothing / w.size, smooth)]


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
