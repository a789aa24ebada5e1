"""Forward + backward of Conv2d, MaxPool2d, AvgPool2d and Linear: loop, im2col, PyTorch, Keras.

The shapes, the steps and the work counts come from :mod:`comparisons.bench` (the same
code ``cnnref bench`` runs). Benchmarks are grouped by layer, shape and dtype, so
``pytest-benchmark compare`` puts the implementations side by side.
"""

from __future__ import annotations

import time

import pytest

from comparisons.bench.measure import IMPLS, REFERENCE_IMPLS, SETTLE_S, TimedElsewhere, Unavailable, make_step
from comparisons.bench.shapes import DTYPES, LAYERS, SHAPES

LOOP_ROUNDS = 3  # the loop kernels take up to about a second per call


def _cells():
    for layer in LAYERS:
        for shape in SHAPES:
            for dtype in DTYPES:
                for impl in IMPLS:
                    if dtype == "float32" or impl in REFERENCE_IMPLS:
                        marks = [getattr(pytest.mark, impl)] if impl in ("torch", "keras") else []
                        yield pytest.param(layer, shape, impl, dtype, marks=marks,
                                           id=f"{layer}-{shape}-{impl}-{dtype}")


@pytest.mark.parametrize(("layer", "shape", "impl", "dtype"), list(_cells()))
def test_forward_backward(benchmark, bench_threads, layer, shape, impl, dtype):
    try:
        step = make_step(layer, SHAPES[shape], impl, dtype, bench_threads)
    except Unavailable as exc:
        pytest.skip(str(exc))
    if isinstance(step, TimedElsewhere):  # a call here would time a pipe round trip to the worker with it
        pytest.skip(f"{impl} is timed in its own worker process: see cnnref bench")
    benchmark.group = f"{layer}-{shape}-{dtype}"
    benchmark.extra_info.update(flops=SHAPES[shape].flops(layer), threads=bench_threads)
    time.sleep(SETTLE_S)  # let the previous benchmark's BLAS/OpenMP threads stop spinning
    if impl == "loop":
        benchmark.pedantic(step, rounds=LOOP_ROUNDS, iterations=1, warmup_rounds=1)
    else:
        step()  # first-call costs (workspaces, tf.function tracing) stay out of the timings
        benchmark(step)
