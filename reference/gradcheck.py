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
        grad[it.multi_index] = central_difference(f, x, it.multi_index, dout, h)
    return grad


def central_difference(f: Callable[[], np.ndarray], x: np.ndarray, index: tuple, dout: np.ndarray, h: float) -> float:
    """``(sum(f() * dout) at x[index] + h  -  the same at x[index] - h) / 2h``; ``x[index]`` is restored."""
    old = x[index]
    x[index] = old + h
    plus = np.sum(f() * dout)
    x[index] = old - h
    minus = np.sum(f() * dout)
    x[index] = old
    return (plus - minus) / (2 * h)


MODES = ("full", "directional", "sampled")


def directional_error(f: Callable[[], np.ndarray], x: np.ndarray, dout: np.ndarray, grad: np.ndarray,
                      rng: np.random.Generator, directions: int = 3, h: float = 1e-5) -> float:
    """``grad`` (the analytic gradient of ``sum(f() * dout)`` w.r.t. ``x``, shaped like ``x``) along random
    directions, against central differences along them (as ``jax.test_util.check_grads``).

    For each unit direction ``v`` (``directions`` of them, normal entries): ``<grad, v>`` against
    ``(F(x + h v) - F(x - h v)) / (2 h)``. Returns the largest ``|difference| / scale``, with ``scale`` the
    larger of ``|grad|_2`` and ``|numerical|`` (0.0 when both are 0): a normwise relative error, since a wrong
    gradient ``grad + e`` is off along a random direction by about ``|e|_2``. ``x`` is perturbed in place
    (float64) and restored. Costs ``2 * directions`` calls of ``f``.
    """
    if x.dtype != np.float64:
        raise TypeError(f"directional_error: x must be float64 for central differences, got {x.dtype}")
    grad = np.asarray(grad, dtype=np.float64)
    if grad.shape != x.shape:
        raise ValueError(f"directional_error: grad must have x's shape {x.shape}, got {grad.shape}")
    norm, worst = float(np.linalg.norm(grad)), 0.0
    saved = x.copy()
    for _ in range(directions):
        v = rng.standard_normal(x.shape)
        v /= max(float(np.linalg.norm(v)), 1e-300)
        x[...] = saved + h * v
        plus = np.sum(f() * dout)
        x[...] = saved - h * v
        minus = np.sum(f() * dout)
        x[...] = saved
        numeric, analytic = (plus - minus) / (2 * h), float(np.sum(grad * v))
        scale = max(norm, abs(numeric))
        err = abs(analytic - numeric)
        worst = max(worst, 0.0 if err == 0.0 else (float("inf") if scale == 0.0 else err / scale))
    return worst


def sampled_error(f: Callable[[], np.ndarray], x: np.ndarray, dout: np.ndarray, grad: np.ndarray,
                  rng: np.random.Generator, samples: int = 16, h: float = 1e-5) -> float:
    """:func:`max_rel_error` of ``grad`` against central differences at ``samples`` random entries of ``x``
    (all of them when ``x`` has fewer), relative to ``max |grad|`` over the whole array. Costs
    ``2 * samples`` calls of ``f``; ``x`` (float64) is perturbed in place and restored."""
    if x.dtype != np.float64:
        raise TypeError(f"sampled_error: x must be float64 for central differences, got {x.dtype}")
    grad = np.asarray(grad, dtype=np.float64)
    if grad.shape != x.shape:
        raise ValueError(f"sampled_error: grad must have x's shape {x.shape}, got {grad.shape}")
    if x.size == 0:
        return 0.0
    flat = rng.choice(x.size, size=min(samples, x.size), replace=False)
    worst, scale = 0.0, float(np.max(np.abs(grad)))
    for index in zip(*np.unravel_index(flat, x.shape), strict=True):
        numeric = central_difference(f, x, index, dout, h)
        err, s = abs(grad[index] - numeric), max(scale, abs(numeric))
        worst = max(worst, 0.0 if err == 0.0 else (float("inf") if s == 0.0 else err / s))
    return worst


def gradient_errors(layer, x: np.ndarray, dout: np.ndarray, h: float = 1e-5, *, mode: str = "full",
                    directions: int = 3, samples: int = 16, seed: int = 0) -> dict[str, float]:
    """``layer.backward`` against central differences, for ``x`` and every parameter (float64).

    Returns ``{"x": err, "weight": err, ...}``. ``layer`` may be any layer or a Sequential, or any object with
    ``forward(x)``, ``backward(dout) -> dx`` and ``params``/``grads`` dicts (parameters are perturbed in place
    in ``layer.params``).

    ``mode``:

    - ``"full"`` (default): every entry by central differences (two forwards per entry); each error is a
      :func:`max_rel_error` of the analytic gradient against the numerical one.
    - ``"directional"``: ``directions`` random directions per quantity (:func:`directional_error`): a
      normwise relative error, the same order of magnitude as the full one, at ``2 * directions`` forwards
      per quantity whatever its size (a (2, 3, 16, 16) loop conv in about a second instead of a minute).
    - ``"sampled"``: ``samples`` random entries per quantity (:func:`sampled_error`).

    ``seed`` draws the directions or entries.
    """
    if mode not in MODES:
        raise ValueError(f"gradient_errors: mode must be one of {MODES}, got {mode!r}")
    layer.forward(x)
    analytic = {"x": layer.backward(dout), **{k: np.array(v) for k, v in layer.grads.items()}}
    targets = {"x": x, **{key: layer.params[key] for key in list(layer.params)}}
    if mode == "full":
        numeric = {k: numerical_gradient(lambda: layer.forward(x), arr, dout, h) for k, arr in targets.items()}
        return {k: max_rel_error(analytic[k], numeric[k]) for k in analytic}
    rng = np.random.default_rng(seed)
    errs = {}
    for key in analytic:
        if key not in targets:
            raise KeyError(f"gradient_errors: grads has {key!r}, which params does not have ({sorted(targets)})")
        if mode == "directional":
            errs[key] = directional_error(lambda: layer.forward(x), targets[key], dout, analytic[key], rng,
                                          directions, h)
        else:
            errs[key] = sampled_error(lambda: layer.forward(x), targets[key], dout, analytic[key], rng, samples, h)
    return errs
