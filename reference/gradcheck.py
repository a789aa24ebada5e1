"""Finite differences and relative error: the two tools every gradient test uses."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def rel_error(x: np.ndarray, y: np.ndarray) -> float:
    """``max(|x - y| / max(1e-8, |x| + |y|))`` (CS231n's), 0.0 for empty arrays."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"rel_error: shapes differ, {x.shape} vs {y.shape}")
    if x.size == 0:
        return 0.0
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def max_rel_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """Normwise relative error ``max|a - e| / max|e|`` (0.0 when both are all zero).

    The measure to use for sums: an element whose exact value cancels to ~0 has no
    meaningful element-wise relative error, while this one stays at rounding level.
    """
    a, e = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        raise ValueError(f"max_rel_error: shapes differ, {a.shape} vs {e.shape}")
    if a.size == 0:
        return 0.0
    err, scale = float(np.max(np.abs(a - e))), float(np.max(np.abs(e)))
    if scale == 0.0:
        return 0.0 if err == 0.0 else float("inf")
    return err / scale


def numerical_gradient(f: Callable[[], np.ndarray], x: np.ndarray, dout: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central-difference gradient of ``sum(f() * dout)`` w.r.t. ``x``, perturbing ``x`` in place.

    ``f`` takes no argument and reads ``x`` (an input or a parameter array, float64);
    ``dout`` has ``f()``'s shape. ``x`` is restored afterwards.
    """
    if x.dtype != np.float64:
        raise TypeError(f"numerical_gradient: x must be float64 for central differences, got {x.dtype}")
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    for _ in it:
        idx = it.multi_index
        old = x[idx]
        x[idx] = old + h
        plus = np.sum(f() * dout)
        x[idx] = old - h
        minus = np.sum(f() * dout)
        x[idx] = old
        grad[idx] = (plus - minus) / (2 * h)
    return grad


def gradient_errors(layer, x: np.ndarray, dout: np.ndarray, h: float = 1e-5) -> dict[str, float]:
    """``layer.backward`` against central differences, for ``x`` and every parameter (float64).

    Returns ``{"x": err, "weight": err, ...}``, each a :func:`max_rel_error` of the analytic
    gradient against the numerical one. ``layer`` may be any layer or a Sequential.
    """
    layer.forward(x)
    analytic = {"x": layer.backward(dout), **{k: np.array(v) for k, v in layer.grads.items()}}
    numeric = {"x": numerical_gradient(lambda: layer.forward(x), x, dout, h)}
    for key in list(layer.params):
        numeric[key] = numerical_gradient(lambda: layer.forward(x), layer.params[key], dout, h)
    return {k: max_rel_error(analytic[k], numeric[k]) for k in analytic}
