"""The JAX/Flax framework (:mod:`comparisons.frameworks.jaxflax`): a subset of the shared case matrix holding every
layer kind and option at least once (both dtypes, both implementations where spatial), its convention switch
(the biased running variance), and its trainer against the reference's.

The whole matrix runs in ``tests/comparisons/test_matrix.py`` and ``cnnref verify``; here each case costs one
XLA compilation (about 0.5 s; the second implementation reuses it), so the subset stays small.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import reference as ref
from comparisons import cases, harness
from comparisons.frameworks.jaxflax import capability
from comparisons.trainers import make_trainer
from tests.comparisons.helpers import assert_all_pass
from tests.frameworks import framework_or_skip

pytestmark = pytest.mark.jax

# (case id, dtype): every kind and option of the matrix at least once
SUBSET = [
    ("upsample-nearest-scale_factor1.7-batch-2x2x5x6", "float64"),
    ("upsample-bilinear-acFalse-scale_factor0.5-batch-2x2x7x6", "float32"),
    ("conv-k3x3-s2-p1-d2-single-nobias", "float64"),
    ("conv-grouped-c4-f4-g2-k2x3-s2-p1x0-d1-single-nobias", "float32"),
    ("conv-depthwise-c3-f6-g3-k3x3-s2-p1-d1-single-nobias", "float64"),
    ("conv-same-k4-batch", "float32"),
    ("conv-valid-k3-batch", "float64"),
    ("conv-pad-1x2-0x3-k3-s2x1-batch", "float64"),
    ("conv-keras-same-k4x5-s3x2-in11x9-single", "float32"),
    ("conv-reflect-p2x1-k3x2-s2x1-d1x2-single", "float64"),
    ("conv-replicate-p4x5-in3x4-k3-batch", "float32"),
    ("conv-circular-same-k4-d2-single", "float64"),
    ("maxpool-k3x3-s2-p1-single", "float32"),
    ("maxpool-k3-s1-p1-d2", "float64"),
    ("maxpool-k3-s2-p1-d2-ceil-indices", "float32"),
    ("maxpool-k2-s2-p1-ceil-indices-single", "float64"),
    ("maxpool-k3-s3-p1-ceil-drop", "float64"),
    ("avgpool-k3x3-s2-p1-single", "float64"),
    ("avgpool-k3-s2-p1-ceil", "float32"),
    ("avgpool-k3-s2-p1-exclude-pad", "float32"),
    ("avgpool-k3-s2-p1-ceil-exclude-pad", "float64"),
    ("avgpool-k3-s2-p1-ceil-divisor4-single", "float32"),
    ("adaptiveavg-3x5-to-5x7-upsample", "float64"),
    ("adaptivemax-9x4-to-4xNone-single", "float32"),
    ("adaptivemax-5x7-to-3x4-indices", "float64"),
    ("globalmax-5x7", "float32"),
    ("globalavgpool-single-3x7x6", "float64"),
    ("batchnorm-train-eps0.001-m0.3-batch-4x2x3x3", "float64"),
    ("batchnorm-eval-eps0.001-m0.1-single-3x5x4", "float32"),
    ("dropout-train-p0.5-batch-2x3x5x4", "float32"),
    ("dropout-eval-p0.3-batch-4x7", "float64"),
    ("flatten-dropout-linear-train", "float64"),
    ("relu-single", "float32"),
    ("leakyrelu-slope0.2-scale1-single", "float64"),
    ("sigmoid-scale30-batch", "float32"),
    ("tanh-scale10-batch", "float64"),
    ("linear-flat-nobias", "float32"),
    ("flatten-linear-single", "float64"),
    ("cross-entropy-scale10000", "float64"),
    ("ce-idx-N8C5-none-weight-ign-100-ls0.1", "float64"),
    ("ce-idx-N3C4d2x3-mean-weight-ign-100-ls0.1", "float32"),
    ("ce-idx-N2C3d5-sum-ign-100", "float64"),
    ("ce-prob-N3C4d2x3-none-weight-ls0.3", "float64"),
    ("ce-prob-N6C10-mean-ls0.1-scale1e4", "float32"),
    ("convtranspose-c3-f4-k3-s2-p1-op1-d1-g1-single-nobias", "float32"),
    ("convtranspose-c2-f3-k3x2-s1x2-p0x1-op0x1-d2x1-g1-batch-bias", "float64"),
    ("layernorm-3x4x5-in2x3x4x5", "float64"),
    ("layernorm-4x5-in2x3x4x5-elementwise_affineFalse", "float32"),
    ("layernorm-6-in3x4x6-biasFalse", "float64"),
    ("groupnorm-g3-batch-2x6x4x5-eps0.001", "float32"),
    ("groupnorm-g2-batch-2x4x3x5-affineFalse", "float64"),
    ("gelu-none-scale5-single", "float64"),
    ("gelu-tanh-scale5-batch", "float32"),
    ("hardsigmoid-scale4-single", "float64"),
    ("softmax-dim-3-2x3x4x5-scale1-batch", "float32"),
    ("bce-logits-N6C5-none-weight-posweight", "float64"),
    ("bce-logits-N6C5-sum-weight-soft-edges-scale800", "float32"),
    ("bce-probs-N6C5-mean-weight-edges", "float64"),
    ("bce-probs-N3C4H2W3-none-weight-soft", "float32"),
    ("softmax-dim1-5x3x4-scale2-single", "float64"),
    ("tutorial-cnn-batch", "float32"),
    ("vgg-cnn-train", "float64"),
]
CASES = {c.id: c for c in cases.all_cases()}


@pytest.fixture(scope="module")
def jax_framework():
    """The JAX :class:`~comparisons.frameworks.protocol.Framework`, loaded once (skips when jax is missing)."""
    return framework_or_skip("jax")


def test_subset_covers_every_kind_and_dtype():
    """The subset holds every layer kind of the matrix that the adapter builds, every option key of those layers,
    and both dtypes."""
    built = [s for c in cases.all_cases() for s in c.specs if s.kind in capability.KINDS]
    chosen = [s for cid, _ in SUBSET for s in CASES[cid].specs]
    assert {s.kind for s in built} <= {s.kind for s in chosen}, {s.kind for s in built} - {s.kind for s in chosen}
    options = {(s.kind, k) for s in built for k in s.kwargs}
    assert options <= {(s.kind, k) for s in chosen for k in s.kwargs}, options - {(s.kind, k) for s in chosen
                                                                                    for k in s.kwargs}
    assert {dtype for _, dtype in SUBSET} == set(cases.DTYPES)


@pytest.mark.parametrize(("cid", "dtype"), SUBSET, ids=[f"{cid}-{dtype}" for cid, dtype in SUBSET])
def test_matches(cid, dtype, jax_framework):
    case = CASES[cid]
    assert harness.skip_reason(jax_framework, case, dtype) is None
    for impl in case.impls:
        records = harness.compare(case, impl, dtype, jax_framework)
        assert {"forward", "dx"} <= {r.quantity for r in records}
        assert_all_pass(records)


def test_every_matrix_case_is_expressed(jax_framework):
    """Flax/JAX expresses every case whose layer kinds the adapter builds, except a grouped transposed conv; a
    case with another kind is refused with a reason naming that layer."""
    for case in cases.all_cases():
        reason = jax_framework.unsupported(case)
        foreign = [(i, s.kind) for i, s in enumerate(case.specs) if s.kind not in capability.KINDS]
        grouped = [i for i, s in enumerate(case.specs) if s.kind == "convtranspose" and s.kwargs["groups"] > 1]
        if foreign:
            i, kind = foreign[0]
            assert reason.startswith(f"layer {i} ({kind}): no Flax/JAX builder"), (case.id, reason)
        elif grouped:
            assert reason.startswith(f"layer {grouped[0]} (convtranspose): nnx.ConvTranspose and "
                                     "lax.conv_transpose have no groups"), (case.id, reason)
        else:
            assert reason is None, (case.id, reason)


def test_gelu_tanh_float64_is_refused(jax_framework):
    """float64 gelu(approximate="tanh") is refused with the measured reason; float32 and the erf form run."""
    tanh, erf = CASES["gelu-tanh-scale5-batch"], CASES["gelu-none-scale5-single"]
    assert "gelu(approximate=True)" in harness.skip_reason(jax_framework, tanh, "float64")
    assert harness.skip_reason(jax_framework, tanh, "float32") is None
    assert harness.skip_reason(jax_framework, erf, "float64") is None


def test_biased_running_variance(jax_framework):
    """nnx.BatchNorm folds the biased batch variance into its running var: the reference is switched to it."""
    case = cases.batchnorm_cases()[0]
    assert case.specs[0].kwargs["unbiased_running_var"]
    switched = jax_framework.reference_case(case)
    assert switched.specs[0].kwargs == {**case.specs[0].kwargs, "unbiased_running_var": False}
    relu = CASES["relu-single"]
    assert jax_framework.reference_case(relu) is relu


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_trainer_follows_reference(optimizer, jax_framework):
    """The tutorial CNN trained 3 steps in float64 from the same weights on the same batches: optax's Adam
    (eps 1e-8 after the bias correction) and SGD give the reference's (PyTorch's) losses and weights."""
    case = dataclasses.replace(cases.tutorial_cases()[1], loss=cases.PLAIN_CROSS_ENTROPY)
    params = {k: np.array(v) for k, v in cases.build_reference(case, "im2col", "float64").params.items()}
    ours = make_trainer("reference", case, params, "float64", optimizer, 1e-3)
    theirs = make_trainer("jax", case, params, "float64", optimizer, 1e-3)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x, y = rng.uniform(0, 1, (4, 1, 28, 28)), rng.integers(0, 10, 4)
        (loss, correct), (jloss, jcorrect) = ours.step(x, y), theirs.step(x, y)
        assert correct == jcorrect
        assert abs(jloss - loss) <= 1e-12 * abs(loss), (optimizer, loss, jloss)
    x = rng.uniform(0, 1, (2, 1, 28, 28))
    assert np.allclose(theirs.predict(x), ours.predict(x), rtol=1e-10, atol=1e-12)
    exported = theirs.params()
    assert exported.keys() == params.keys()
    for key, value in ours.params().items():
        # Adam's first steps move each weight by about lr: float64 rounding of that, a few ulps of the weight
        assert np.allclose(exported[key], value, rtol=1e-10, atol=1e-13), key


@pytest.mark.parametrize("dtype", cases.DTYPES)
def test_binary_cross_entropy_clamps_as_pytorch_at_zero_and_one(dtype, jax_framework):
    """At probabilities of exactly 0 and 1, every pairing with targets 0 and 1: the loss clamps each log at -100
    and the gradient is ``(p - t) / max(p (1 - p), 1e-12)``, the reference's (PyTorch's) values; Keras' clipping
    (``clip_epsilon``) is refused."""
    import jax

    from comparisons.frameworks.jaxflax import losses

    p = np.array([0.0, 0.0, 1.0, 1.0, 0.25], dtype)
    t = np.array([0.0, 1.0, 0.0, 1.0, 1.0], dtype)
    loss, vjp = jax.vjp(lambda q: losses.binary_cross_entropy(q, t, reduction="none"), p)
    ours, dours = ref.binary_cross_entropy(p, t, reduction="none", dloss=np.ones(5, dtype))
    np.testing.assert_allclose(np.asarray(loss), ours, rtol=4 * np.finfo(dtype).eps)
    np.testing.assert_allclose(np.asarray(vjp(np.ones(5, dtype))[0]), dours, rtol=4 * np.finfo(dtype).eps)
    assert np.asarray(loss)[1] == np.asarray(loss)[2] == 100.0
    clipped = dataclasses.replace(CASES["bce-probs-N6C5-mean"], loss=dataclasses.replace(
        CASES["bce-probs-N6C5-mean"].loss, clip_epsilon=1e-7))
    assert "clip_epsilon is Keras' clipping" in jax_framework.unsupported(clipped)
