"""Argument checks for the public boundary, written once.

Every message names the function, the argument, what was expected and what was
given, e.g. ``Conv2d.forward: x must have 3 or 4 dims (C,H,W) or (N,C,H,W), got
shape (28, 28)``.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping

import numpy as np

# dtype.char of float32 and float64: the test callers inline (cheaper than comparing dtypes)
FLOAT_CHARS = ("f", "d")

# The largest size, stride, padding, dilation or channel count accepted (the largest int32). Beyond it a
# value cannot index a numpy array sensibly on this machine (no such array fits in memory), and such
# values used to reach numpy's internal errors (an overflow in a shape computation, a failed
# allocation) instead of a message naming the argument: e.g. ``stride=10**24``, ``kernel_size=2**31``.
MAX_INT = 2**31 - 1


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


def check_int(value, where: str, name: str, minimum: int, maximum: int = MAX_INT) -> int:
    """Return ``value`` as int if it is an integer (Python's or numpy's, not a bool) in ``[minimum, maximum]``;
    raise TypeError for another type, ValueError outside the bounds."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{where}: {name} must be an int, got {value!r} ({type(value).__name__})")
    v = int(value)
    if v < minimum:
        bound = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{where}: {name} must be {bound}, got {v} ({type(value).__name__})")
    if v > maximum:
        raise ValueError(f"{where}: {name} must be <= {maximum}, got {v} ({type(value).__name__})")
    return v


