"""Shared test helpers: a layer's gradients against finite differences; every layer kind, and a layer's
results compared with a fresh layer's."""

from __future__ import annotations

import copy
import math
import numbers

import numpy as np
import pytest

from reference import (
    GELU,
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    ConvTranspose2d,
    Dropout,
    Flatten,
    GlobalAvgPool2d,
    GlobalMaxPool2d,
    GroupNorm,
    Hardsigmoid,
    LayerNorm,
    LeakyReLU,
    Linear,
    MaxPool2d,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
    Upsample,
    gradient_errors,
    max_rel_error,
)
from reference.conv import IMPLS

# Central differences with h=1e-5 in float64: truncation error ~h^2 * |f'''| ~ 1e-10, rounding
# ~eps * |f| / h ~ 1e-10; measured normwise (max |a - n| / max |n|) so cancelling elements do not count.
GRADCHECK_TOL = 1e-8


def assert_gradients_match(layer, x: np.ndarray, rng: np.random.Generator) -> None:
    """``x`` and every parameter of ``layer`` agree with central differences to GRADCHECK_TOL."""
    dout = rng.standard_normal(layer.forward(x).shape)
    errs = gradient_errors(layer, x, dout)
    assert set(errs) == {"x", *layer.params}, f"missing gradients: {errs.keys()} vs params {list(layer.params)}"
    bad = {k: e for k, e in errs.items() if not e <= GRADCHECK_TOL}
    assert not bad, f"{layer!r}: analytic vs numerical gradient max_rel_error {bad} > {GRADCHECK_TOL}"


def assert_impls_agree(build, case, x: np.ndarray, rng: np.random.Generator, params: tuple[str, ...] = ()) -> None:
    """``build(case, "loop")`` and ``build(case, "im2col")`` agree to 1e-12 (normwise) on the output, ``dx``
    and the gradients named in ``params``."""
    loop, fast = build(case, "loop"), build(case, "im2col")
    out = loop.forward(x)
    assert max_rel_error(fast.forward(x), out) < 1e-12
    dout = rng.standard_normal(out.shape)
    assert max_rel_error(fast.backward(dout), loop.backward(dout)) < 1e-12
    for key in params:
        assert max_rel_error(fast.grads[key], loop.grads[key]) < 1e-12, key


# -- every layer kind, for the tests of the rules every layer follows (reference/layer.py) -------------
def _sequential():
    return Sequential([Conv2d(3, 4, 3, rng=0), BatchNorm2d(4), ReLU(), MaxPool2d(2), Flatten(), Linear(16, 3, rng=1)])


# name -> (build, (input shape, another input shape)); both implementations of every spatial layer
LAYER_KINDS: dict[str, tuple] = {
    **{f"Conv2d-{impl}": (lambda impl=impl: Conv2d(3, 4, 3, padding=1, impl=impl, rng=0),
                          ((2, 3, 6, 7), (1, 3, 5, 5))) for impl in IMPLS},
    **{f"Conv2d-grouped-reflect-{impl}": (lambda impl=impl: Conv2d(4, 6, (3, 2), stride=2, padding=1, groups=2,
                                                                   padding_mode="reflect", impl=impl, rng=0),
                                          ((2, 4, 7, 6), (3, 4, 5, 9))) for impl in IMPLS},
    **{f"MaxPool2d-{impl}": (lambda impl=impl: MaxPool2d(2, impl=impl), ((2, 3, 6, 6), (1, 3, 4, 8)))
       for impl in IMPLS},
    **{f"AvgPool2d-{impl}": (lambda impl=impl: AvgPool2d(3, stride=2, padding=1, impl=impl),
                             ((2, 3, 7, 6), (1, 3, 5, 5))) for impl in IMPLS},
    "AdaptiveAvgPool2d": (lambda: AdaptiveAvgPool2d((3, 2)), ((2, 3, 7, 5), (1, 3, 4, 4))),
    "AdaptiveMaxPool2d": (lambda: AdaptiveMaxPool2d(3), ((2, 3, 7, 5), (1, 3, 4, 4))),
    "GlobalAvgPool2d": (GlobalAvgPool2d, ((2, 3, 5, 4), (1, 3, 3, 3))),
    "GlobalMaxPool2d": (GlobalMaxPool2d, ((2, 3, 5, 4), (1, 3, 3, 3))),
    "BatchNorm2d": (lambda: BatchNorm2d(3), ((2, 3, 4, 5), (3, 3, 2, 2))),
    "Dropout": (lambda: Dropout(0.3, rng=0), ((2, 3, 4, 5), (1, 3, 2, 2))),
    "ReLU": (ReLU, ((2, 3, 4, 5), (1, 2, 3))),
    "LeakyReLU": (lambda: LeakyReLU(0.1), ((2, 3, 4, 5), (1, 2, 3))),
    "Sigmoid": (Sigmoid, ((2, 3, 4, 5), (1, 2, 3))),
    "Tanh": (Tanh, ((2, 3, 4, 5), (1, 2, 3))),
    "Flatten": (Flatten, ((2, 3, 4, 5), (3, 4, 5))),
    "Linear": (lambda: Linear(3 * 4 * 4, 5, rng=0), ((2, 3, 4, 4), (5, 48))),
    "Sequential": (_sequential, ((2, 3, 6, 6), (3, 3, 6, 6))),
    **{f"ConvTranspose2d-{impl}": (lambda impl=impl: ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1,
                                                                     impl=impl, rng=0), ((2, 3, 4, 5), (1, 3, 3, 3)))
       for impl in IMPLS},
    **{f"ConvTranspose2d-grouped-{impl}": (lambda impl=impl: ConvTranspose2d(4, 6, (3, 2), stride=(2, 1),
                                                                             padding=(1, 0), groups=2, dilation=2,
                                                                             impl=impl, rng=0),
                                           ((2, 4, 4, 5), (3, 4, 3, 3))) for impl in IMPLS},
    "LayerNorm": (lambda: LayerNorm((4, 5)), ((2, 3, 4, 5), (3, 4, 5))),
    "GroupNorm": (lambda: GroupNorm(3, 6), ((2, 6, 4, 5), (6, 3, 3))),
    "GELU": (GELU, ((2, 3, 4, 5), (1, 2, 3))),
    "GELU-tanh": (lambda: GELU("tanh"), ((2, 3, 4, 5), (1, 2, 3))),
    "Hardsigmoid": (Hardsigmoid, ((2, 3, 4, 5), (1, 2, 3))),
    "Softmax": (Softmax, ((2, 3, 4, 5), (3, 4, 5))),
    **{f"Upsample-{mode}-{impl}": (lambda mode=mode, impl=impl: Upsample(scale_factor=1.7, mode=mode, impl=impl),
                                   ((2, 3, 4, 5), (3, 5, 3))) for mode in ("nearest", "bilinear") for impl in IMPLS},
}
WITH_PARAMS = [name for name, (build, _) in LAYER_KINDS.items() if len(build().params)]


