"""Suite-wide options, markers and fixtures.

``--framework torch`` / ``--framework keras`` (repeatable) keeps only those
frameworks' comparisons; without the option every installed framework runs and a
missing one is skipped with the reason (or fails, with ``CNNREF_REQUIRE_FRAMEWORKS=1``:
:mod:`tests.frameworks`).
"""

from __future__ import annotations

import importlib.util
import os

import pytest
from hypothesis import HealthCheck, settings

from comparisons import frameworks
from comparisons.cli import PURPOSE_VAR
from tests.frameworks import framework_or_skip, unavailable

# The suite runs every framework, and every command in-process, with the settings for comparing
# (comparisons.frameworks: deterministic kernels that support float64), chosen before any framework import.
os.environ[PURPOSE_VAR] = "compare"
frameworks.prepare_all("compare")
# One thread per test process: ``make test`` runs two processes on two cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# derandomize: the same examples on every run, so CI is reproducible; a failure prints its reproduction.
# HYPOTHESIS_PROFILE=explore draws fresh examples each run (for hunting, not for CI).
settings.register_profile("default", max_examples=200, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("quick", max_examples=25, deadline=None, derandomize=True)
settings.register_profile("explore", max_examples=1000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
# make fuzz: tests/fuzz with CNNREF_FUZZ_EXAMPLES examples per test (fresh ones each run); under the other
# profiles each fuzz test draws its own small bounded number (tests/fuzz/budget.py)
settings.register_profile("fuzz", max_examples=int(os.environ.get("CNNREF_FUZZ_EXAMPLES", "1000")), deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--framework", action="append", choices=frameworks.NAMES, default=None,
                     help="run only the comparisons against this framework (repeatable); default: all")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    chosen = config.getoption("--framework")
    if not chosen:
        return
    keep, drop = [], []
    for item in items:
        marked = [fw for fw in frameworks.NAMES if item.get_closest_marker(fw)]
        (drop if marked and not set(marked) & set(chosen) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test marked with a framework (``@pytest.mark.torch``) skips when that framework's packages are not installed
    (fails when frameworks are required: :func:`tests.frameworks.unavailable`), before any fixture imports it."""
    for name in frameworks.NAMES:
        if item.get_closest_marker(name):
            missing = [p for p in frameworks.entry(name).packages if importlib.util.find_spec(p) is None]
            if missing:
                unavailable(f"{name} is not installed here (no module named {missing[0]!r})")


@pytest.fixture(scope="session")
def torch_framework():
    """The PyTorch :class:`~comparisons.frameworks.protocol.Framework`, loaded once per test process (skips when
    torch is missing), with one thread: ``make test`` runs two processes on two cores."""
    framework = framework_or_skip("torch")
    import torch

    torch.set_num_threads(1)
    return framework


@pytest.fixture(scope="session")
def keras_framework():
    """The Keras :class:`~comparisons.frameworks.protocol.Framework`, loaded once per test process (skips when
    tensorflow is missing)."""
    return framework_or_skip("keras")


@pytest.fixture(scope="session")
def keras3(keras_framework):
    """The Keras framework's subpackage, its modules imported (``keras3.model``, ``keras3.layers``, ...), for the
    tests of its internals."""
    import comparisons.frameworks.keras3 as package
    from comparisons.frameworks.keras3 import capability, layers, losses, model  # noqa: F401

    return package
