"""The frameworks the reference is compared with, found by name: the registry.

Each framework is one subpackage of this package holding everything about it (:mod:`.protocol` lists what):
what it cannot express and why, building its model from the reference's parameters, forward and backward,
a training step, a benchmark step, its version and settings, the layout conversions it needs. The
subpackage's ``__init__`` is light (no framework import): it declares its :class:`Entry` records in ``ENTRIES`` (one
per registry name: a subpackage may serve several, e.g. one runtime with two settings), and ``load()``
imports the framework and returns a :class:`~.protocol.Framework`. Adding a framework = one subpackage and
one line in :data:`_SUBPACKAGES`. Nothing outside this package (and the audit probes that probe a framework
directly) imports a framework.

Process-wide settings (environment variables read when the framework is imported: TensorFlow's oneDNN,
Keras' backend, logging) are chosen by :func:`prepare` for a *purpose* when the process starts, with the
reason beside each value; never as an import side effect. ``compare`` is for comparisons (verify, audit,
tests): deterministic kernels that support float64. ``time`` is for speed (bench, train): what a user of
the framework gets by default. A process whose framework was imported under the other purpose's settings is
refused: run the two parts in separate processes (``cnnref report`` does).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

REQUIRE_VAR = "CNNREF_REQUIRE_FRAMEWORKS"  # set to 1: tests fail, instead of skipping, without a framework
PURPOSES = ("compare", "time")

# the framework subpackages, in report order
_SUBPACKAGES = (
    "comparisons.frameworks.pytorch",
    "comparisons.frameworks.keras3",
    "comparisons.frameworks.jaxflax",
    "comparisons.frameworks.onnx_runtime",
)


class FrameworkUnavailable(RuntimeError):
    """The framework cannot be imported here; the message says why."""


class SettingsConflict(RuntimeError):
    """A framework was already imported under other process settings than the ones asked for."""


@dataclass(frozen=True)
class Entry:
    """What the registry knows of a framework without importing it.

    ``name``: the registry name (``"torch"``); ``packages``: the import packages whose absence makes it
    unavailable; ``environment(purpose)``: ``{variable: (value, reason)}`` to set before it is imported;
    ``load()``: imports the framework and returns its :class:`~.protocol.Framework`; ``worker_environment(purpose)``:
    for a framework that runs in a worker process of its own, what that process sets before the import (None: it
    runs in this process).
    """

    name: str
    packages: tuple[str, ...]
    environment: Callable[[str], dict[str, tuple[str, str]]]
    load: Callable[[], object]
    worker_environment: Callable[[str], dict[str, tuple[str, str]]] | None = None


_prepared: dict[str, str] = {}  # framework -> the purpose its settings were set for in this process
REGISTRY: dict[str, Entry] = {}
for _module in _SUBPACKAGES:
    for _entry in importlib.import_module(_module).ENTRIES:
        REGISTRY[_entry.name] = _entry
NAMES = tuple(REGISTRY)


def entry(name: str) -> Entry:
    """The registry's :class:`Entry` for ``name``; ValueError naming the registered ones otherwise."""
    if name not in REGISTRY:
        raise ValueError(f"frameworks: framework must be one of {NAMES}, got {name!r}")
    return REGISTRY[name]


def prepare(name: str, purpose: str = "compare") -> None:
    """Set ``name``'s process-wide environment for ``purpose`` (see the module docstring) before it is imported.

    Raises :class:`SettingsConflict` when one of its packages is already imported with another value of a
    variable it reads at import (the setting cannot change any more in this process).
    """
    if purpose not in PURPOSES:
        raise ValueError(f"frameworks.prepare: purpose must be one of {PURPOSES}, got {purpose!r}")
    if _prepared.get(name) == purpose:
        return
    fw = entry(name)
    wanted = fw.environment(purpose)
    imported = any(package in sys.modules for package in fw.packages)
    for variable, (value, reason) in wanted.items():
        current = os.environ.get(variable)
        if current == value:
            continue
        if imported and current is not None:
            raise SettingsConflict(
                f"{name} was imported with {variable}={current}, but {purpose!r} needs {variable}={value} ({reason}); "
                f"run the two in separate processes")
        os.environ[variable] = value
    _prepared[name] = purpose


def prepare_all(purpose: str) -> None:
    """:func:`prepare` every registered framework for ``purpose``: what a process does first (the CLI per
    command, the test suite's conftest)."""
    for name in NAMES:
        prepare(name, purpose)


def settings(name: str, purpose: str = "compare") -> dict[str, str]:
    """``{variable: "value (reason)"}`` for ``name`` and ``purpose``: what reports show of the settings."""
    return {variable: f"{value} ({reason})" for variable, (value, reason) in entry(name).environment(purpose).items()}


def process_settings(name: str, purpose: str) -> dict[str, str | None]:
    """``{variable: value}`` of ``name``'s process-wide settings for ``purpose`` in the process it runs in: this
    process's environment, or for a framework in a worker process, what the worker sets (what a speed report
    records of each framework's settings)."""
    fw = entry(name)
    if fw.worker_environment is not None:
        return {variable: value for variable, (value, _) in fw.worker_environment(purpose).items()}
    return {variable: os.environ.get(variable) for variable in fw.environment(purpose)}


def load(name: str, purpose: str | None = None):
    """``name``'s :class:`~.protocol.Framework`, after :func:`prepare` for ``purpose`` (None: the purpose this
    process chose for it, else ``"compare"``); FrameworkUnavailable when its packages are not installed (an
    ImportError from the project's own code is re-raised: it is a bug, not a missing framework)."""
    fw = entry(name)
    prepare(name, purpose or _prepared.get(name, "compare"))
    try:
        return fw.load()
    except ImportError as exc:
        if not missing_package(exc, fw.packages):
            raise
        raise FrameworkUnavailable(f"{name} is not installed here ({exc})") from exc


def missing_package(exc: ImportError, packages: tuple[str, ...]) -> bool:
    """Whether ``exc`` says one of ``packages`` is not installed: a ModuleNotFoundError for it (or a module
    inside it) while the package itself cannot be found. "cannot import name X from torch.nn" is not
    that: torch is there, and the error is a bug (ours or an API change) to show."""
    top = (exc.name or "").split(".")[0]
    return isinstance(exc, ModuleNotFoundError) and top in packages and importlib.util.find_spec(top) is None
