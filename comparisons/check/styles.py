"""How a target is driven: the layer protocol, and the attribute mapping (styles without code).

Every style turns a target and one configuration (the reference constructor's keyword arguments) into a
:class:`Subject`: an object with the layer protocol the check drives, ``params`` (a dict the check fills with
the reference's values; they reach the target before each forward), ``forward(x)``, ``backward(dout) -> dx``
and ``grads``. A configuration the style or the target cannot express raises :class:`NotCovered`.

Styles: :class:`ClassStyle` (``NAME(**kwargs)``, ``params``/``grads`` dicts keyed like the reference),
:class:`AttributeStyle` (the same, parameters and gradients in attributes named by a mapping),
:class:`comparisons.check.cs231n.FunctionsStyle` (CS231n function pairs) and
:class:`comparisons.check.tutorial.TutorialStyle` (the tutorial's classes as published).
"""

from __future__ import annotations

import numpy as np

BUILD_REFUSALS = (TypeError, ValueError, NotImplementedError)  # from a constructor: "not covered"
NEVER_PASSED = ("impl", "dtype", "rng")  # reference keywords that are the check's business, not the target's


class NotCovered(NotImplementedError):
    """The target (or its style) does not support a configuration: listed as not covered, never a failure."""


def require(kwargs: dict, name: str, allowed, style: str) -> None:
    """Raise :class:`NotCovered` unless ``kwargs[name]`` (absent: the first allowed value) is one of ``allowed``."""
    value = kwargs.get(name, allowed[0])
    if value not in allowed:
        raise NotCovered(f"{style}: {name}={value!r} (the style has {name} in {list(allowed)})")


def single(value, name: str, style: str):
    """``3`` or ``(3, 3)`` -> ``3``; a pair with two different entries is :class:`NotCovered`."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2 or value[0] != value[1] or isinstance(value[0], (tuple, list)):
            raise NotCovered(f"{style}: {name}={value!r} (the style takes one value for both axes)")
        return value[0]
    return value


class Subject:
    """A built target behind the protocol the check drives (see the module docstring)."""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray):  # pragma: no cover - interface
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


def construct(target, kwargs: dict):
    """``target(**kwargs)``; a TypeError, ValueError or NotImplementedError from it is :class:`NotCovered`."""
    try:
        return target(**kwargs)
    except BUILD_REFUSALS as exc:
        raise NotCovered(f"constructor raised {type(exc).__name__}: {exc}") from exc


def import_lines(target, spec: str | None = None) -> list[str]:
    """Lines that bind the target's name in a reproducer (``spec``: the TARGET string it was loaded from)."""
    name = getattr(target, "__name__", "target")
    if isinstance(spec, str) and spec.rpartition(":")[0].endswith(".py"):
        return ["from comparisons.check.targets import load", f"{name} = load({spec!r})"]
    module = getattr(target, "__module__", None)
    return [f"from {module} import {name}"] if module else [f"{name} = ...  # your layer"]


class _ObjectSubject(Subject):
    """A target instance whose parameters are put in and gradients read out by two functions."""

    def __init__(self, obj, put, take) -> None:
        super().__init__()
        self.obj, self._put, self._take = obj, put, take

    def forward(self, x):
        for key, value in self.params.items():
            self._put(self.obj, key, np.array(value))  # a copy: the target may keep or change it
        return self.obj.forward(x)

    def backward(self, dout):
        dx = self.obj.backward(dout)
        self.grads = {key: self._take(self.obj, key) for key in self.params}
        return dx


def _put_entry(obj, key, value):
    store = getattr(obj, "params", None)
    if not isinstance(store, dict):
        raise TypeError(f"the layer has no params dict to put {key!r} in (params is {type(store).__name__})")
    store[key] = value


def _take_entry(obj, key):
    store = getattr(obj, "grads", None)
    if not isinstance(store, dict) or key not in store:
        have = sorted(store) if isinstance(store, dict) else type(store).__name__
        raise KeyError(f"after backward, grads has no {key!r} (it has {have})")
    return store[key]


class ClassStyle:
    """``NAME(**kwargs)`` with the reference's keyword names; ``params``/``grads`` dicts keyed like the reference
    (``"weight"``, ``"bias"``); ``forward(x)``, ``backward(dout) -> dx``."""

    name = "class"

    def __init__(self, target, spec: str | None = None) -> None:
        self.target, self.spec = target, spec

    def build(self, family: str, kwargs: dict) -> Subject:
        return _ObjectSubject(construct(self.target, kwargs), _put_entry, _take_entry)

    def reproducer(self, family: str, kwargs: dict) -> list[str]:
        """Lines computing ``out``, ``dx``, ``grads`` from ``x``, ``dout``, ``params`` with the target."""
        name = getattr(self.target, "__name__", "target")
        return [*import_lines(self.target, self.spec), f"layer = {name}(**{kwargs!r})", "layer.params.update(params)",
                "out = layer.forward(x)", "dx = layer.backward(dout)", "grads = dict(layer.grads)"]


def parse_mapping(pairs, what: str) -> dict[str, str]:
    """``["weight=W", "bias=b"]`` -> ``{"weight": "W", "bias": "b"}``; ValueError naming a malformed pair."""
    out = {}
    for pair in pairs or ():
        key, sep, attr = str(pair).partition("=")
        if not sep or not key.strip() or not attr.strip().isidentifier():
            raise ValueError(f"{what}: expected REFERENCE_KEY=ATTRIBUTE (e.g. weight=W), got {pair!r}")
        out[key.strip()] = attr.strip()
    return out


class AttributeStyle:
    """As :class:`ClassStyle`, but each parameter is the attribute ``params[key]`` names (``weight -> W``) and
    its gradient the attribute ``grads[key]`` names (``weight -> dW``), after ``backward``."""

    name = "attributes"

    def __init__(self, target, params: dict[str, str], grads: dict[str, str], spec: str | None = None) -> None:
        missing = sorted(set(params) ^ set(grads))
        if missing:
            raise ValueError(f"attribute style: every --param needs a --grad and back; unmatched keys {missing}")
        self.target, self.params, self.grads, self.spec = target, params, grads, spec

    def _attr(self, mapping: dict, key: str, what: str) -> str:
        if key not in mapping:
            raise KeyError(f"no --{what} {key}=ATTRIBUTE given (the reference layer has {key!r})")
        return mapping[key]

    def build(self, family: str, kwargs: dict) -> Subject:
        return _ObjectSubject(construct(self.target, kwargs),
                              lambda obj, key, value: setattr(obj, self._attr(self.params, key, "param"), value),
                              lambda obj, key: getattr(obj, self._attr(self.grads, key, "grad")))

    def reproducer(self, family: str, kwargs: dict) -> list[str]:
        name = getattr(self.target, "__name__", "target")
        return [*import_lines(self.target, self.spec), f"layer = {name}(**{kwargs!r})",
                f"for key, attr in {self.params!r}.items():", "    if key in params:",
                "        setattr(layer, attr, params[key])", "out = layer.forward(x)", "dx = layer.backward(dout)",
                f"grads = {{key: getattr(layer, attr) for key, attr in {self.grads!r}.items() if key in params}}"]
