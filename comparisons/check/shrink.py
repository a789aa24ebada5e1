"""Shrinking a failing configuration to the smallest one that still fails, greedily (as hypothesis does).

From a failing :class:`~comparisons.check.matrix.Config`, :func:`candidates` proposes smaller ones (a batch of
1, one channel, fewer features, a smaller kernel, stride, padding or dilation, no bias, a smaller input), the
largest steps first; :func:`shrink` moves to the first candidate that still fails and starts again, until no
candidate fails or the budget of tries is spent. A candidate the reference refuses (an output of size 0,
padding larger than the window) or the target does not cover is skipped by the caller's ``still_fails``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import numpy as np

from ..cases import spec
from .matrix import Config

BUDGET = 120  # candidate configurations tried at most, per shrink


def size(config: Config) -> tuple[int, int]:
    """What shrinking lowers: the input's size, then the sum of the layer's integer options."""
    numbers = []
    for value in config.kwargs.values():
        stack = [value]
        while stack:
            v = stack.pop()
            if isinstance(v, bool):
                numbers.append(int(v))
            elif isinstance(v, int):
                numbers.append(v)
            elif isinstance(v, (tuple, list)):
                stack.extend(v)
    return int(np.prod(config.case.input_shape)), sum(numbers)


def _smaller_ints(v: int, low: int) -> list[int]:
    """``low``, ``v // 2`` and ``v - 1``, each below ``v`` and not below ``low``, the smallest first."""
    return sorted({c for c in (low, v // 2, v - 1) if low <= c < v})


def _smaller(value, low: int) -> list:
    """Smaller versions of an option: an int, a pair, or a pair of pairs (asymmetric padding)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return []
    if isinstance(value, int):
        return _smaller_ints(value, low)
    if isinstance(value, (tuple, list)):
        out = []
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value) and len(set(value)) > 1:
            out.append(type(value)([min(value)] * len(value)))
        for i, v in enumerate(value):
            for smaller in _smaller(v, low):
                out.append(type(value)([*value[:i], smaller, *value[i + 1:]]))
        return out
    return []


def _variant(config: Config, kwargs: dict, shape: tuple[int, ...]) -> Config:
    case = config.case
    cid = case.id if case.id.endswith("-shrunk") else f"{case.id}-shrunk"
    new = dataclasses.replace(case, id=cid, specs=(spec(config.kind, **kwargs),), input_shape=shape)
    return Config(new, config.ties)


def candidates(config: Config) -> Iterator[Config]:
    """Smaller configurations than ``config``, the largest steps first."""
    kw, shape = dict(config.kwargs), tuple(config.case.input_shape)
    batched = not config.case.single
    spatial = len(shape) - (1 if batched else 0) == 3
    if batched and shape[0] > 1:
        yield _variant(config, kw, (1, *shape[1:]))
    channel_axis = 1 if batched else 0
    if "in_channels" in kw and kw.get("groups", 1) == 1:
        for c in _smaller_ints(kw["in_channels"], 1):
            new_shape = list(shape)
            new_shape[channel_axis] = c
            yield _variant(config, {**kw, "in_channels": c}, tuple(new_shape))
    elif spatial and "in_channels" not in kw and shape[channel_axis] > 1:
        for c in _smaller_ints(shape[channel_axis], 1):
            new_shape = list(shape)
            new_shape[channel_axis] = c
            yield _variant(config, kw, tuple(new_shape))
    if "out_channels" in kw and kw.get("groups", 1) == 1:
        for f in _smaller_ints(kw["out_channels"], 1):
            yield _variant(config, {**kw, "out_channels": f}, shape)
    if "in_features" in kw:
        for d in _smaller_ints(kw["in_features"], 1):
            yield _variant(config, {**kw, "in_features": d}, (*shape[:-1], d))
    if "out_features" in kw:
        for m in _smaller_ints(kw["out_features"], 1):
            yield _variant(config, {**kw, "out_features": m}, shape)
    for name, low in (("kernel_size", 1), ("stride", 1), ("padding", 0), ("dilation", 1)):
        if name in kw:
            for value in _smaller(kw[name], low):
                yield _variant(config, {**kw, name: value}, shape)
    for name in ("kernel_size", "stride", "padding", "dilation"):  # (3, 3) reads 3: simpler, same size
        value = kw.get(name)
        if isinstance(value, tuple) and len(value) == 2 and value[0] == value[1] and isinstance(value[0], int):
            yield _variant(config, {**kw, name: value[0]}, shape)
    if kw.get("bias") is True:
        yield _variant(config, {**kw, "bias": False}, shape)
    if spatial:
        for axis in (len(shape) - 2, len(shape) - 1):
            for n in _smaller_ints(shape[axis], 1):
                new_shape = list(shape)
                new_shape[axis] = n
                yield _variant(config, kw, tuple(new_shape))


def shrink(config: Config, still_fails: Callable[[Config], bool], budget: int = BUDGET) -> Config:
    """The smallest configuration found from ``config`` for which ``still_fails`` holds (``config`` itself when
    none is smaller)."""
    current, tries = config, 0
    while tries < budget:
        for candidate in candidates(current):
            tries += 1
            if still_fails(candidate):
                current = candidate
                break
            if tries >= budget:
                return current
        else:
            return current
    return current


def smallest(configs: list[Config]) -> Config:
    """The smallest of ``configs`` by :func:`size`."""
    return min(configs, key=size)
