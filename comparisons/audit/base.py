"""What every probe shares: the Finding record, the probe registry, the verdicts, guarded framework imports.

A probe is small functions, one per side: one per framework it probes (``frameworks={"torch": fn,
"keras": fn}``, names from the registry :data:`comparisons.frameworks.NAMES` or any other) and one for
the ``reference``, each returning a dict of evidence (numbers the framework computed, plain JSON types),
and a verdict ``verdict(evidence, reference) -> Decision``, where ``evidence`` maps every framework side
to its evidence (or ``{"skipped": why}``). The runner calls each side separately, so a missing framework
turns into ``{"skipped": reason}`` for that side only.

A verdict says which frameworks agree with each other (:class:`Decision` ``groups``) and which ones the
reference matches (``reference_follows``); :func:`decide` computes both from a pairwise comparison of two
sides' evidence, and :func:`compare_key` builds the verdict of the probes that compare one or a few keys.
``differs`` is derived: true when the frameworks that ran fall into more than one group, None when fewer
than two ran.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from comparisons import frameworks as registry
from comparisons.frameworks import FrameworkUnavailable

Evidence = dict[str, Any]
Side = Callable[[], Evidence]
Key = str | tuple[str, ...] | Callable[[Evidence], Any]  # a key, a path into nested evidence, or an extractor
Same = Callable[[Evidence, Evidence], bool]
Equal = Callable[[Any, Any], bool]

NOT_IMPLEMENTED = "not implemented yet"
SKIPPED = "skipped"


@dataclass(frozen=True)
class Decision:
    """What a verdict decides: ``groups``, the frameworks that agree with each other (None when fewer than
    two ran); ``reference_follows``, the frameworks whose convention the reference matches (``[]`` for
    none); ``comparison``, cross-side evidence (a difference between two sides' outputs)."""

    groups: list[list[str]] | None
    reference_follows: list[str]
    comparison: Evidence = field(default_factory=dict)

    @property
    def differs(self) -> bool | None:
        return None if self.groups is None else len(self.groups) > 1


Verdict = Callable[[dict[str, Evidence], Evidence], Decision]


@dataclass
class Finding:
    """One probe's result.

    ``frameworks`` maps each framework the probe names to its evidence or ``{"skipped": why}``;
    ``reference`` is the reference's. ``differs`` is true when two frameworks that ran disagree (None
    when fewer than two ran), ``groups`` lists the frameworks that agree with each other;
    ``reference_follows`` lists the frameworks whose convention the reference takes (``[]`` for none),
    or is :data:`NOT_IMPLEMENTED` / ``"skipped"`` when the reference side did not run.
    """

    id: str
    title: str
    area: str
    frameworks: dict[str, Evidence]
    reference: Evidence
    differs: bool | None
    groups: list[list[str]] | None
    reference_follows: list[str] | str
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
    frameworks: Mapping[str, Side]
    reference: Side | None
    verdict: Verdict


PROBES: dict[str, Probe] = {}


def probe(id: str, title: str, area: str, question: str, advice: str, *, frameworks: Mapping[str, Side],
          reference: Side | None, verdict: Verdict | None = None):
    """Register the probe ``id`` (ids are unique) with a side per framework and the reference's.

    With ``verdict`` (e.g. ``verdict=compare_key("pad")``) it registers at once and returns the Probe;
    without, it is a decorator on the verdict function (which it returns unchanged).
    """
    if not frameworks:
        raise ValueError(f"probe {id!r}: name at least one framework side")

    def register(fn: Verdict) -> Verdict:
        if id in PROBES:
            raise ValueError(f"probe: id {id!r} is registered twice")
        PROBES[id] = Probe(id, title, area, question, advice, dict(frameworks), reference, fn)
        return fn

    if verdict is not None:
        register(verdict)
        return PROBES[id]
    return register


def skipped(evidence: Evidence) -> bool:
    return "skipped" in evidence


def ran(evidence: Mapping[str, Evidence]) -> dict[str, Evidence]:
    """The framework sides that were not skipped, in their order."""
    return {name: e for name, e in evidence.items() if not skipped(e)}


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


def framework_order(names) -> list[str]:
    """``names`` in the registry's order (:data:`comparisons.frameworks.NAMES`), unregistered ones after it
    in their given order."""
    names = list(dict.fromkeys(names))
    return [n for n in registry.NAMES if n in names] + [n for n in names if n not in registry.NAMES]


def run_probe(p: Probe) -> Finding:
    """Run every side of ``p``, then its verdict on their evidence (skipped sides included).

    Sides may return private ``_``-keys (arrays) for the verdict; those never reach the Finding.
    """
    evidence = {name: _side(p.frameworks[name], f"no {name} equivalent") for name in framework_order(p.frameworks)}
    r = _side(p.reference, NOT_IMPLEMENTED)
    decision = p.verdict(evidence, r)
    follows_: list[str] | str = framework_order(decision.reference_follows)
    if skipped(r):
        follows_ = NOT_IMPLEMENTED if r["skipped"] == NOT_IMPLEMENTED else SKIPPED
    return Finding(p.id, p.title, p.area, {name: public(e) for name, e in evidence.items()}, public(r),
                   decision.differs, decision.groups, follows_, p.advice, p.question, jsonable(decision.comparison),
                   versions())


# -- verdicts ------------------------------------------------------------------
def agreement(evidence: Mapping[str, Evidence], same: Same) -> list[list[str]] | None:
    """The frameworks that ran, grouped by ``same`` (each joins the first group whose first member it
    matches); None when fewer than two ran."""
    sides = ran(evidence)
    if len(sides) < 2:
        return None
    groups: list[list[str]] = []
    for name, e in sides.items():
        for group in groups:
            if same(sides[group[0]], e):
                group.append(name)
                break
        else:
            groups.append([name])
    return groups


def matching(reference: Evidence, evidence: Mapping[str, Evidence], same: Same) -> list[str]:
    """The frameworks that ran whose evidence the reference's matches by ``same(reference, theirs)``."""
    if skipped(reference):
        return []
    return [name for name, e in ran(evidence).items() if same(reference, e)]


def decide(evidence: Mapping[str, Evidence], reference: Evidence, same: Same, reference_same: Same | None = None,
           comparison: Evidence | None = None) -> Decision:
    """The :class:`Decision` from a pairwise comparison of two sides' evidence: ``same`` between frameworks,
    ``reference_same(reference, framework)`` (``same`` when not given) for the reference."""
    return Decision(agreement(evidence, same), matching(reference, evidence, reference_same or same),
                    comparison or {})


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()  # a compared key a side did not report: it agrees with nothing


def value(evidence: Evidence, key: Key) -> Any:
    """``evidence[key]``; a tuple key is a path into nested dicts, a callable extracts; :data:`MISSING`
    when absent."""
    if callable(key):
        return key(evidence)
    node: Any = evidence
    for part in (key,) if isinstance(key, str) else key:
        if not isinstance(node, dict) or part not in node:
            return MISSING
        node = node[part]
    return node


def exact(a: Any, b: Any) -> bool:
    """Equal as JSON values (lists of floats element by element, exactly)."""
    return a == b


def close(a: Any, b: Any) -> bool:
    """Floats to 1e-6 relative (the reference computes in float64 where frameworks often use float32),
    anything else exactly."""
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and bool(np.isclose(a, b, rtol=1e-6, atol=0.0))
    return a == b


def compare_key(*keys: Key, equal: Equal = exact, reference_keys: tuple[Key, ...] | None = None,
                reference_equal: Equal = close,
                comparison: Callable[[dict[str, Evidence], Evidence], Evidence] | None = None) -> Verdict:
    """The verdict of a probe whose frameworks agree when every one of ``keys`` is ``equal`` on both sides,
    and whose reference follows a framework when every one of ``reference_keys`` (default ``keys``) is
    ``reference_equal`` (default :func:`close`). A key a side did not report agrees with nothing.
    ``comparison(evidence, reference)`` adds cross-side evidence."""
    if not keys:
        raise ValueError("compare_key: name at least one key")
    ref_keys = keys if reference_keys is None else reference_keys

    def agree(keys_: tuple[Key, ...], eq: Equal) -> Same:
        def same(a: Evidence, b: Evidence) -> bool:
            for key in keys_:
                va, vb = value(a, key), value(b, key)
                if va is MISSING or vb is MISSING or not eq(va, vb):
                    return False
            return True

        return same

    def verdict(evidence: dict[str, Evidence], reference: Evidence) -> Decision:
        return decide(evidence, reference, agree(keys, equal), agree(ref_keys, reference_equal),
                      comparison(evidence, reference) if comparison else None)

    return verdict


def pairs(names) -> list[tuple[str, str]]:
    """Every unordered pair of ``names``, in order: for cross-framework comparisons."""
    names = list(names)
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]


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
    """``keras`` on the TensorFlow backend, with the registry's comparison settings (set before the
    import), or FrameworkUnavailable with the reason."""
    registry.prepare("keras", "compare")
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


