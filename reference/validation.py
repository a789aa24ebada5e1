"""Argument checks for the public boundary, written once.

Every message names the function, the argument, what was expected and what was
given, e.g. ``Conv2d.forward: x must have 3 or 4 dims (C,H,W) or (N,C,H,W), got
shape (28, 28)``.
"""

from __future__ import annotations

import numbers

import numpy as np

# dtype.char of float32 and float64: the test callers inline (cheaper than comparing dtypes)
FLOAT_CHARS = ("f", "d")


def as_float_array(x, where: str, name: str = "x") -> np.ndarray:
    """Return ``x`` as a float32 or float64 ndarray, or raise TypeError (float16 and long double too:
    the reference computes, and is verified, in float32 and float64 only)."""
    arr = np.asarray(x)
    if arr.dtype.char not in FLOAT_CHARS:
        raise TypeError(
            f"{where}: {name} must have a real floating dtype (float32 or float64), "
            f"got dtype {arr.dtype}"
        )
    return arr


def check_ndim(x: np.ndarray, allowed: tuple[int, ...], where: str, name: str, layout: str) -> None:
    """Raise ValueError unless ``x.ndim`` is one of ``allowed``; ``layout`` describes them."""
    if x.ndim not in allowed:
        dims = " or ".join(str(d) for d in allowed)
        raise ValueError(f"{where}: {name} must have {dims} dims {layout}, got shape {x.shape}")


def check_shape(x: np.ndarray, expected: tuple[int, ...], where: str, name: str) -> None:
    """Raise ValueError unless ``x.shape == expected``."""
    if tuple(x.shape) != tuple(expected):
        raise ValueError(f"{where}: {name} must have shape {tuple(expected)}, got shape {x.shape}")


def check_int(value, where: str, name: str, minimum: int) -> int:
    """Return ``value`` as int if it is an integer >= ``minimum``; raise otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{where}: {name} must be an int, got {value!r} ({type(value).__name__})")
    if value < minimum:
        bound = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{where}: {name} must be {bound}, got {value}")
    return int(value)


def as_pair(value, where: str, name: str, minimum: int) -> tuple[int, int]:
    """Normalise an int or a pair of ints to ``(height, width)``, each >= ``minimum``."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{where}: {name} must be an int or a pair, got {value!r}")
        return (check_int(value[0], where, name, minimum), check_int(value[1], where, name, minimum))
    v = check_int(value, where, name, minimum)
    return (v, v)


def check_choice(value, choices: tuple[str, ...], where: str, name: str) -> str:
    """Raise ValueError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{where}: {name} must be one of {choices}, got {value!r}")
    return value


def as_float_dtype(dtype, where: str) -> np.dtype:
    """Return ``dtype`` as float32 or float64, or raise TypeError."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"{where}: dtype must be float32 or float64, got {dtype!r} ({exc})") from None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"{where}: dtype must be float32 or float64, got {dt}")
    return dt


def check_fraction(value, where: str, name: str, upper_inclusive: bool = True) -> float:
    """Return ``value`` as float if it is a real number in ``[0, 1]`` (``[0, 1)`` unless ``upper_inclusive``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where}: {name} must be a real number, got {value!r} ({type(value).__name__})")
    v = float(value)
    if not (0.0 <= v <= 1.0) or (v == 1.0 and not upper_inclusive):
        bound = "[0, 1]" if upper_inclusive else "[0, 1)"
        raise ValueError(f"{where}: {name} must be in {bound}, got {value!r}")
    return v


def check_bool(value, where: str, name: str) -> bool:
    """Return ``value`` as a bool if it is one (Python's or numpy's; not merely truthy); raise TypeError otherwise."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{where}: {name} must be a bool, got {value!r} ({type(value).__name__})")
    return bool(value)
