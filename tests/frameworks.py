"""Skip, or fail, when a framework is missing: the one rule for every test that needs torch or keras.

Without a framework its tests skip with the reason; with ``CNNREF_REQUIRE_FRAMEWORKS=1`` (set by
``make test``, whose venv installs both) they fail instead, so a broken install cannot pass as skips.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

from comparisons.frameworks import REQUIRE_VAR, FrameworkUnavailable, load, missing_package


def unavailable(reason: str) -> None:
    """Skip with ``reason``, or fail with it when frameworks are required."""
    if os.environ.get(REQUIRE_VAR) == "1":
        pytest.fail(f"{reason} ({REQUIRE_VAR}=1: frameworks are required here)")
    pytest.skip(reason)


def framework_or_skip(name: str):
    """The registered framework ``name``'s :class:`~comparisons.frameworks.protocol.Framework`."""
    try:
        return load(name)
    except FrameworkUnavailable as exc:
        unavailable(str(exc))


def import_or_skip(package: str) -> ModuleType:
    """``import package`` (torch, keras), else :func:`unavailable`."""
    try:
        return importlib.import_module(package)
    except ImportError as exc:
        if not missing_package(exc, (package, "tensorflow")):
            raise
        unavailable(f"{package} is not installed here ({exc})")