def as_pair(value, where: str, name: str, minimum: int, maximum: int = MAX_INT) -> tuple[int, int]:
    """Normalise an int or a pair of ints to ``(height, width)``, each in ``[minimum, maximum]``."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{where}: {name} must be an int or a pair, got {value!r}")
        return (check_int(value[0], where, name, minimum, maximum), check_int(value[1], where, name, minimum, maximum))
    v = check_int(value, where, name, minimum, maximum)
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


def _real_type_error(value, where: str, name: str) -> TypeError:
    return TypeError(f"{where}: {name} must be a real number, got {value!r} ({type(value).__name__})")


def _as_real(value, where: str, name: str) -> float:
    """``float(value)`` for a real number (Python's, numpy's scalar or 0-d array; not a bool); TypeError
    otherwise. An int too large for a float becomes +-inf (so a bound or ``finite`` refuses it by value)."""
    if isinstance(value, np.ndarray):
        if value.ndim != 0 or value.dtype.kind not in "iuf":
            raise _real_type_error(value, where, name)
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise _real_type_error(value, where, name)
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _interval(minimum, maximum, min_inclusive: bool, max_inclusive: bool) -> str:
    """``"> 0"``, ``"<= 1"``, ``"in [0, 1)"``, or ``""`` without bounds."""
    if minimum is not None and maximum is not None:
        return f" in {'[' if min_inclusive else '('}{minimum}, {maximum}{']' if max_inclusive else ')'}"
    if minimum is not None:
        return f" {'>=' if min_inclusive else '>'} {minimum}"
    if maximum is not None:
        return f" {'<=' if max_inclusive else '<'} {maximum}"
    return ""


def check_real(value, where: str, name: str, *, minimum: float | None = None, maximum: float | None = None,
               min_inclusive: bool = True, max_inclusive: bool = True, finite: bool = True) -> float:
    """Return ``value`` as a float if it is a real number within the bounds; raise otherwise.

    Accepted: Python ints and floats, numpy integer and floating scalars (``np.float32(1e-5)``) and 0-d
    numpy arrays of those dtypes (``np.asarray(0.9)``: one number, as a 0-d tensor is to PyTorch).
    TypeError for anything else: bool, str, None, complex, arrays of other shapes. ValueError for NaN
    (always), for +-inf when ``finite``, and outside ``minimum``/``maximum`` (each inclusive unless
    ``min_inclusive``/``max_inclusive`` is False). The message states the whole requirement, e.g.
    ``SGD: lr must be a finite number > 0, got nan (float)``.
    """
    v = _as_real(value, where, name)
    too_low = minimum is not None and (v < minimum or (v == minimum and not min_inclusive))
    too_high = maximum is not None and (v > maximum or (v == maximum and not max_inclusive))
    if math.isnan(v) or (finite and math.isinf(v)) or too_low or too_high:
        kind = "a finite number" if finite else "a number (not nan)"
        raise ValueError(f"{where}: {name} must be {kind}{_interval(minimum, maximum, min_inclusive, max_inclusive)}, "
                         f"got {value!r} ({type(value).__name__})")
    return v


def check_real_pair(value, where: str, name: str, **bounds) -> tuple[float, float]:
    """Return a pair of real numbers (a tuple, a list or a 1-d array of 2) as two floats, each checked by
    :func:`check_real` with ``bounds`` under the name ``name[0]`` / ``name[1]`` (Adam's ``betas``)."""
    if not isinstance(value, (tuple, list, np.ndarray)):
        raise TypeError(f"{where}: {name} must be a pair of real numbers, got {value!r} ({type(value).__name__})")
    if (isinstance(value, np.ndarray) and value.ndim != 1) or len(value) != 2:
        raise ValueError(f"{where}: {name} must be a pair of real numbers, got {value!r} ({type(value).__name__})")
    return (check_real(value[0], where, f"{name}[0]", **bounds), check_real(value[1], where, f"{name}[1]", **bounds))


def _gradient_array(value, shape: tuple[int, ...], where: str, name: str) -> np.ndarray:
    """``value`` as a float32/float64 array of ``shape`` (an array-like is converted); raise otherwise."""
    wanted = f"a float32 or float64 array of shape {shape}"
    if value is None or isinstance(value, (str, bytes, Mapping)):
        raise TypeError(f"{where}: {name} must be {wanted}, got {value!r} ({type(value).__name__})")
    try:
        arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    except (TypeError, ValueError) as exc:  # a ragged list
        raise TypeError(f"{where}: {name} must be {wanted}, got {type(value).__name__} ({exc})") from None
    if arr.dtype.char not in FLOAT_CHARS:
        raise TypeError(f"{where}: {name} must be {wanted}, got dtype {arr.dtype} ({type(value).__name__})")
    if arr.shape != shape:
        raise ValueError(f"{where}: {name} must have shape {shape}, got shape {arr.shape}")
    return arr


def check_gradients(grads, expected: Mapping[str, np.ndarray], where: str, name: str = "grads") -> list[np.ndarray]:
    """The arrays ``grads[key]`` for every key of ``expected`` (an optimizer's parameters), in its order.

    ``grads`` must be a mapping; every key of ``expected`` must be in it (KeyError naming the key; other
    entries are ignored, so an optimizer over part of a model may read the model's ``grads``); each value
    must be a float32 or float64 array (an array-like such as a list is converted; None, strings and other
    dtypes raise TypeError) with the shape of ``expected[key]`` (ValueError otherwise). Each message names
    the entry: ``Adam.step: grads['0.weight'] must have shape (4, 3), got shape (3, 4)``.
    """
    if not isinstance(grads, Mapping):
        raise TypeError(f"{where}: {name} must be a mapping name -> array, got {type(grads).__name__}")
    arrays = []
    for key, like in expected.items():
        try:
            value = grads[key]
        except KeyError:
            raise KeyError(f"{where}: {name} has no entry {key!r} (params keys: {list(expected)})") from None
        arrays.append(_gradient_array(value, like.shape, where, f"{name}[{key!r}]"))
    return arrays


def check_bool(value, where: str, name: str) -> bool:
    """Return ``value`` as a bool if it is one (Python's or numpy's; not merely truthy); raise TypeError otherwise."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{where}: {name} must be a bool, got {value!r} ({type(value).__name__})")
    return bool(value)


def memory_bytes() -> int | None:
    """This machine's physical memory in bytes (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_allocation(shapes, dtype, where: str, what: str) -> None:
    """Raise ValueError before arrays of ``shapes`` in ``dtype`` are allocated when together they would need
    more than this machine's memory (numpy would raise "array is too big" or MemoryError from deep inside, or
    the OS would end the process), naming ``what`` (e.g. ``"its weight (F, C, kh, kw)"``) and the sizes."""
    nbytes = sum(math.prod(shape) for shape in shapes) * np.dtype(dtype).itemsize
    limit = memory_bytes()
    if limit is not None and nbytes > limit:
        raise ValueError(f"{where}: {what} would need {nbytes / 2**30:.4g} GiB (shapes {', '.join(map(str, shapes))}, "
                         f"{np.dtype(dtype).name}), more than this machine's {limit / 2**30:.4g} GiB of memory")


def all_finite(a: np.ndarray) -> bool:
    """Whether every value of ``a`` is finite: a fast test for the callers' rare exact path (an infinity or a NaN
    that a product with a zero of their layout would turn into a NaN of its own). One BLAS dot product of ``a``
    with itself (a contiguous copy first when ``a`` is not contiguous): measured at 64x32x28x28 float32, 0.42 ms
    against 1.3 ms for ``np.add.reduce`` and 1.7 ms for ``np.isfinite(a).all()``. A square that overflows (values
    beyond about 1.8e19 in float32) reads as not finite, which costs the caller only its exact path, and is not
    warned about."""
    flat = a.reshape(-1)
    with np.errstate(over="ignore"):
        return math.isfinite(np.dot(flat, flat))


def canonical(a: np.ndarray) -> np.ndarray:
    """``a`` itself when it is C-contiguous in native byte order (the common case, no copy), else such a copy.

    numpy's sums and products add in an order that follows the memory layout, so a Fortran-ordered, strided or
    reversed array would give results that differ from the plain array's in the last bits, and a byte-swapped
    one would pass its byte order on to the results. Every layer reads its input, ``dout`` and parameters
    through this (and the losses their scores and targets), so results depend on the values only.
    """
    if a.flags.c_contiguous and a.dtype.isnative:
        return a
    return np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("="))