def _import_jax(package: str) -> ModuleType:
    """``jax.numpy``, once ``package`` (``flax.nnx``, ``optax``) imports, with the registry's comparison settings for
    ``jax`` (x64 on, set before the first import); FrameworkUnavailable with the reason otherwise, and when JAX
    was imported earlier without x64 (float64 would silently be float32)."""
    registry.prepare("jax", "compare")
    try:
        import jax
        import jax.numpy as jnp

        importlib.import_module(package)
    except ImportError as exc:
        raise FrameworkUnavailable(f"jax/{package} is not installed here ({exc})") from exc
    if not jax.config.jax_enable_x64:
        raise FrameworkUnavailable("jax was imported in this process without JAX_ENABLE_X64=1: the float64 "
                                   "probes need frameworks.prepare('jax', 'compare') before the first import")
    return jnp


def import_nnx():
    """``(jax.numpy, flax.nnx)``: see :func:`_import_jax`."""
    jnp = _import_jax("flax.nnx")
    from flax import nnx

    return jnp, nnx


def import_optax():
    """``(jax.numpy, optax)``: see :func:`_import_jax`."""
    jnp = _import_jax("optax")
    import optax

    return jnp, optax


# the guarded import of each framework a probe side can ask for
IMPORTERS: dict[str, Callable[[], ModuleType]] = {"torch": import_torch, "keras": import_keras}


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    """Versions of numpy and of each package of each registered framework that is installed (an absent
    one is left out); each framework's comparison settings are set before its packages are imported."""
    found = {"numpy": np.__version__}
    for name in registry.NAMES:
        packages = [p for p in registry.entry(name).packages if importlib.util.find_spec(p) is not None]
        if not packages:
            continue
        registry.prepare(name, "compare")
        for package in packages:
            try:
                found[package] = importlib.import_module(package).__version__
            except ImportError:
                continue
    return found
