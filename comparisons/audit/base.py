"""What every probe shares: the Finding record, the probe registry, guarded framework imports.

A probe is three small functions, one per side (``torch``, ``keras``, ``reference``), each
returning a dict of evidence (numbers the framework computed, plain JSON types), and a
``verdict(torch, keras, reference) -> (differs, reference_follows)``. The runner calls each
side separately, so a missing framework turns into ``{"skipped": reason}`` for that side only.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from comparisons.frameworks import FrameworkUnavailable, quiet_tensorflow

Evidence = dict[str, Any]
Side = Callable[[], Evidence]
Verdict = Callable[[Evidence, Evidence, Evidence], tuple]  # (differs, follows[, comparison evidence])

SIDES = ("torch", "keras", "reference")
NOT_IMPLEMENTED = "not implemented yet"


@dataclass
class Finding:
    """One probe's result; ``torch``/``keras``/``reference`` hold evidence or ``{"skipped": why}``.

    ``differs`` compares PyTorch with Keras (None when either was skipped); ``reference_follows``
    names the convention the reference takes (``torch``, ``keras``, ``both``, ``neither``, or
    :data:`NOT_IMPLEMENTED`).
    """

    id: str
    title: str
    area: str
    torch: Evidence
    keras: Evidence
    reference: Evidence
    differs: bool | None
    reference_follows: str
    advice: str
    question: str = ""
    comparison: Evidence = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Probe:
    """A registered probe: its sides and its verdict; :func:`run_probe` turns it into a Finding."""

    id: str
    title: str
    area: str
    question: str
    advice: str
    torch: Side | None
    keras: Side | None
    reference: Side | None
    verdict: Verdict


PROBES: dict[str, Probe] = {}


def probe(id: str, title: str, area: str, question: str, advice: str, *, torch: Side | None,
          keras: Side | None, reference: Side | None) -> Callable[[Verdict], Verdict]:
    """Decorator on the verdict function: registers the probe under ``id`` (ids are unique)."""

    def register(verdict: Verdict) -> Verdict:
        if id in PROBES:
            raise ValueError(f"probe: id {id!r} is registered twice")
        PROBES[id] = Probe(id, title, area, question, advice, torch, keras, reference, verdict)
        return verdict

    return register


def skipped(evidence: Evidence) -> bool:
    return "skipped" in evidence


def _side(fn: Side | None, missing: str) -> Evidence:
    if fn is None:
        return {"skipped": missing}
    try:
        evidence = fn()
    except FrameworkUnavailable as exc:
        return {"skipped": str(exc)}
    return {k: v if k.startswith("_") else jsonable(v) for k, v in evidence.items()}


def public(evidence: Evidence) -> Evidence:
    """Evidence without the private ``_``-keys (raw arrays a verdict compares across sides)."""
    return {k: v for k, v in evidence.items() if not k.startswith("_")}


def run_probe(p: Probe) -> Finding:
    """Run the three sides of ``p``, then its verdict on their evidence (skipped sides included).

    Sides may return private ``_``-keys (arrays) for the verdict; those never reach the Finding.
    """
    t = _side(p.torch, "no PyTorch equivalent")
    k = _side(p.keras, "no Keras equivalent")
    r = _side(p.reference, NOT_IMPLEMENTED)
    differs, follows_, *rest = p.verdict(t, k, r)
    if skipped(t) or skipped(k):
        differs = None
    if skipped(r):
        follows_ = NOT_IMPLEMENTED if r["skipped"] == NOT_IMPLEMENTED else "skipped"
    comparison = jsonable(rest[0]) if rest else {}
    return Finding(p.id, p.title, p.area, public(t), public(k), public(r), differs, follows_, p.advice,
                   p.question, comparison, versions())


def follows(ref: Evidence, torch: Evidence, keras: Evidence, key: str) -> str:
    """Which side's ``key`` the reference's equals: ``torch``, ``keras``, ``both`` or ``neither``."""
    if skipped(ref) or key not in ref:
        return NOT_IMPLEMENTED
    same_t = not skipped(torch) and _same(ref[key], torch.get(key))
    same_k = not skipped(keras) and _same(ref[key], keras.get(key))
    return follows_label(same_t, same_k)


def follows_label(same_as_torch: bool, same_as_keras: bool) -> str:
    """``both``, ``torch``, ``keras`` or ``neither``, from two comparisons of the reference."""
    return {(True, True): "both", (True, False): "torch", (False, True): "keras"}.get(
        (bool(same_as_torch), bool(same_as_keras)), "neither")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return b is not None and a is not None and bool(np.isclose(a, b, rtol=1e-6, atol=0.0))
    return a == b


def jsonable(value: Any) -> Any:
    """numpy scalars/arrays and tuples -> plain floats, ints, lists (so findings dump to JSON)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


# -- guarded framework imports -------------------------------------------------
def import_torch() -> ModuleType:
    """``torch``, or FrameworkUnavailable with the reason."""
    try:
        import torch
    except ImportError as exc:
        raise FrameworkUnavailable(f"torch is not installed here ({exc})") from exc
    return torch


def import_keras() -> ModuleType:
    """``keras`` on the TensorFlow backend, or FrameworkUnavailable with the reason."""
    quiet_tensorflow()
    try:
        import keras
        import tensorflow  # noqa: F401  (the backend the probes' gradient tapes use)
    except ImportError as exc:
        raise FrameworkUnavailable(f"keras/tensorflow is not installed here ({exc})") from exc
    return keras


def import_tf() -> ModuleType:
    import_keras()
    import tensorflow as tf

    return tf


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    """Versions of numpy and of each installed framework (an absent one is left out)."""
    found = {"numpy": np.__version__}
    for name, load in (("torch", import_torch), ("keras", import_keras), ("tensorflow", import_tf)):
        try:
            found[name] = load().__version__
        except FrameworkUnavailable:
            pass
    return found
