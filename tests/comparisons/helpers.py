"""Shared helpers of the comparison tests (not a test module): the pytest parameter of each registered
framework, its :class:`~comparisons.frameworks.protocol.Framework` loaded once per test process, and the
assertion that every record of a comparison passed."""

from __future__ import annotations

import functools

import pytest

from comparisons import frameworks, harness
from tests.frameworks import framework_or_skip

# one parameter per registered framework, marked with its name: ``pytest --framework torch`` selects by it
FRAMEWORK_PARAMS = [pytest.param(name, marks=getattr(pytest.mark, name)) for name in frameworks.NAMES]


@functools.cache
def framework(name: str):
    """The registered framework ``name``, loaded once per process (skips, or fails when frameworks are
    required, where it is missing: :func:`tests.frameworks.framework_or_skip`; a skip is not cached)."""
    return framework_or_skip(name)


def assert_all_pass(records: list[harness.Record]) -> None:
    """The comparison produced records and every one that applies is within its tolerance (a forward-only
    framework's gradient records are listed as not applicable, with no verdict)."""
    assert all(r.passed is None for r in records if not r.applicable)
    failed = [r for r in records if r.applicable and not r.passed]
    assert records, "the comparison produced no records"
    assert not failed, "\n".join(
        f"{r.layer} {r.impl} {r.dtype} {r.quantity}: rel {r.max_rel_err:.3e} > tol {r.tol:.3e} ({r.config})"
        for r in failed
    )