def leaves(layer):
    """``layer`` itself, or the layers of a Sequential, depth first."""
    if isinstance(layer, Sequential):
        for inner in layer.layers:
            yield from leaves(inner)
    else:
        yield layer


def fresh_like(build, subject):
    """A layer from ``build()`` in ``subject``'s state: its parameters, buffers, mode and random stream (copies),
    and no cache: what ``subject`` must compute like."""
    fresh = build()
    for key, value in subject.params.items():
        fresh.params[key] = np.array(value, copy=True)
    for key, value in subject.buffers.items():
        fresh.buffers[key] = np.array(value, copy=True)
    fresh.train(subject.training)
    for mine, theirs in zip(leaves(fresh), leaves(subject), strict=True):
        if isinstance(mine, Dropout):
            mine._rng = copy.deepcopy(theirs._rng)
    return fresh


def forward_backward(layer, x: np.ndarray, dout: np.ndarray | None = None):
    """``(out, dx, grads)`` of one pass (``dout`` drawn from the output's shape when None, seeded)."""
    out = layer.forward(x)
    if dout is None:
        dout = np.random.default_rng(7).standard_normal(out.shape)
    dx = layer.backward(dout)
    return out, dx, {key: np.array(value, copy=True) for key, value in layer.grads.items()}


# BLAS may pick another kernel for differently aligned buffers (a copy's), so equal computations can differ in
# the last bits: normwise 1e-13 in float64 is rounding, while a stale buffer or weight gives an O(1) error.
SAME_TOL = 1e-13


def assert_same(actual, expected, what: str = "") -> None:
    """Two results of ``forward_backward`` (or two arrays) equal to rounding."""
    if isinstance(expected, tuple):
        out, dx, grads = actual
        assert_same(out, expected[0], f"{what} output")
        assert_same(dx, expected[1], f"{what} dx")
        assert set(grads) == set(expected[2]), what
        for key in grads:
            assert_same(grads[key], expected[2][key], f"{what} grads[{key!r}]")
        return
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert max_rel_error(actual, expected) <= SAME_TOL, f"{what}: error {max_rel_error(actual, expected)}"


# -- bad arguments, refused by name ------------------------------------------------------------------------------
BAD_VALUES = ["x", "False", "", None, True, 1.5, -0.5, math.nan, math.inf, -math.inf, -1, 0, 10**24, [], [1, 2, 3],
              (1,), (2, -1), np.float64(0.5), np.bool_(True), 1 + 2j, object()]


def is_int(minimum: int):
    return lambda v: isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)) and minimum <= v < 2**31


def is_pair(minimum: int):
    one = is_int(minimum)
    return lambda v: one(v) or (isinstance(v, (tuple, list)) and len(v) == 2 and all(one(p) for p in v))


def is_real(minimum: float | None = None, strict: bool = False, maximum: float | None = None):
    def valid(v):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            return False
        return ((minimum is None or v > minimum or (v == minimum and not strict))
                and (maximum is None or v <= maximum))
    return valid


def is_bool(v) -> bool:
    return isinstance(v, (bool, np.bool_))


def assert_refused_by_name(func, kwargs: dict, arg: str, valid) -> None:
    """``func(**kwargs, arg=value)`` raises TypeError/ValueError naming ``arg`` for every value of
    :data:`BAD_VALUES` that ``valid`` rejects, and accepts the others."""
    for value in BAD_VALUES:
        if valid(value):
            func(**{**kwargs, arg: value})
            continue
        with pytest.raises((TypeError, ValueError), match=arg):
            func(**{**kwargs, arg: value})
