"""The framework registry (:mod:`comparisons.frameworks`) and ``tests.frameworks``: a missing framework
skips (or fails when required); an import error in the project's own code is never mistaken for a missing
framework."""

from __future__ import annotations

import dataclasses

import pytest

from comparisons import frameworks
from tests.frameworks import unavailable


def raising(exc):
    def load():
        raise exc
    return load


def with_load(monkeypatch, name: str, load) -> None:
    """Make the registry's ``name`` entry load with ``load`` (as if its import failed)."""
    monkeypatch.setitem(frameworks.REGISTRY, name, dataclasses.replace(frameworks.REGISTRY[name], load=load))


@pytest.mark.parametrize("framework,missing", [("torch", "torch"), ("keras", "tensorflow"), ("keras", "keras.src")])
def test_a_missing_framework_package_is_unavailable(monkeypatch, framework, missing):
    with_load(monkeypatch, framework, raising(ModuleNotFoundError("no", name=missing)))
    monkeypatch.setattr(frameworks.importlib.util, "find_spec", lambda name: None)  # as if not installed
    with pytest.raises(frameworks.FrameworkUnavailable, match=f"{framework} is not installed here"):
        frameworks.load(framework)


@pytest.mark.parametrize("error", [
    ImportError("cannot import name 'renamed_helper' from 'torch.nn.functional'", name="torch.nn.functional"),
    ModuleNotFoundError("No module named 'torch.nn.renamed'", name="torch.nn.renamed"),
], ids=["name-from-installed-torch", "submodule-of-installed-torch"])
def test_an_import_error_inside_an_installed_framework_is_raised_as_is(monkeypatch, error):
    """With torch installed, a name or submodule it lacks is an API change or a typo, not a missing torch."""
    with_load(monkeypatch, "torch", raising(error))
    monkeypatch.setattr(frameworks.importlib.util, "find_spec", lambda name: object())  # as if installed
    with pytest.raises(ImportError) as info:
        frameworks.load("torch")
    assert info.value is error


def test_an_import_error_in_our_own_framework_module_is_raised_as_is(monkeypatch):
    error = ImportError("cannot import name 'renamed' from 'comparisons.layouts'", name="comparisons.layouts")
    with_load(monkeypatch, "keras", raising(error))
    with pytest.raises(ImportError, match="renamed") as info:
        frameworks.load("keras")
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


@pytest.mark.parametrize(("name", "expected"), [
    ("keras-jax", {"KERAS_BACKEND": "jax", "JAX_ENABLE_X64": "1"}),
    ("keras-torch", {"KERAS_BACKEND": "torch"}),
])
def test_a_worker_frameworks_settings_are_those_its_worker_sets(monkeypatch, name, expected):
    """A speed report records what the worker process of keras-jax / keras-torch sets, not this process's
    environment (where Keras runs on TensorFlow and these settings are absent)."""
    from comparisons.bench.measure import THREADS_VAR

    monkeypatch.setenv(THREADS_VAR, "2")
    assert frameworks.process_settings(name, "time") == expected
    monkeypatch.setenv(THREADS_VAR, "1")
    if name == "keras-jax":  # XLA's one-thread flags, set when the worker starts
        assert "intra_op_parallelism_threads=1" in frameworks.process_settings(name, "time")["XLA_FLAGS"]


def test_a_local_frameworks_settings_are_this_processs_environment(monkeypatch):
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1")
    got = frameworks.process_settings("keras", "time")
    assert got["TF_ENABLE_ONEDNN_OPTS"] == "1" and set(got) == set(frameworks.entry("keras").environment("time"))
