"""A probe side run in a child process (audit/isolation.py): a crash is evidence, not the end of the audit."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from comparisons.audit import isolation


def crash_after_one_step():
    """A child-process side for test_run_isolated_reports_a_crash: one line of evidence, then SIGABRT."""
    yield isolation.step("abort", before=1)
    os.abort()


def test_run_isolated_reports_a_crash(monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[3])  # the child imports this module as tests.comparisons...
    e = isolation.run_isolated(crash_after_one_step)
    assert e == {"before": 1, "crashed": signal.Signals.SIGABRT.name, "crashed_before": "abort"}
