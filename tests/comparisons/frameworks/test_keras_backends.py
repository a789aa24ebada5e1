"""Keras on JAX and on PyTorch (the ``keras-jax`` and ``keras-torch`` entries, each in its worker process:
:mod:`comparisons.frameworks.keras3.worker`): a subset of the case matrix covering every layer kind Keras expresses
in both dtypes, the differences from TensorFlow each backend's reasons name, and a worker's crash or exception
coming back as failed records with the reason.

The whole matrix runs in ``cnnref verify --framework keras-jax`` / ``keras-torch``; a case here costs JAX a
compilation per new shape, so the subset is the smallest case of each layer kind.
"""

from __future__ import annotations

import dataclasses
import os
import signal

import numpy as np
import pytest

from comparisons import cases, harness
from comparisons.frameworks.keras3 import worker
from tests.comparisons.helpers import assert_all_pass
from tests.frameworks import framework_or_skip

BACKENDS = [pytest.param(name, marks=getattr(pytest.mark, name)) for name in ("keras-jax", "keras-torch")]
# the kinds of the Keras entries' builders (comparisons/frameworks/keras3/kinds.py)
KINDS = ("conv", "maxpool", "avgpool", "adaptiveavgpool", "adaptivemaxpool", "globalmaxpool", "globalavgpool",
         "batchnorm", "dropout", "relu", "leakyrelu", "sigmoid", "tanh", "flatten", "linear")


def _size(case: cases.Case) -> int:
    return int(np.prod(case.input_shape)) * len(case.specs)


def representative() -> list[cases.Case]:
    """The smallest case of each layer kind (and of the loss) the Keras builders know, without duplicates."""
    known = [c for c in cases.all_cases() if {s.kind for s in c.specs} <= set(KINDS)]
    chosen: dict[str, cases.Case] = {}
    for kind in (*KINDS, "loss"):
        having = [c for c in known if (c.loss if kind == "loss" else kind in {s.kind for s in c.specs})]
        best = min(having, key=_size)
        chosen.setdefault(best.id, best)
    return list(chosen.values())


CASES = representative()


@pytest.mark.parametrize("dtype", cases.DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_representative_cases_match(name, dtype):
    """Each representative case matches the reference, or is skipped for a reason the backend gives."""
    fw = framework_or_skip(name)
    compared = 0
    for case in CASES:
        reason = harness.skip_reason(fw, case, dtype)
        if reason is not None:
            continue
        impl = cases.expand([case])[0][1]
        assert_all_pass(harness.compare(case, impl, dtype, fw))
        compared += 1
    assert compared >= len(CASES) // 2, f"{name} {dtype}: only {compared} of {len(CASES)} cases compared"


def test_the_representative_cases_cover_every_kind_and_the_loss():
    kinds = {s.kind for c in CASES for s in c.specs}
    assert kinds == set(KINDS) and any(c.loss for c in CASES)


@pytest.mark.parametrize("name", BACKENDS)
def test_float64_is_computed_in_float64_or_skipped_with_the_reason(name):
    """JAX (x64 on) computes float64 end to end; PyTorch gives the float64 cases it would compute in float32 a reason
    (Dense, global average pooling, batch norm's statistics, the loss)."""
    fw = framework_or_skip(name)
    case = cases.tutorial_cases()[1]
    reason = fw.dtype_reason(case, "float64")
    if name == "keras-jax":
        assert reason is None and "x64 on" in fw.version
        records = harness.compare(case, "im2col", "float64", fw)
        assert_all_pass(records)
        assert max(r.max_rel_err for r in records) < 1e-13  # float32 anywhere on the path would give ~1e-7
    else:
        assert reason is not None and "Dense (ops.matmul)" in reason and "float32" in reason
        conv = next(c for c in cases.conv_cases() if not c.loss)
        assert fw.dtype_reason(conv, "float64") is None  # its convolution computes in float64


@pytest.mark.parametrize("name", BACKENDS)
def test_the_float64_limit_of_torch_is_true(name):
    """What ``dtype_reason`` claims of Keras on torch, Keras on torch confirms: a float64 Linear case computed
    anyway errs at float32's level, far above its float64 tolerance; JAX computes it in float64."""
    fw = framework_or_skip(name)
    case = next(c for c in cases.all_cases() if c.layer == "Linear")
    records = harness.compare(case, "n/a", "float64", fw)
    worst = max(r.max_rel_err for r in records)
    assert (worst > 1e-9) == (name == "keras-torch"), (name, worst)


@pytest.mark.parametrize("name", BACKENDS)
def test_an_exception_in_the_worker_is_a_failed_record_with_its_reason(name):
    fw = framework_or_skip(name)
    case = next(c for c in cases.all_cases() if c.layer == "ReLU")

    def wrong_parameters(case, params, *args, **kwargs):
        return fw.run(case, {"0.weight": np.zeros(3)}, *args, **kwargs)  # ReLU has no weight: KeyError there

    records = harness.compare(case, "n/a", "float32", dataclasses.replace(fw, run=wrong_parameters))
    assert records and not any(r.passed for r in records)
    assert all("[framework failed:" in r.config and "KeyError" in r.config for r in records), records[0].config
    assert {r.quantity for r in records} == {"forward", "dx"}
    assert_all_pass(harness.compare(case, "n/a", "float32", fw))  # the worker serves on


class KillOnArrival:
    """An argument whose unpickling sends SIGKILL to process ``pid``: the worker dies while it receives a request."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def __reduce__(self):
        return os.kill, (self.pid, signal.SIGKILL)


@pytest.mark.parametrize("name", [BACKENDS[1]])  # one backend: a fresh worker costs its import again
def test_a_worker_dying_during_run_is_a_failed_record_with_its_reason_and_is_replaced(name):
    fw = framework_or_skip(name)
    case = next(c for c in cases.all_cases() if c.layer == "ReLU")
    pid = worker._WORKERS[name].process.pid  # the worker this test process started

    def dying(case, params, *args, **kwargs):
        return fw.run(case, {"0.weight": KillOnArrival(pid)}, *args, **kwargs)

    records = harness.compare(case, "n/a", "float32", dataclasses.replace(fw, run=dying))
    assert records and not any(r.passed for r in records)
    assert all(f"worker process {pid} died during 'run': killed by SIGKILL" in r.config for r in records), \
        records[0].config
    assert_all_pass(harness.compare(case, "n/a", "float32", fw))  # a fresh worker
    assert worker._WORKERS[name].process.pid != pid


@pytest.mark.parametrize("name", BACKENDS)
def test_the_backends_reasons_for_what_they_skip(name):
    """Where a backend's Keras computes otherwise than TensorFlow's, its reason says so: PyTorch's asymmetric "same"
    average pooling replicates the edge cells."""
    fw = framework_or_skip(name)
    case = next(c for c in cases.all_cases() if c.id == "avgpool-k3-s2-ceil-keras-same")
    reason = fw.unsupported(case)
    if name == "keras-torch":
        assert reason is not None and "replicating the edge cells" in reason
    else:
        assert reason is None
        assert_all_pass(harness.compare(case, "im2col", "float32", fw))
