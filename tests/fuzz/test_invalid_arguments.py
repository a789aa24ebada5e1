"""Invalid arguments to every public constructor and function: a TypeError or ValueError (``DataError`` for the
data functions) whose message names the argument, never another exception and never a silent acceptance.

Table-driven: :data:`TABLE` lists ``(callable, valid kwargs, argument, kind, input)``, one row per argument of
every name in ``reference.__all__`` that takes arguments one can get wrong (and the documented
``comparisons.layouts`` helpers); :data:`bad_values` is the one strategy of values to try (wrong types, nan,
inf, negative, zero, huge ints, lists of the wrong length, numpy scalars, "False"). :data:`KINDS` says which of
them are valid for an argument: those must be accepted (a numpy integer where an int is asked), the others
refused. Ints beyond 2**31 - 1 are either: accepted, or refused naming the argument, never a MemoryError or an
OverflowError. A layer that accepts a value must then run a forward and backward on a small valid ``input``
(or refuse that input with a TypeError/ValueError). Calls run under an address-space cap, so that a huge size
fails as a MemoryError instead of exhausting the machine.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import resource

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import reference as ref
from comparisons import layouts
from tests.fuzz.budget import examples, tally

BIG = 2**31 - 1


def _int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def _real(v) -> bool:
    if isinstance(v, np.ndarray) and v.ndim == 0 and v.dtype.kind in "iuf":  # a 0-d array holds a number
        v = v[()]
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) and math.isfinite(v)


def _pair(ok):
    return lambda v: ok(v) or (isinstance(v, (tuple, list)) and len(v) == 2 and all(ok(p) for p in v))


def _dtype(v) -> bool:
    try:
        return np.dtype(v) in (np.dtype(np.float32), np.dtype(np.float64))
    except TypeError:
        return False


KINDS = {  # kind -> is the value valid
    "int>=1": lambda v: _int(v) and v >= 1,
    "int>=0": lambda v: _int(v) and v >= 0,
    "int": _int,
    "pair>=1": _pair(lambda v: _int(v) and v >= 1),
    "pair>=0": _pair(lambda v: _int(v) and v >= 0),
    "pool-padding": _pair(lambda v: _int(v) and 0 <= v <= 1),  # kernel 3: at most half of it
    "stride-or-none": lambda v: v is None or _pair(lambda p: _int(p) and p >= 1)(v),
    "conv-padding": lambda v: v in ("same", "valid") if isinstance(v, str) else _pair(lambda p: _int(p) and p >= 0)(v),
    "bool": lambda v: isinstance(v, (bool, np.bool_)),
    "impl": lambda v: isinstance(v, str) and v in ("loop", "im2col"),
    "padding_mode": lambda v: isinstance(v, str) and v in ("zeros", "reflect", "replicate", "circular"),
    "reduction": lambda v: isinstance(v, str) and v in ("mean", "sum", "none"),
    "dataset": lambda v: isinstance(v, str) and v in ("mnist", "fashion-mnist"),
    "fraction": lambda v: _real(v) and 0 <= v <= 1,
    "fraction<1": lambda v: _real(v) and 0 <= v < 1,
    "real": _real,
    "real>0": lambda v: _real(v) and v > 0,
    "real>=0": lambda v: _real(v) and v >= 0,
    "dtype": _dtype,
    "output_size": (
        lambda v: (_int(v) and v >= 1) or (isinstance(v, (tuple, list)) and len(v) == 2
                                             and all(p is None or (_int(p) and p >= 1) for p in v))),
    "groups": lambda v: _int(v) and v in (1, 2),  # 2 channels in and out
    "divisor": lambda v: v is None or (_int(v) and v != 0),
    "betas": lambda v: isinstance(v, (tuple, list)) and len(v) == 2 and all(_real(b) and 0 <= b < 1 for b in v),
    "layers": lambda v: isinstance(v, (list, tuple)) and all(isinstance(x, ref.Layer) for x in v),
    "output-padding": _pair(lambda v: _int(v) and 0 <= v < 2),  # stride 2: smaller than the stride
    "scale": _pair(lambda v: _real(v) and v > 0),
    "resize-mode": lambda v: isinstance(v, str) and v in ("nearest", "nearest-exact", "bilinear"),
    "optional-bool": lambda v: v is None or isinstance(v, (bool, np.bool_)),
    "gelu": lambda v: isinstance(v, str) and v in ("none", "tanh"),
    "dim": lambda v: _int(v) and -4 <= v < 4,
    "norm-type": lambda v: _real(v) and v > 0 or v == math.inf or (isinstance(v, np.ndarray) and v.ndim == 0
                                                                   and v.dtype.kind in "iuf" and v[()] == math.inf),
    "threads": lambda v: v is None or (_int(v) and v >= 1),
    "clip-epsilon": lambda v: v is None or (_real(v) and 0 < v < 0.5),
    "axis": lambda v: _int(v) and -2 <= v < 2,
    # the loss's upstream gradient is data, like dout: nan and inf propagate into dscores, as in PyTorch
    "dloss": lambda v: v is None or (isinstance(v, (numbers.Real, np.ndarray)) and np.ndim(v) == 0
                                     and not isinstance(v, (bool, np.bool_)) and np.asarray(v).dtype.kind in "iuf"),
}


def _huge(v) -> bool:
    values = v if isinstance(v, (tuple, list)) else (v,)
    return any(_int(p) and abs(int(p)) > BIG for p in values)


X4 = np.linspace(-1, 1, 2 * 2 * 5 * 5).reshape(2, 2, 5, 5)
SCORES, LABELS = np.linspace(-1, 1, 6).reshape(2, 3), np.array([0, 2])
PROBS, BINARY = np.array([0.25, 0.5, 0.75]), np.array([0.0, 1.0, 1.0])
PARAMS = {"w": np.zeros(3)}


def _set_threads_once(**kw):
    """``reference.set_num_threads(**kw)``, then the default again (the setting is process-wide)."""
    try:
        ref.set_num_threads(**kw)
    finally:
        ref.set_num_threads(None)


def _ce(**kw):
    return ref.softmax_cross_entropy(SCORES, LABELS, **kw)


TABLE = [  # (name, callable, valid kwargs, argument, kind, input for a layer's forward or None)
    *[("Conv2d", ref.Conv2d, {"in_channels": 2, "out_channels": 2, "kernel_size": 3}, arg, kind, X4) for arg, kind in [
        ("in_channels", "int>=1"), ("out_channels", "int>=1"), ("kernel_size", "pair>=1"), ("stride", "pair>=1"),
        ("padding", "conv-padding"), ("dilation", "pair>=1"), ("bias", "bool"), ("impl", "impl"), ("dtype", "dtype"),
        ("groups", "groups"), ("padding_mode", "padding_mode")]],
    *[("MaxPool2d", ref.MaxPool2d, {"kernel_size": 3}, arg, kind, X4) for arg, kind in [
        ("kernel_size", "pair>=1"), ("stride", "stride-or-none"), ("padding", "pool-padding"), ("impl", "impl"),
        ("dilation", "pair>=1"), ("return_indices", "bool"), ("ceil_mode", "bool")]],
    *[("AvgPool2d", ref.AvgPool2d, {"kernel_size": 3}, arg, kind, X4) for arg, kind in [
        ("kernel_size", "pair>=1"), ("stride", "stride-or-none"), ("padding", "pool-padding"), ("impl", "impl"),
        ("ceil_mode", "bool"), ("count_include_pad", "bool"), ("divisor_override", "divisor")]],
    ("AdaptiveAvgPool2d", ref.AdaptiveAvgPool2d, {"output_size": 2}, "output_size", "output_size", X4),
    ("AdaptiveMaxPool2d", ref.AdaptiveMaxPool2d, {"output_size": 2}, "output_size", "output_size", X4),
    ("AdaptiveMaxPool2d", ref.AdaptiveMaxPool2d, {"output_size": 2}, "return_indices", "bool", X4),
    ("GlobalAvgPool2d", ref.GlobalAvgPool2d, {}, "impl", "impl", X4),
    *[("BatchNorm2d", ref.BatchNorm2d, {"num_features": 2}, arg, kind, X4) for arg, kind in [
        ("num_features", "int>=1"), ("eps", "real>0"), ("momentum", "fraction"), ("unbiased_running_var", "bool"),
        ("dtype", "dtype")]],
    ("Dropout", ref.Dropout, {}, "p", "fraction", X4),
    *[("Linear", ref.Linear, {"in_features": 50, "out_features": 2}, arg, kind, X4) for arg, kind in [
        ("in_features", "int>=1"), ("out_features", "int>=1"), ("bias", "bool"), ("dtype", "dtype")]],
    ("LeakyReLU", ref.LeakyReLU, {}, "negative_slope", "real", X4),
    ("Sequential", ref.Sequential, {"layers": [ref.ReLU()]}, "layers", "layers", X4),
    *[("softmax_cross_entropy", _ce, {}, arg, kind, None) for arg, kind in [
        ("ignore_index", "int"), ("reduction", "reduction"), ("label_smoothing", "fraction"), ("dloss", "dloss")]],
    ("log_softmax", lambda **kw: ref.log_softmax(SCORES, **kw), {}, "axis", "axis", None),
    *[("SGD", lambda **kw: ref.SGD(PARAMS, **kw), {"lr": 0.1}, arg, kind, None) for arg, kind in [
        ("lr", "real>0"), ("momentum", "real>=0"), ("weight_decay", "real>=0")]],
    ("SGD", lambda **kw: ref.SGD(PARAMS, **kw), {"lr": 0.1, "momentum": 0.9}, "nesterov", "bool", None),
    *[("Adam", lambda **kw: ref.Adam(PARAMS, **kw), {}, arg, kind, None) for arg, kind in [
        ("lr", "real>0"), ("betas", "betas"), ("eps", "real>=0"), ("eps_hat", "bool")]],
    *[("ConvTranspose2d", ref.ConvTranspose2d, {"in_channels": 2, "out_channels": 2, "kernel_size": 3, "stride": 2},
       arg, kind, X4) for arg, kind in [
        ("in_channels", "int>=1"), ("out_channels", "int>=1"), ("kernel_size", "pair>=1"), ("padding", "pair>=0"),
        ("output_padding", "output-padding"), ("groups", "groups"), ("bias", "bool"), ("dilation", "pair>=1"),
        ("impl", "impl"), ("dtype", "dtype")]],
    *[("Upsample", ref.Upsample, {"scale_factor": 2, "mode": "bilinear"}, arg, kind, X4) for arg, kind in [
        ("scale_factor", "scale"), ("mode", "resize-mode"), ("align_corners", "optional-bool"),
        ("recompute_scale_factor", "optional-bool"), ("impl", "impl")]],
    ("Upsample", ref.Upsample, {"size": 4}, "size", "pair>=1", X4),
    *[("LayerNorm", ref.LayerNorm, {"normalized_shape": (5, 5)}, arg, kind, X4) for arg, kind in [
        ("eps", "real>0"), ("elementwise_affine", "bool"), ("bias", "bool"), ("dtype", "dtype")]],
    *[("GroupNorm", ref.GroupNorm, {"num_groups": 1, "num_channels": 2}, arg, kind, X4) for arg, kind in [
        ("num_groups", "groups"), ("eps", "real>0"), ("affine", "bool"), ("dtype", "dtype")]],
    ("GELU", ref.GELU, {}, "approximate", "gelu", X4),
    ("Softmax", ref.Softmax, {}, "dim", "dim", X4),
    ("Hardsigmoid", ref.Hardsigmoid, {}, "float32_slope", "bool", X4),
    *[("binary_cross_entropy", lambda **kw: ref.binary_cross_entropy(PROBS, BINARY, **kw), {}, arg, kind, None)
      for arg, kind in [("reduction", "reduction"), ("dloss", "dloss"), ("clip_epsilon", "clip-epsilon")]],
    *[("binary_cross_entropy_with_logits", lambda **kw: ref.binary_cross_entropy_with_logits(PROBS, BINARY, **kw),
       {}, arg, kind, None) for arg, kind in [("reduction", "reduction"), ("dloss", "dloss")]],
    *[("RMSprop", lambda **kw: ref.RMSprop(PARAMS, **kw), {}, arg, kind, None) for arg, kind in [
        ("lr", "real>0"), ("alpha", "fraction"), ("eps", "real>=0"), ("weight_decay", "real>=0"),
        ("momentum", "real>=0"), ("centered", "bool"), ("eps_in_sqrt", "bool"), ("momentum_holds_lr", "bool")]],
    *[("Adagrad", lambda **kw: ref.Adagrad(PARAMS, **kw), {}, arg, kind, None) for arg, kind in [
        ("lr", "real>0"), ("lr_decay", "real>=0"), ("weight_decay", "real>=0"),
        ("initial_accumulator_value", "real>=0"), ("eps", "real>=0"), ("eps_in_sqrt", "bool")]],
    *[("AdamW", lambda **kw: ref.AdamW(PARAMS, **kw), {}, arg, kind, None) for arg, kind in [
        ("lr", "real>0"), ("betas", "betas"), ("eps", "real>=0"), ("weight_decay", "real>=0"), ("eps_hat", "bool")]],
    *[("clip_grad_norm", lambda **kw: ref.clip_grad_norm({"w": np.ones(3)}, **kw), {"max_norm": 1.0}, arg, kind,
       None) for arg, kind in [("max_norm", "real>=0"), ("norm_type", "norm-type"), ("per_array", "bool"),
                               ("norm_eps", "real>=0")]],
    ("clip_grad_value", lambda **kw: ref.clip_grad_value({"w": np.ones(3)}, **kw), {"clip_value": 1.0}, "clip_value",
     "real>=0", None),
    ("set_num_threads", _set_threads_once, {"threads": 2}, "threads", "threads", None),
    ("load_dataset", lambda **kw: ref.load_dataset(data_dir="/nonexistent/cnnref-fuzz", **kw), {}, "dataset",
     "dataset", None),
    ("load_dataset", lambda **kw: ref.load_dataset(data_dir="/nonexistent/cnnref-fuzz", **kw), {},
     "download_missing", "bool", None),
    *[("layouts.keras_same_padding", layouts.keras_same_padding, {"size": (5, 5), "kernel": 3}, arg, "pair>=1", None)
      for arg in ("size", "kernel", "stride", "dilation")],
    ("layouts.padding_to_keras", layouts.padding_to_keras, {"padding": 1}, "padding", "pair>=0", None),
]

bad_values = st.sampled_from([
    "x", "False", "2", "", None, True, False, 1.5, 2.0, -0.5, math.nan, math.inf, -math.inf, -1, 0, 1, 2, 10**24,
    2**31, -(2**31), [], [1, 2, 3], (1,), (2, 2), [2, None], (2, -1), (1.5, 2), np.int64(2), np.int32(-1),
    np.uint8(3), np.float64(0.5), np.float32(1.0), np.bool_(True), np.array(2), 1 + 2j, object(), b"2"])

ALLOWED = (TypeError, ValueError)


@contextlib.contextmanager
def memory_cap(extra: int = 1 << 30):
    """At most ``extra`` more bytes of address space while inside (a huge size raises MemoryError)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as f:
        used = int(f.read().split()[0]) * resource.getpagesize()
    cap = used + extra if hard == resource.RLIM_INFINITY else min(hard, used + extra)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def check(func, kwargs: dict, arg: str, kind: str, x, value) -> None:
    """The contract of the module docstring for ``func(**kwargs, arg=value)``."""
    valid, huge = KINDS[kind](value), _huge(value)
    call = {**kwargs, arg: value}
    try:
        with memory_cap():
            made = func(**call)
    except ALLOWED as exc:
        if valid and isinstance(exc, ref.DataError):  # the arguments passed: load_dataset found no files, as expected
            assert "not found" in str(exc), exc
            return
        if valid and not huge:
            raise AssertionError(f"{arg}={value!r} is valid but was refused: {exc!r}") from exc
        assert arg in str(exc) or arg.split("_")[0] in str(exc), f"the message does not name {arg!r}: {exc!r}"
        return
    except Exception as exc:  # noqa: BLE001 - any other exception is the defect being looked for
        raise AssertionError(f"{arg}={value!r} raised {type(exc).__name__}: {exc}") from exc
    assert valid or huge, f"{arg}={value!r} ({type(value).__name__}) is invalid but was accepted"
    if isinstance(made, ref.Layer) and x is not None:
        try:
            with memory_cap():
                out = made.forward(x)
                out = out[0] if isinstance(out, tuple) else out
                made.backward(np.ones_like(out))
        except ALLOWED:
            pass
        except Exception as exc:  # noqa: BLE001
            raise AssertionError(f"after {arg}={value!r}: forward/backward raised {type(exc).__name__}: {exc}") from exc


# Rows that fail today, with the defect (the lead removes these once fixed)
KNOWN: dict[tuple[str, str], str] = {}  # (name, argument) -> a defect still open; none today


def _params():
    for name, func, kwargs, arg, kind, x in TABLE:
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN[(name, arg)])] if (name, arg) in KNOWN else []
        yield pytest.param(func, kwargs, arg, kind, x, id=f"{name}-{arg}", marks=marks)


def test_valid_kwargs_are_valid():
    """Every row's valid kwargs construct (and run) without error: the table itself is right."""
    for name, func, kwargs, _, _, x in TABLE:
        try:
            made = func(**kwargs)
        except ref.DataError:  # load_dataset: no files in the folder given, the refusal expected
            assert name == "load_dataset"
            continue
        if isinstance(made, ref.Layer) and x is not None:
            out = made.forward(x)
            made.backward(np.ones_like(out[0] if isinstance(out, tuple) else out))


@pytest.mark.parametrize("func, kwargs, arg, kind, x", list(_params()))
@examples(40)
@given(value=bad_values)
def test_invalid_argument_is_refused_by_name(func, kwargs, arg, kind, x, value):
    with tally("invalid arguments"):
        check(func, kwargs, arg, kind, x, value)
