"""The fuzz suite's per-layer tally: counted in each test process, shipped in the test reports (so that the
counts of ``pytest-xdist`` workers add up), printed at the end. See :mod:`tests.fuzz.budget`."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.fuzz import budget

_totals = {"tried": Counter(), "failed": Counter()}


@pytest.fixture(autouse=True)
def _fuzz_tally(request):
    before = budget.tried.copy(), budget.failed.copy()
    yield
    counts = {"tried": dict(budget.tried - before[0]), "failed": dict(budget.failed - before[1])}
    if counts["tried"]:
        request.node.user_properties.append((budget.TALLY_KEY, counts))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "teardown":
        return
    for key, value in report.user_properties:
        if key == budget.TALLY_KEY:
            for kind in ("tried", "failed"):
                _totals[kind].update(value.get(kind, {}))


def pytest_terminal_summary(terminalreporter) -> None:
    tried, failed = _totals["tried"], _totals["failed"]
    if not tried:
        return
    terminalreporter.section("fuzz: examples per layer")
    width = max(map(len, tried))
    terminalreporter.write_line(f"{'layer':<{width}}  {'tried':>8}  {'failed':>7}")
    for layer in sorted(tried):
        terminalreporter.write_line(f"{layer:<{width}}  {tried[layer]:>8}  {failed[layer]:>7}")
    terminalreporter.write_line(f"{'total':<{width}}  {sum(tried.values()):>8}  {sum(failed.values()):>7}")
