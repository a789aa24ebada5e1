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
         "batchnorm", "dropout", "relu", "leakyrelu", "sigmoid", "tanh", "flatten", "linear", "convtranspose",
         "upsample", "layernorm", "groupnorm", "gelu", "softmax", "hardsigmoid")


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
    records = harness.compare(case, None, "float64", fw)
    worst = max(r.max_rel_err for r in records)
    assert (worst > 1e-9) == (name == "keras-torch"), (name, worst)


@pytest.mark.parametrize("name", BACKENDS)
def test_an_exception_in_the_worker_is_a_failed_record_with_its_reason(name):
    fw = framework_or_skip(name)
    case = next(c for c in cases.all_cases() if c.layer == "ReLU")

    def wrong_parameters(case, inputs):  # ReLU has no weight: KeyError there
        return fw.run(case, dataclasses.replace(inputs, params={"0.weight": np.zeros(3)}))

    records = harness.compare(case, None, "float32", dataclasses.replace(fw, run=wrong_parameters))
    assert records and not any(r.passed for r in records)
    assert all("[framework failed:" in r.config and "KeyError" in r.config for r in records), records[0].config
    assert {r.quantity for r in records} == {"forward", "dx"}
    assert_all_pass(harness.compare(case, None, "float32", fw))  # the worker serves on


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

    def dying(case, inputs):
        return fw.run(case, dataclasses.replace(inputs, params={"0.weight": KillOnArrival(pid)}))

    records = harness.compare(case, None, "float32", dataclasses.replace(fw, run=dying))
    assert records and not any(r.passed for r in records)
    assert all(f"worker process {pid} died during 'run': killed by SIGKILL" in r.config for r in records), \
        records[0].config
    assert_all_pass(harness.compare(case, None, "float32", fw))  # a fresh worker
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


# the options of the transposed convolution, resizing, layer and group norm and the activations, each once
OPTION_CASES = (
    "convtranspose-c3-f4-k3-s2-p1-op1-d1-g1-single-nobias",  # padding cropped, output_padding
    "convtranspose-c3-f3-k4-s2-p1-op0-d1-g1-single-bias",
    "upsample-nearest-scale_factor3.0-single-3x4x5",  # UpSampling2D (a repeat)
    "upsample-bilinear-acFalse-scale_factor2.0-batch-2x3x4x5",  # UpSampling2D bilinear
    "upsample-nearest-exact-scale_factor0.6-recompute_scale_factorTrue-batch-2x2x5x7",  # Resizing nearest, down
    "upsample-bilinear-acFalse-size7x9-batch-2x2x4x5",  # Resizing bilinear, a size
    "layernorm-3x4x5-in2x3x4x5",  # over (C, H, W): the parameters (H, W, C)
    "layernorm-4x5-in2x3x4x5-elementwise_affineFalse",  # over (H, W); torch refuses it
    "layernorm-7-in6x7", "groupnorm-g3-batch-2x6x4x5-eps0.001", "groupnorm-g2-batch-2x4x3x5-affineFalse",
    "gelu-none-scale5-single", "gelu-tanh-scale1-single", "softmax-dim-3-2x3x4x5-scale1-batch",
    "softmax-dim0-6x10-scale1-batch", "hardsigmoid-scale4-batch",
)


@pytest.mark.parametrize("dtype", cases.DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_the_options_of_the_resizing_norm_and_activation_kinds_match(name, dtype):
    """Each option case matches the reference, or is skipped for a reason the backend gives; most are compared."""
    fw = framework_or_skip(name)
    chosen = [c for c in cases.all_cases() if c.id in OPTION_CASES]
    assert len(chosen) == len(OPTION_CASES)
    compared = 0
    for case in chosen:
        if harness.skip_reason(fw, case, dtype) is None:
            assert_all_pass(harness.compare(case, cases.expand([case])[0][1], dtype, fw))
            compared += 1
    assert compared >= len(chosen) // 2, f"{name} {dtype}: only {compared} of {len(chosen)} cases compared"


@pytest.mark.parametrize("name", BACKENDS)
def test_the_backends_conventions_and_limits_of_the_norm_and_activation_kinds(name):
    """Keras on torch: hard_sigmoid is torch's (the float32 1/6 in its backward: ``float32_slope=True``), a layer
    norm over axes that are not the trailing channels-last ones is refused, layer and group norm compute float64 in
    float32; on JAX: the exact 1/6, any axes, and gelu's tanh form's float64 gradient is refused."""
    fw = framework_or_skip(name)
    by_id = {c.id: c for c in cases.all_cases()}
    hard = by_id["hardsigmoid-scale4-batch"]
    assert fw.reference_case(hard).specs[0].kwargs.get("float32_slope", False) == (name == "keras-torch")
    assert_all_pass(harness.compare(hard, None, "float64", fw))
    over_hw = by_id["layernorm-4x5-in2x3x4x5-elementwise_affineFalse"]
    reason = fw.unsupported(over_hw)
    assert (reason is not None and "torch.nn.functional.layer_norm" in reason) == (name == "keras-torch")
    for cid in ("layernorm-3x4x5-in2x3x4x5", "groupnorm-g2-batch-2x6x4x5"):
        assert "computes float64 in float32" in fw.dtype_reason(by_id[cid], "float64")
    gelu = fw.dtype_reason(by_id["gelu-tanh-scale5-batch"], "float64")
    assert (gelu is not None and "jax.nn.gelu" in gelu) == (name == "keras-jax")
