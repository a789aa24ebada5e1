"""numpy's BLAS: its thread count and kernel, read and set through ``threadpoolctl``; the reference's own threads.

The test suite's conftest sets ``OMP_NUM_THREADS=1`` before numpy loads; the benchmarks set the thread count
explicitly instead of depending on the environment. One controller is built per process and reused (a fresh
``threadpool_limits`` costs about 0.4 ms, more than a small layer's whole pass).
"""

from __future__ import annotations

import os

import numpy as np  # noqa: F401  (loads the BLAS library the controller finds)

from reference import threads as reference_threads


def controller():
    """The process's ``threadpoolctl.ThreadpoolController`` (:func:`reference.threads.controller`, shared with the
    reference's threads; threadpoolctl comes with the ``report`` extra, which ``cnnref bench`` needs)."""
    found = reference_threads.controller()
    if found is None:
        raise ModuleNotFoundError("cnnref bench needs threadpoolctl to read and set numpy's BLAS threads: "
                                  "pip install 'cnnref[report]'")
    return found


def _numpy_blas() -> dict | None:
    """threadpoolctl's record of the BLAS numpy itself links (not torch's or scipy's), or None."""
    found = controller().select(user_api="blas").info()
    return next((lib for lib in found if f"{os.sep}numpy" in lib.get("filepath", "")), found[0] if found else None)


def set_blas_threads(threads: int) -> bool:
    """Limit every BLAS loaded in this process to ``threads`` threads; False when none was found."""
    blas = controller().select(user_api="blas")
    if not blas.lib_controllers:
        return False
    blas.limit(limits=int(threads))
    return True


def blas_info() -> dict[str, object]:
    """``{"blas": "openblas 0.3.31", "core": "Haswell", "threads": 2, "OPENBLAS_CORETYPE": ...,
    "reference_threads": 2}``: numpy's BLAS, and the threads the reference's im2col convolution splits a batch
    over (:func:`reference.threads.get_num_threads`; each runs BLAS at one thread)."""
    info: dict[str, object] = {"OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
                               "reference_threads": reference_threads.get_num_threads()}
    lib = _numpy_blas()
    if lib is None:
        return {**info, "blas": "unknown", "core": None, "threads": None}
    return {**info, "blas": f"{lib['internal_api']} {lib.get('version', '')}".strip(),
            "core": lib.get("architecture"), "threads": lib.get("num_threads")}
