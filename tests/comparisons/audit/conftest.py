"""A test marked with a framework skips (with the reason; fails when frameworks are required) when that framework
is missing: ``torch``/``keras`` through the audit's guarded imports, the other registered frameworks when one of
their packages cannot be found (never loading the framework itself)."""

from __future__ import annotations

import importlib.util

import pytest

from comparisons.audit.base import IMPORTERS
from comparisons.frameworks import REGISTRY
from tests.frameworks import unavailable

from .helpers import require


@pytest.fixture(autouse=True)
def _frameworks_present(request):
    for framework in IMPORTERS:
        if request.node.get_closest_marker(framework):
            require(framework)
    for name, entry in REGISTRY.items():
        if name not in IMPORTERS and request.node.get_closest_marker(name):
            missing = [p for p in entry.packages if importlib.util.find_spec(p) is None]
            if missing:
                unavailable(f"{name} is not installed here (no {', '.join(missing)})")
