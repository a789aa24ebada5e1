"""A test marked ``torch``/``keras`` skips (with the reason) when that framework does not import, through the
audit's guarded imports (never the comparison adapters)."""

from __future__ import annotations

import pytest

from comparisons.audit.base import IMPORTERS

from .helpers import require


@pytest.fixture(autouse=True)
def _frameworks_present(request):
    for framework in IMPORTERS:
        if request.node.get_closest_marker(framework):
            require(framework)
