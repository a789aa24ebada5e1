"""The configurations a check runs for a layer family: the case matrix's single-layer cases of that family.

A :class:`Config` is one case of :mod:`comparisons.cases` (one layer, its options, an input shape and a seed),
optionally on tied inputs (``ties``: values drawn from {0, 1}, so max-pooling windows hold several maxima;
the matrix draws normal inputs, which never tie). Max pooling gets a tied variant of every configuration
with windows of more than one cell. Every family has a *default configuration* (every option at the reference's
default, on a batch, with the usual square kernel), first in the list; when the matrix has none, one is added.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np

import reference as ref

from .. import cases, kinds
from ..cases import Case, spec

TIED_FAMILIES = ("MaxPool2d", "AdaptiveMaxPool2d", "GlobalMaxPool2d")
UNSUPPORTED = {"Dropout": "its random mask cannot be given to another implementation"}


@dataclass(frozen=True)
class Config:
    """One configuration: ``case`` (a single-layer case), ``ties`` (tied inputs)."""

    case: Case
    ties: bool = False

    @property
    def id(self) -> str:
        return self.case.id + ("-ties" if self.ties else "")

    @property
    def kind(self) -> str:
        return self.case.specs[0].kind

    @property
    def kwargs(self) -> dict:
        """The reference constructor's keyword arguments (``impl``, ``dtype``, ``rng`` excluded)."""
        return self.case.specs[0].kwargs

    @property
    def describe(self) -> str:
        """``conv(kernel_size=3, ...); input (2, 3, 11, 10)``, with ``tied input`` when so."""
        return self.case.config + ("; tied input (values in {0, 1})" if self.ties else "")


def family_of(case: Case) -> str | None:
    """The reference class name of a single-layer case without loss, else None."""
    if len(case.specs) != 1 or case.loss:
        return None
    return kinds.kind(case.specs[0].kind).family


def reference_class(family: str):
    """The reference layer class named ``family``."""
    return getattr(ref, family)


def is_default(case: Case) -> bool:
    """Whether every option of ``case``'s layer with a default in the reference constructor is at that default."""
    family = family_of(case)
    if family is None:
        return False
    signature = inspect.signature(reference_class(family))
    for name, value in case.specs[0].kwargs.items():
        parameter = signature.parameters.get(name)
        if parameter is not None and parameter.default is not inspect.Parameter.empty and parameter.default != value:
            return False
    return True


_DEFAULTS = {  # family -> (spec, input shape) of the default configuration, used when the matrix has none
    "Conv2d": (spec("conv", in_channels=3, out_channels=4, kernel_size=3, stride=1, padding=0, dilation=1,
                    bias=True), (2, 3, 11, 10)),
    "MaxPool2d": (spec("maxpool", kernel_size=2, stride=None, padding=0), (2, 3, 9, 8)),
    "AvgPool2d": (spec("avgpool", kernel_size=2, stride=None, padding=0), (2, 3, 9, 8)),
    "Linear": (spec("linear", in_features=7, out_features=5, bias=True), (4, 7)),
    "Flatten": (spec("flatten"), (2, 3, 5, 4)),
    "ReLU": (spec("relu"), (2, 3, 5, 4)),
    "LeakyReLU": (spec("leakyrelu", negative_slope=0.01), (2, 3, 5, 4)),
    "Sigmoid": (spec("sigmoid"), (2, 3, 5, 4)),
    "Tanh": (spec("tanh"), (2, 3, 5, 4)),
    "GlobalAvgPool2d": (spec("globalavgpool"), (2, 3, 5, 4)),
}


def default_case(family: str) -> Case | None:
    """The added default configuration of ``family`` (None when there is none)."""
    if family not in _DEFAULTS:
        return None
    layer, shape = _DEFAULTS[family]
    return Case(family, f"{layer.kind}-default", (layer,), shape, seed=1000)


def _window_cells(case: Case) -> int:
    k = case.specs[0].kwargs.get("kernel_size", 2)
    return int(np.prod(k)) if not isinstance(k, int) else k * k


def _typical(family: str, case: Case) -> tuple:
    """Sort key: the most typical default configuration first (a batch, the usual square kernel)."""
    usual = _DEFAULTS.get(family, (spec("none"), ()))[0].kwargs.get("kernel_size")
    k = case.specs[0].kwargs.get("kernel_size")
    return case.single, k != usual


def configurations(family: str, max_cases: int | None = None) -> list[Config]:
    """Every configuration of ``family``, the default first; ``max_cases``: at most that many, spread evenly over
    the list (the default kept). ValueError for a family the check cannot run."""
    if family not in kinds.FAMILIES:
        raise ValueError(f"layer kind must be one of {kinds.FAMILIES}, got {family!r}")
    if family in UNSUPPORTED:
        raise ValueError(f"{family} cannot be checked: {UNSUPPORTED[family]}")
    found = [c for c in cases.all_cases() if family_of(c) == family]
    defaults = sorted((c for c in found if is_default(c)), key=lambda c: _typical(family, c))
    if (not defaults or _typical(family, defaults[0]) != (False, False)) and default_case(family) is not None:
        defaults = [default_case(family), *defaults]
        found = defaults[:1] + found
    ordered = defaults[:1] + [c for c in found if c is not (defaults[:1] or [None])[0]]
    configs = [Config(c) for c in ordered]
    if family in TIED_FAMILIES:
        configs += [Config(c, ties=True) for c in ordered if family != "MaxPool2d" or _window_cells(c) > 1]
    if max_cases is not None and len(configs) > max_cases:
        if max_cases < 1:
            raise ValueError(f"max_cases must be at least 1, got {max_cases}")
        keep = np.unique(np.linspace(0, len(configs) - 1, max_cases).round().astype(int))
        configs = [configs[i] for i in keep]
    return configs


def default_config(configs: list[Config]) -> Config | None:
    """The default configuration a check must cover: the first of :func:`configurations` when it is one."""
    return configs[0] if configs and not configs[0].ties and is_default(configs[0].case) else None
