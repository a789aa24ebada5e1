"""Finding what to check: ``TARGET`` strings (``module.path:NAME``, ``path/to/file.py:NAME``) to objects.

A target that cannot be found or imported raises :class:`TargetError` (a ValueError: the CLI turns it into
one line on stderr and exit code 2), naming the argument, what was expected and what was given.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path


class TargetError(ValueError):
    """A target string that is malformed, or names something that cannot be imported or found."""


def split(spec: str, what: str = "TARGET") -> tuple[str, str]:
    """``"pkg.mod:Name"`` -> ``("pkg.mod", "Name")``; ``"dir/file.py:Name"`` -> ``("dir/file.py", "Name")``."""
    if not isinstance(spec, str) or spec.count(":") < 1:
        raise TargetError(f"{what}: expected 'module.path:NAME' or 'path/to/file.py:NAME', got {spec!r}")
    where, _, name = spec.rpartition(":")
    if not where or not name.isidentifier():
        raise TargetError(f"{what}: expected 'module.path:NAME' or 'path/to/file.py:NAME' (NAME a Python "
                          f"identifier), got {spec!r}")
    return where, name


def import_module(where: str, what: str = "TARGET"):
    """The module at ``where``: a dotted module path, or a ``.py`` file (imported under a name derived from
    its resolved path, so two files with the same name do not collide)."""
    if where.endswith(".py") or "/" in where or "\\" in where:
        path = Path(where)
        if not path.is_file():
            raise TargetError(f"{what}: file {where!r} does not exist")
        resolved = path.resolve()
        name = f"cnnref_check_{resolved.stem}_{hashlib.sha1(str(resolved).encode()).hexdigest()[:8]}"
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, resolved)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        _on_path(str(resolved.parent))  # as `python file.py` does: the file's siblings import
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            raise TargetError(f"{what}: importing {where!r} raised {type(exc).__name__}: {exc}") from exc
        return module
    _on_path(str(Path.cwd()))  # as `python -m` does: modules of the current folder import
    try:
        return importlib.import_module(where)
    except Exception as exc:
        raise TargetError(f"{what}: importing module {where!r} raised {type(exc).__name__}: {exc}") from exc


def _on_path(folder: str) -> None:
    if folder not in sys.path:
        sys.path.append(folder)


def load(spec, what: str = "TARGET"):
    """The object ``spec`` names (a class or a factory); ``spec`` may already be the object itself."""
    if not isinstance(spec, str):
        return spec
    where, name = split(spec, what)
    module = import_module(where, what)
    if not hasattr(module, name):
        public = sorted(n for n in vars(module) if not n.startswith("_"))
        raise TargetError(f"{what}: {where!r} has no {name!r} (it has {public})")
    return getattr(module, name)


def describe(obj) -> str:
    """``module:qualname`` of a class or function, for reports and reproducers."""
    module = getattr(obj, "__module__", None) or "?"
    return f"{module}:{getattr(obj, '__qualname__', type(obj).__name__)}"
