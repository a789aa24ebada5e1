"""The Keras benchmark steps on each backend (:mod:`comparisons.frameworks.keras3.timing`): what they compute, and
``keras-jax`` / ``keras-torch`` timed in their worker processes, a failure there a skipped cell with its reason.

The gradients checked are the ones that do not depend on Keras' own initial weights: a convolution's and a dense
layer's weight and bias gradients (sums of input times ``dout``) and a pooling layer's input gradient, against the
reference's backward in float64 on the same input and ``dout``.
"""

from __future__ import annotations

import os
import signal
import threading

import numpy as np
import pytest

from comparisons.bench.command import measure_all
from comparisons.bench.measure import TimedElsewhere, Unavailable, input_data, reference_layer, time_steps
from comparisons.bench.shapes import LAYERS, Shape
from tests.frameworks import framework_or_skip

NAMES = [pytest.param(name, marks=getattr(pytest.mark, name)) for name in ("keras", "keras-jax", "keras-torch")]
TINY = Shape("tiny", 2, 3, 6, 6, 4, padding=1)
SEED = 0
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
# XLA's pool has every core unless one thread is set at the worker's start; TensorFlow's (in this test process) and
# PyTorch's are set per step: one thread, as every test process runs
THREADS = {"keras": 1, "keras-jax": CORES, "keras-torch": 1}


def _reference(layer: str):
    """The reference's float64 backward on the step's input and ``dout``: ``(dx, {param: grad})``, NCHW."""
    model = reference_layer(layer, TINY, "im2col", "float64", SEED)
    x = input_data(TINY, "float64", SEED)
    x = x.reshape(TINY.n, -1) if layer == "linear" else x
    out = model.forward(x)
    # the step's dout: drawn in Keras' layout (NHWC, or (N, F)), float32
    keras_shape = out.shape if out.ndim == 2 else (out.shape[0], *out.shape[2:], out.shape[1])
    dout = np.random.default_rng(SEED + 1).standard_normal(keras_shape).astype("float32").astype("float64")
    dx = model.backward(dout if out.ndim == 2 else dout.transpose(0, 3, 1, 2))
    return dx, dict(model.grads)


def _assert_float32_close(actual, expected, what: str) -> None:
    # float32 against float64: each value is a sum of at most 2*6*6 products of standard normals, so float32
    # rounding leaves a relative error of a few 1e-7 of the largest value; 1e-5 of it bounds that
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5 * np.abs(expected).max(), err_msg=what)


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("name", NAMES)
def test_each_backends_step_gives_the_references_gradients(name, layer):
    fw = framework_or_skip(name)
    step = fw.bench_step(layer, TINY, "float32", THREADS[name], SEED)
    dx, *grads = [np.asarray(g) for g in step()]
    ref_dx, ref_grads = _reference(layer)
    if layer == "linear":
        assert dx.shape == ref_dx.shape
        _assert_float32_close(grads[0], ref_grads["weight"], "dense kernel")  # both (in, out)
        _assert_float32_close(grads[1], ref_grads["bias"], "dense bias")
    elif layer == "conv":
        assert dx.shape == ref_dx.transpose(0, 2, 3, 1).shape
        _assert_float32_close(grads[0], ref_grads["weight"].transpose(2, 3, 1, 0), "conv kernel")  # OIHW -> HWIO
        _assert_float32_close(grads[1], ref_grads["bias"], "conv bias")
    else:
        assert grads == []
        _assert_float32_close(dx, ref_dx.transpose(0, 2, 3, 1), f"{layer} dx")


@pytest.mark.parametrize("name", NAMES[1:])
def test_a_worker_backends_cells_are_timed_in_its_process_with_every_sample(name):
    framework_or_skip(name)
    cell, = measure_all(["avgpool"], ["tutorial"], [name], ["float32"], THREADS[name], rounds=3, min_sample_s=0.0,
                        loop_shapes=())
    assert cell.skipped is None and cell.impl == name
    assert cell.samples == 3 and len(cell.times) == 3 and all(t > 0 for t in cell.times)
    assert cell.median_s == float(np.median(cell.times)) and cell.calls_per_sample >= 1


@getattr(pytest.mark, "keras-jax")
def test_keras_jax_asked_for_threads_xla_cannot_have_is_a_skipped_cell_with_the_reason():
    framework_or_skip("keras-jax")
    cell, = measure_all(["avgpool"], ["tutorial"], ["keras-jax"], ["float32"], CORES + 1, rounds=1,
                        min_sample_s=0.0, loop_shapes=())
    assert cell.median_s is None and cell.samples == 0
    assert f"XLA's CPU pool has {CORES} threads here" in cell.skipped and f"{CORES + 1} threads asked" in cell.skipped


@getattr(pytest.mark, "keras-torch")
def test_a_worker_dying_while_it_times_is_a_skipped_cell_with_its_reason():
    fw = framework_or_skip("keras-torch")
    step = fw.bench_step("conv", TINY, "float32", 1, SEED)
    assert isinstance(step, TimedElsewhere)
    pid = step.process.pid
    # 200 samples of at least 0.05 s each: the worker is still timing when it is killed a second in
    killer = threading.Timer(1.0, os.kill, (pid, signal.SIGKILL))
    killer.start()
    try:
        samples = time_steps({"keras-torch": step}, 200, 0.05, settle_s=0.0)["keras-torch"]
    finally:
        killer.cancel()
    assert list(samples) == []
    assert f"worker process {pid} died during 'bench_time': killed by SIGKILL" in samples.skipped
    with pytest.raises(Unavailable, match=f"worker process {pid} ended \\(killed by SIGKILL\\)"):
        step.measure(1, 0.0, 0.0)
