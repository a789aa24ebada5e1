"""Framework adapters by name, loaded lazily: a missing framework is a reason, not a crash."""

from __future__ import annotations

import importlib
import importlib.util
import os
from types import ModuleType

FRAMEWORKS = ("torch", "keras")
_MODULES = {"torch": "comparisons.torch_adapter", "keras": "comparisons.keras_adapter"}
# the packages whose absence makes a framework unavailable (any other ImportError is a bug to show)
PACKAGES = {"torch": ("torch",), "keras": ("keras", "tensorflow")}
REQUIRE_VAR = "CNNREF_REQUIRE_FRAMEWORKS"  # set to 1: tests fail, instead of skipping, without a framework


class FrameworkUnavailable(RuntimeError):
    """The framework (or its adapter) cannot be imported here; the message says why."""


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ logging and choose Keras' TensorFlow backend, before any import."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def load_adapter(framework: str) -> ModuleType:
    """The adapter module for ``framework``; raises FrameworkUnavailable with the reason."""
    if framework not in _MODULES:
        raise ValueError(f"load_adapter: framework must be one of {FRAMEWORKS}, got {framework!r}")
    if framework == "keras":
        quiet_tensorflow()
    try:
        return importlib.import_module(_MODULES[framework])
    except ImportError as exc:
        if not missing_package(exc, PACKAGES[framework]):
            raise  # an import error inside the project's own code is a bug, not a missing framework
        raise FrameworkUnavailable(f"{framework} is not installed here ({exc})") from exc


def missing_package(exc: ImportError, packages: tuple[str, ...]) -> bool:
    """Whether ``exc`` says one of ``packages`` is not installed: a ModuleNotFoundError for it (or a module
    inside it) while the package itself cannot be found. "cannot import name X from torch.nn" is not
    that: torch is there, and the error is a bug (ours or an API change) to show."""
    top = (exc.name or "").split(".")[0]
    return isinstance(exc, ModuleNotFoundError) and top in packages and importlib.util.find_spec(top) is None
