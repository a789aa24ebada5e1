"""pytest-benchmark setup: explicit thread counts, never the test suite's one-thread default.

Run with ``make bench`` (``pytest benchmarks/ --benchmark-only --benchmark-autosave``);
``make test`` never collects this directory (``testpaths = ["tests"]``).
``CNNREF_BENCH_THREADS`` (default 2) sets the threads of numpy's BLAS, PyTorch and TensorFlow;
``CNNREF_BENCH_LABEL`` names the run. Both are stored in pytest-benchmark's machine info, so
``pytest-benchmark compare`` shows them. ``make bench ARGS="-k conv"`` passes pytest arguments through.
"""

from __future__ import annotations

import os

import pytest

import reference
from comparisons.bench.blas import blas_info, set_blas_threads

THREADS = int(os.environ.get("CNNREF_BENCH_THREADS", "2"))
LABEL = os.environ.get("CNNREF_BENCH_LABEL", "")


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """The run's thread count, label and numpy BLAS in every saved benchmark file."""
    machine_info["cnnref"] = {"threads": THREADS, "label": LABEL, "blas": blas_info()}


@pytest.fixture(scope="session", autouse=True)
def bench_threads() -> int:
    """numpy's BLAS gets ``THREADS`` threads (the root conftest asks for one, for the tests), and the reference's
    im2col splits a batch over as many."""
    set_blas_threads(THREADS)
    reference.set_num_threads(THREADS)
    return THREADS


def pytest_report_header(config: pytest.Config) -> str:
    info = blas_info()
    return (f"cnnref bench: {THREADS} threads; numpy BLAS {info['blas']} kernel {info['core']}, "
            f"OPENBLAS_CORETYPE={info['OPENBLAS_CORETYPE'] or 'unset'}")
