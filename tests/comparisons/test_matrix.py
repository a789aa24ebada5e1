"""The case matrix against every registered framework: forward, dx and every parameter gradient and buffer
of each ``(case, impl, dtype)`` run, and random conv / max-pool / average-pool cases (hypothesis).

A case a framework cannot express exactly is skipped with the framework's reason (``unsupported``); which
reasons, and how many runs each, are pinned per framework in :data:`ALLOWED_SKIPS`.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from comparisons import cases, harness
from tests import strategies
from tests.comparisons.helpers import FRAMEWORK_PARAMS, assert_all_pass, framework

TRIPLES = cases.expand(cases.all_cases())

# What each framework cannot express: the start of its reason ("{keras}" etc. are the installed packages' versions,
# from the framework's ``versions``; "{name}" the framework's name) and how many (case, impl, dtype) runs of the
# matrix it skips. A change in a framework module that skips more (or other) runs fails here instead of passing as
# skips.
KERAS_LIMITS = {
    "layer 0 (conv): Keras Conv2D rejects strides > 1 together with dilation_rate > 1": 144,
    "cross-entropy: no Keras equivalent of class weights with label smoothing or probability targets": 16,
    "layer 0 (maxpool): Keras MaxPooling2D has no dilation": 12,
    "layer 0 (avgpool): Keras has no average pooling that leaves the padding out of the divisor": 12,
    "layer 0 (avgpool): Keras AveragePooling2D has no divisor_override": 8,
    "layer 0 (maxpool): Keras MaxPooling2D has no return_indices": 4,
    "layer 0 (adaptivemaxpool): Keras AdaptiveMaxPooling2D has no return_indices": 2,
    "layer 0 (adaptivemaxpool): Keras {keras} AdaptiveMaxPooling2D max-pools with a window of": 2,
    "layer 0 (convtranspose): Keras Conv2DTranspose has no groups": 12,
    "layer 0 (convtranspose): Keras Conv2DTranspose rejects strides > 1 together with dilation_rate > 1": 4,
    "layer 0 (convtranspose): Keras Conv2DTranspose requires output_padding < strides": 4,
    "layer 0 (upsample): Keras' Resizing and UpSampling2D have no align_corners=True": 40,
    "layer 0 (upsample): Keras' nearest resizing is PyTorch's nearest-exact": 28,  # mode="nearest", not 1x or 2x
    "layer 0 (upsample): Keras resizes with the scale in / out": 24,  # scale_factor without recompute_scale_factor
    "binary cross-entropy: Keras' BinaryCrossentropy has no pos_weight": 6,
}
# what Keras on TensorFlow computes otherwise beyond rounding, in one dtype (keras3.capability.PRECISION_LIMITS)
KERAS_TENSORFLOW_LIMITS = {
    "layer 0 (gelu): Keras {keras} on tensorflow, float64: tf.nn.gelu": 4,
    "layer 0 (upsample): Keras {keras} on tensorflow, float64: tf.image.resize's bilinear kernel": 12,
    "layer 0 (softmax): Keras {keras} on tensorflow, float32: TensorFlow's float32 softmax": 1,
}
ONNX_RUNTIME_LIMITS = {
    "layer 0 (conv): ONNX Runtime's CPU provider has no float64 Conv kernel": 266,
    "layer 0 (avgpool): ONNX Runtime's CPU provider has no float64 AveragePool kernel": 60,
    "layer 0 (adaptiveavgpool): ONNX Runtime's CPU provider has no float64 AveragePool kernel": 2,
    "layer 0 (globalavgpool): ONNX Runtime's CPU provider has no float64 GlobalAveragePool kernel": 8,
    "layer 0 (adaptiveavgpool): the exporter refuses adaptive_avg_pool2d": 8,
    "layer 0 (adaptivemaxpool): the exporter refuses adaptive_max_pool2d": 10,
    "layer 0 (avgpool): the exporter drops divisor_override": 8,
    "layer 0 (batchnorm): ONNX stores BatchNormalization's epsilon as a float32 attribute": 3,
    "layer 0 (batchnorm): training mode updates the running statistics": 10,
    "layer 1 (batchnorm): training mode updates the running statistics": 4,
    "layer 0 (conv): the exporter writes padding='same' as auto_pad=SAME_UPPER": 12,
    "layer 0 (leakyrelu): ONNX stores LeakyRelu's alpha as a float32 attribute": 3,
    "layer 0 (layernorm): ONNX stores LayerNormalization's epsilon as a float32 attribute": 6,
    "layer 0 (convtranspose): ONNX Runtime's CPU provider has no float64 ConvTranspose kernel": 16,
    "layer 0 (convtranspose): ONNX Runtime's ConvTranspose refuses output_padding >= stride": 4,
    "layer 0 (groupnorm): ONNX Runtime's CPU provider has no float64 InstanceNormalization kernel": 7,
    "layer 0 (gelu): ONNX Runtime's CPU provider has no float64 Erf kernel": 2,  # approximate="none"
    "layer 0 (hardsigmoid): ONNX Runtime's CPU provider has no float64 HardSigmoid kernel": 3,
    "layer 0 (upsample): ONNX Runtime's CPU provider has no float64 Resize kernel": 56,
    "layer 0 (upsample): the exporter refuses mode='nearest-exact'": 40,
    "layer 0 (upsample): the exported Resize maps every output cell with the given scale factor": 8,
    "softmax_cross_entropy: ONNX SoftmaxCrossEntropyLoss takes integer class labels only": 14,
    "softmax_cross_entropy: the exporter refuses label_smoothing": 12,
    "binary_cross_entropy: the exporter refuses it": 14,
    "binary_cross_entropy_with_logits: the exporter writes it as log(sigmoid(x)) and log(1 - sigmoid(x))": 4,
}
ALLOWED_SKIPS = {
    "torch": {},
    "keras": {**KERAS_LIMITS, **KERAS_TENSORFLOW_LIMITS},
    "keras-torch": {**KERAS_LIMITS, "Keras {keras} on torch computes float64 in float32": 66,
                    'layer 0 (avgpool): Keras {keras} on torch pads asymmetric "same" average pooling': 8,
                    "layer 0 (layernorm): Keras {keras} on torch hands LayerNormalization's axes": 6},
    "keras-jax": {**KERAS_LIMITS, "Keras {keras} on jax computes float64 in float32": 47,
                  "layer 0 (gelu): Keras {keras} on jax, float64: the autodiff derivative of jax.nn.gelu": 2},
    "jax": {"layer 0 (convtranspose): nnx.ConvTranspose and lax.conv_transpose have no groups": 12,
            "layer 0 (gelu): JAX's float64 gradient of gelu(approximate=True)": 2},
    "onnxruntime": ONNX_RUNTIME_LIMITS,
    "onnxruntime-optimized": ONNX_RUNTIME_LIMITS,
}
# the fewest runs of the matrix that go ahead against each framework (without an entry: every run)
RUNS_AT_LEAST = {"torch": 1234, "keras": 899, "keras-torch": 836, "keras-jax": 867, "jax": 1220, "onnxruntime": 654,
                 "onnxruntime-optimized": 654}
# Frameworks run here on every SAMPLE_STEP-th run of the matrix (their own test module holds a representative
# subset of every kind and option, and `cnnref verify --framework NAME` runs it all): JAX compiles each new shape
# (0.3-1 s), the Keras backends run in a worker process, ONNX Runtime exports each model. The others: every run.
SAMPLED = ("jax", "keras-jax", "keras-torch", "onnxruntime", "onnxruntime-optimized")
SAMPLE_STEP = 25


# the frameworks that also run the batch-norm buffer test and the random (hypothesis) cases here; the sampled ones
# run theirs in their own test module
EVERY_RUN_PARAMS = [param for param in FRAMEWORK_PARAMS if param.values[0] not in SAMPLED]


def allowed_skip(fw, reason: str) -> list[str]:
    """The entries of :data:`ALLOWED_SKIPS` (as written there) whose start ``reason`` has; a framework without
    an entry may skip nothing."""
    return [prefix for prefix in ALLOWED_SKIPS.get(fw.name, {})
            if reason.startswith(prefix.format(**fw.versions, name=fw.name))]


def matrix_runs():
    """``(framework, (case, impl, dtype))`` parameters: every run for most frameworks, a sample for
    :data:`SAMPLED`."""
    for param in FRAMEWORK_PARAMS:
        name = param.values[0]
        triples = TRIPLES[::SAMPLE_STEP] if name in SAMPLED else TRIPLES
        for triple in triples:
            yield pytest.param(name, triple, marks=param.marks, id=f"{name}-{cases.triple_id(triple)}")


@pytest.mark.parametrize("name, triple", list(matrix_runs()))
def test_matches(name, triple):
    fw = framework(name)
    case, impl, dtype = triple
    reason = harness.skip_reason(fw, case, dtype)
    if reason is not None:
        assert len(allowed_skip(fw, reason)) == 1, f"{name}: unexpected skip reason {reason!r}"
        pytest.skip(reason)
    records = harness.compare(case, impl, dtype, fw)
    expected = {"forward", "dx"} | ({"loss"} if case.loss else set())
    assert expected <= {r.quantity for r in records}
    assert_all_pass(records)


@pytest.mark.parametrize("name", FRAMEWORK_PARAMS)
def test_the_matrix_skips_only_the_known_limits(name):
    """Each skipped run is explained by exactly one known limit, with the counts of :data:`ALLOWED_SKIPS`."""
    fw = framework(name)
    allowed = ALLOWED_SKIPS.get(name, {})
    counts = dict.fromkeys(allowed, 0)
    for case, impl, dtype in TRIPLES:
        reason = harness.skip_reason(fw, case, dtype)
        if reason is None:
            continue
        limits = allowed_skip(fw, reason)
        assert len(limits) == 1, f"{cases.triple_id((case, impl, dtype))}: unexpected skip reason {reason!r}"
        counts[limits[0]] += 1
    assert counts == allowed
    assert len(TRIPLES) - sum(counts.values()) >= RUNS_AT_LEAST.get(name, len(TRIPLES))


@pytest.mark.parametrize("name", EVERY_RUN_PARAMS)
def test_batchnorm_buffers_are_compared(name):
    """Batch norm compares its running statistics after the forward, in training and in evaluation mode, alone
    and inside the VGG-style CNN."""
    fw = framework(name)
    for case in cases.batchnorm_cases()[:1] + [c for c in cases.batchnorm_cases() if c.eval_mode][:1]:
        quantities = {r.quantity for r in harness.compare(case, None, "float64", fw)}
        assert {"running_mean", "running_var", "weight", "bias"} <= quantities
    vgg = harness.compare(cases.vgg_cases()[0], "im2col", "float64", fw)
    assert {"1.running_var", "5.running_mean", "12.weight"} <= {r.quantity for r in vgg}


# -- random cases (hypothesis) ---------------------------------------------------------------------------
@st.composite
def keras_conv_cases(draw) -> cases.Case:
    """``strategies.conv_cases`` without what Keras cannot express: stride > 1 together with
    dilation > 1 (Keras rejects it).

    Filtering would discard most draws; instead one of stride and dilation is set to 1 (the
    input still fits: the effective kernel only shrinks).
    """
    case = draw(strategies.conv_cases())
    kw = case.specs[0].kwargs
    if max(kw["stride"]) > 1 and max(kw["dilation"]) > 1:
        kw[draw(st.sampled_from(("stride", "dilation")))] = (1, 1)
        case = dataclasses.replace(case, specs=(cases.spec("conv", **kw),),
                                   id=f"{case.id}-s{kw['stride']}-d{kw['dilation']}-{kw['padding_mode']}")
    return case


def undilated(case: cases.Case) -> cases.Case:
    """A max-pooling case with dilation 1 (Keras' MaxPooling2D has none); any padding and ceil_mode stay
    (through -inf padding where "same" differs)."""
    kw = case.specs[0].kwargs
    if kw["dilation"] == (1, 1):
        return case
    return dataclasses.replace(case, specs=(cases.spec("maxpool", **{**kw, "dilation": (1, 1)}),), id=f"{case.id}-d1")


# per layer kind: the random cases, every option drawn; a framework that cannot express some of them runs
# those of PROPERTY_CASES_WITHIN instead (each within what it expresses)
PROPERTY_CASES = {
    "conv": strategies.conv_cases(),
    "maxpool": strategies.pool_cases("maxpool", options=True),
    "avgpool": strategies.pool_cases("avgpool", options=True),
}
PROPERTY_CASES_WITHIN = {
    "keras": {"conv": keras_conv_cases(), "maxpool": PROPERTY_CASES["maxpool"].map(undilated),
              "avgpool": strategies.pool_cases("avgpool")},
}
# Each Keras example builds fresh Keras layers (a few ms each, plus the reference loop): 50 examples
# keep a test near a second while covering odd sizes, rectangular kernels and both dtypes. The others run
# the profile's number.
PROPERTY_SETTINGS = {"keras": {"max_examples": 50}}


def check_random_cases(name: str, kind: str) -> None:
    """Every random ``kind`` case framework ``name`` runs (:data:`PROPERTY_CASES`, or its own
    :data:`PROPERTY_CASES_WITHIN`) is expressed by it and matches."""
    fw = framework(name)
    drawn = PROPERTY_CASES_WITHIN.get(name, PROPERTY_CASES)[kind]

    @settings(**PROPERTY_SETTINGS.get(name, {}))
    @given(case=drawn, impl=strategies.impls, dtype=strategies.dtypes)
    def matches(case, impl, dtype):
        assert harness.skip_reason(fw, case, dtype) is None
        assert_all_pass(harness.compare(case, impl, dtype, fw))

    matches()


@pytest.mark.parametrize("name", EVERY_RUN_PARAMS)
def test_conv_property_matches(name):
    check_random_cases(name, "conv")


@pytest.mark.parametrize("name", EVERY_RUN_PARAMS)
def test_maxpool_property_matches(name):
    check_random_cases(name, "maxpool")


@pytest.mark.parametrize("name", EVERY_RUN_PARAMS)
def test_avgpool_property_matches(name):
    check_random_cases(name, "avgpool")
