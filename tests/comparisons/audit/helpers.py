"""What the audit tests share: each probe run once per test process, its evidence per side, and the
assertion that names the probe, the side and the rule that no longer holds.

A side is a framework name (``"torch"``, ``"keras"``) or ``"reference"``.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from comparisons import audit
from comparisons.audit import PROBES, base
from comparisons.frameworks import FrameworkUnavailable
from tests.frameworks import unavailable

torch_only, keras_only = pytest.mark.torch, pytest.mark.keras
BOTH = ["torch", "keras"]  # reference_follows when the reference matches both frameworks' convention


def sides(*frameworks: str, reference: bool = True) -> list:
    """Parametrize values: each framework marked with its own marker (so it skips when missing), then
    ``"reference"``."""
    marked = [pytest.param(name, marks=getattr(pytest.mark, name)) for name in frameworks]
    return marked + (["reference"] if reference else [])


def require(framework: str) -> None:
    """Skip (or fail, when frameworks are required) unless ``framework`` imports, through the audit's own
    guarded imports; PyTorch then runs on one thread (two test processes share two cores)."""
    try:
        module = base.IMPORTERS[framework]()
    except FrameworkUnavailable as exc:
        unavailable(str(exc))
    if framework == "torch":
        module.set_num_threads(1)


@functools.cache
def finding(pid: str) -> audit.Finding:
    """Each probe runs once per test process, only if a test asks for it."""
    return audit.run_probe(PROBES[pid])


def ev(pid: str, side: str) -> dict:
    """The evidence of ``side`` (a framework name or ``"reference"``); fails if that side was skipped."""
    f = finding(pid)
    e = f.reference if side == "reference" else f.frameworks[side]
    assert "skipped" not in e, f"{pid}: the {side} side was skipped: {e['skipped']}"
    return e


def reported(pid: str, side: str, e: dict, keys: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """``keys[side]``, after checking that the probe reported every one of them (a renamed or dropped
    key must fail, not leave a loop with nothing to check)."""
    missing = set(keys[side]) - set(e)
    assert not missing, f"{pid} [{side}] reports {sorted(e)}: {sorted(missing)} missing"
    return keys[side]


def check(pid: str, side: str, what: str, actual, expected, rule: str, rtol: float = 0.0, atol: float = 0.0) -> None:
    """Equal (or close with ``rtol``/``atol``, same shape: no broadcasting); the message says which convention
    changed."""
    if rtol or atol:
        assert np.shape(actual) == np.shape(expected), (f"{pid} [{side}]: {what} has shape {np.shape(actual)}, "
                                                        f"expected {np.shape(expected)}")
        ok = np.allclose(np.asarray(actual, float), np.asarray(expected, float), rtol=rtol, atol=atol)
    else:
        ok = actual == expected
    versions = ", ".join(f"{k} {v}" for k, v in base.versions().items())
    assert ok, (f"{pid} [{side}]: {what} is {actual}, expected {expected} by the rule '{rule}' ({versions}). "
                "The installed version changed this convention: update the probe's advice.")


def verdict_is(pid: str, differs: bool | None, follows) -> None:
    """The finding's ``differs`` and ``reference_follows`` (a list of frameworks, or why the reference did not
    run); its ``groups`` split exactly the frameworks that ran, in one group per framework when they differ
    (every probe compares two frameworks)."""
    f = finding(pid)
    assert (f.differs, f.reference_follows) == (differs, follows), (
        f"{pid}: differs {f.differs} (groups {f.groups}), reference follows {f.reference_follows}; "
        f"expected differs {differs}, follows {follows}")
    ran = [name for name, e in f.frameworks.items() if "skipped" not in e]
    if differs is None:
        assert f.groups is None and len(ran) < 2, (pid, f.groups, ran)
    else:
        assert f.groups == ([[name] for name in ran] if differs else [ran]), (pid, f.groups, ran)


def groups_are(pid: str, groups: list[list[str]], follows: list[str]) -> None:
    """The finding's groups of agreeing frameworks (``differs`` exactly when there are several) and the frameworks
    the reference follows."""
    f = finding(pid)
    assert (f.groups, f.reference_follows, f.differs) == (groups, follows, len(groups) > 1), (
        f"{pid}: groups {f.groups}, reference follows {f.reference_follows}, differs {f.differs}; expected "
        f"groups {groups}, follows {follows}")
