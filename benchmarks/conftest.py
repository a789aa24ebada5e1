"""pytest-benchmark setup: explicit thread counts, never the test suite's one-thread default.

Run with ``make bench`` (``pytest benchmarks/ --benchmark-only --benchmark-autosave``);
``make test`` never collects this directory (``testpaths = ["tests"]``).
``CNNREF_BENCH_THREADS`` (default 2) sets the threads of numpy's BLAS, PyTorch and TensorFlow.
"""

from __future__ import annotations

import os

import pytest

from comparisons.bench.blas import blas_info, set_blas_threads

THREADS = int(os.environ.get("CNNREF_BENCH_THREADS", "2"))


@pytest.fixture(scope="session", autouse=True)
def bench_threads() -> int:
    """numpy's BLAS gets ``THREADS`` threads (the root conftest asks for one, for the tests)."""
    set_blas_threads(THREADS)
    return THREADS


def pytest_report_header(config: pytest.Config) -> str:
    info = blas_info()
    return (f"cnnref bench: {THREADS} threads; numpy BLAS {info['blas']} kernel {info['core']}, "
            f"OPENBLAS_CORETYPE={info['OPENBLAS_CORETYPE'] or 'unset'}")
