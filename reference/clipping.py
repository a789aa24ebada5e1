"""Gradient clipping in place, as ``torch.nn.utils.clip_grad_norm_`` and ``clip_grad_value_``.

``grads`` is a mapping name -> array (a model's ``grads``); every array is changed in place.
"""

from __future__ import annotations

import math

import numpy as np

from .validation import check_array_mapping, check_bool, check_norm_type, check_real


def _norm(a: np.ndarray, norm_type: float) -> float:
    """The ``norm_type``-norm of ``a`` flattened (``inf``: the largest magnitude), in float64."""
    flat = np.abs(a.reshape(-1).astype(np.float64))
    if not flat.size:
        return 0.0
    if math.isinf(norm_type):
        return float(flat.max())
    if norm_type == 2.0:
        return float(np.sqrt(np.dot(flat, flat)))
    top = flat.max()
    if top == 0 or not np.isfinite(top):
        return float(top)
    with np.errstate(under="ignore"):  # scaled by the largest magnitude: no overflow for any order
        return float(top * np.sum((flat / top) ** norm_type) ** (1.0 / norm_type))


def clip_grad_norm(grads, max_norm: float, norm_type: float = 2.0, *, per_array: bool = False,
                   norm_eps: float = 1e-6) -> float:
    """Scale the gradients so that their norm is at most ``max_norm``; returns the total norm before clipping.

    ``total = norm(norm(g) for g in grads)`` (``norm_type``: a real > 0 or ``inf``), then every ``g *= min(1,
    max_norm / (total + norm_eps))``, as ``torch.nn.utils.clip_grad_norm_`` (``norm_eps`` is its 1e-6).
    Keyword-only switches: ``per_array=True`` clips each array by its own norm instead (Keras' ``clipnorm``,
    where the global form is Keras' ``global_clipnorm``); ``norm_eps=0`` is Keras' ratio ``max_norm /
    max(norm, max_norm)`` (to rounding).
    """
    where = "clip_grad_norm"
    arrays = check_array_mapping(grads, where, "grads")
    limit = check_real(max_norm, where, "max_norm", minimum=0.0)
    order = check_norm_type(norm_type, where)
    per_array = check_bool(per_array, where, "per_array")
    eps = check_real(norm_eps, where, "norm_eps", minimum=0.0)
    norms = [_norm(a, order) for a in arrays.values()]
    total = _norm(np.array(norms), order)
    for a, n in zip(arrays.values(), norms, strict=True):
        norm = n if per_array else total
        if norm + eps > 0:
            a *= a.dtype.type(min(1.0, limit / (norm + eps)))
    return total


def clip_grad_value(grads, clip_value: float) -> None:
    """Clip every gradient element to ``[-clip_value, clip_value]`` in place (``torch.nn.utils.clip_grad_value_``,
    Keras' ``clipvalue``)."""
    where = "clip_grad_value"
    arrays = check_array_mapping(grads, where, "grads")
    v = check_real(clip_value, where, "clip_value", minimum=0.0)
    for a in arrays.values():
        np.clip(a, -v, v, out=a)
