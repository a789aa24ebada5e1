"""comparisons.frameworks and tests.frameworks: a missing framework skips (or fails when required);
an import error in the project's own code is never mistaken for a missing framework."""

from __future__ import annotations

import pytest

from comparisons import frameworks
from tests.frameworks import unavailable


def raising(exc):
    def import_module(name):
        raise exc
    return import_module


@pytest.mark.parametrize("framework,missing", [("torch", "torch"), ("keras", "tensorflow"), ("keras", "keras.src")])
def test_a_missing_framework_package_is_unavailable(monkeypatch, framework, missing):
    monkeypatch.setattr(frameworks.importlib, "import_module", raising(ModuleNotFoundError("no", name=missing)))
    with pytest.raises(frameworks.FrameworkUnavailable, match=f"{framework} is not installed here"):
        frameworks.load_adapter(framework)


def test_an_import_error_in_our_own_adapter_is_raised_as_is(monkeypatch):
    error = ImportError("cannot import name 'renamed' from 'comparisons.layouts'", name="comparisons.layouts")
    monkeypatch.setattr(frameworks.importlib, "import_module", raising(error))
    with pytest.raises(ImportError, match="renamed") as info:
        frameworks.load_adapter("keras")
    assert not isinstance(info.value, frameworks.FrameworkUnavailable) and info.value is error


@pytest.mark.parametrize("required", ["1", None])
def test_unavailable_skips_unless_frameworks_are_required(monkeypatch, required):
    if required is None:
        monkeypatch.delenv(frameworks.REQUIRE_VAR, raising=False)
    else:
        monkeypatch.setenv(frameworks.REQUIRE_VAR, required)
    expected = pytest.fail.Exception if required else pytest.skip.Exception
    with pytest.raises(expected, match="torch is not installed"):
        unavailable("torch is not installed here (test)")
