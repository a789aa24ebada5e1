"""numpy's BLAS thread count and kernel, read and set through OpenBLAS' own entry points.

The test suite's conftest sets ``OMP_NUM_THREADS=1`` before numpy loads; the benchmarks
set the thread count explicitly instead of depending on the environment. Only OpenBLAS
(numpy's wheels) is handled; with another BLAS these return ``None`` and change nothing.
"""

from __future__ import annotations

import ctypes
import os
import re

import numpy as np  # noqa: F401  (loads the BLAS library whose entry points we look up)


def _openblas() -> tuple[ctypes.CDLL, str] | tuple[None, None]:
    try:
        with open("/proc/self/maps") as maps:
            paths = re.findall(r"(/\S*openblas\S*\.so\S*)", maps.read())
    except OSError:
        return None, None
    for path in dict.fromkeys(paths):
        lib = ctypes.CDLL(path)
        for suffix in ("64_", ""):
            prefix = "scipy_openblas" if hasattr(lib, f"scipy_openblas_get_num_threads{suffix}") else "openblas"
            if hasattr(lib, f"{prefix}_get_num_threads{suffix}"):
                return lib, f"{prefix}_{{}}{suffix}"
    return None, None


def set_blas_threads(threads: int) -> bool:
    """Ask numpy's OpenBLAS to use ``threads`` threads; False when no OpenBLAS was found."""
    lib, name = _openblas()
    if lib is None:
        return False
    getattr(lib, name.format("set_num_threads"))(int(threads))
    return True


def blas_info() -> dict[str, object]:
    """``{"blas": "OpenBLAS", "core": "SkylakeX", "threads": 2, "OPENBLAS_CORETYPE": ...}``."""
    info: dict[str, object] = {"OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE")}
    lib, name = _openblas()
    if lib is None:
        return {**info, "blas": "unknown", "core": None, "threads": None}
    core = getattr(lib, name.format("get_corename"), None)
    if core is not None:
        core.restype = ctypes.c_char_p
    return {
        **info,
        "blas": "OpenBLAS",
        "core": core().decode() if core is not None else None,
        "threads": int(getattr(lib, name.format("get_num_threads"))()),
    }