def check_array_mapping(value, where: str, name: str) -> dict:
    """``value`` as a dict if it is a non-empty mapping of writeable float32/float64 ndarrays (updated in place,
    e.g. a model's ``grads``); TypeError/ValueError naming the entry otherwise."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{where}: {name} must be a non-empty mapping name -> array, got {type(value).__name__}")
    if not len(value):
        raise ValueError(f"{where}: {name} must be a non-empty mapping name -> array, got {value!r}")
    for key, arr in value.items():
        if not isinstance(arr, np.ndarray) or arr.dtype.char not in FLOAT_CHARS:
            raise TypeError(f"{where}: {name}[{key!r}] must be a float ndarray (float32 or float64, updated in "
                            f"place), got {type(arr).__name__} {getattr(arr, 'dtype', '')}")
        if not arr.flags.writeable:
            raise ValueError(f"{where}: {name}[{key!r}] must be a writeable array (updated in place), got a "
                             f"read-only array")
    return dict(value)


def check_norm_type(value, where: str, name: str = "norm_type") -> float:
    """A vector norm's order: a real number > 0, or ``inf`` (the largest magnitude)."""
    v = check_real(value, where, name, minimum=0.0, min_inclusive=False, finite=False)
    return v


def check_optional_bool(value, where: str, name: str) -> bool | None:
    """None, or ``value`` as a bool (see :func:`check_bool`): a switch whose default depends on other arguments."""
    return None if value is None else check_bool(value, where, name)


def as_real_pair(value, where: str, name: str, **bounds) -> tuple[float, float]:
    """A real number (for both axes) or a pair of real numbers, as ``(height, width)`` floats, each checked by
    :func:`check_real` with ``bounds`` (``Upsample``'s ``scale_factor``)."""
    if isinstance(value, (tuple, list, np.ndarray)) and not (isinstance(value, np.ndarray) and value.ndim == 0):
        return check_real_pair(value, where, name, **bounds)
    v = check_real(value, where, name, **bounds)
    return (v, v)


def check_exactly_one(where: str, **named) -> str:
    """The name of the one argument of ``named`` that is not None; ValueError naming them all otherwise."""
    given = [name for name, value in named.items() if value is not None]
    if len(given) != 1:
        names = " or ".join(named)
        raise ValueError(f"{where}: exactly one of {names} must be given, got "
                         f"{', '.join(f'{k}={v!r}' for k, v in named.items())}")
    return given[0]
