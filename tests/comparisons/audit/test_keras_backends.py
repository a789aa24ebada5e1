"""Keras backend probes (audit/keras_backends.py): float64 per backend, batch norm's batch variance of a large-mean
float32 batch, TensorFlow's convolution with oneDNN on and off. Each backend side runs in a child process."""

from __future__ import annotations

import pytest

from comparisons.audit import keras_backends  # noqa: F401  (registers its probes)

from .helpers import check, ev, finding

F64 = "keras-backend-float64"
BN = "keras-backend-batchnorm-variance"
ONEDNN = "keras-tf-onednn-conv"

# (side, marker): what each side computes a float64 Conv2D and Dense in, and the dtype Dense returns
FLOAT64 = [pytest.param("keras", ("float64", "float64", "float64"), marks=pytest.mark.keras),
           pytest.param("keras-jax", ("float64", "float64", "float64"), marks=getattr(pytest.mark, "keras-jax")),
           pytest.param("keras-jax (x64 off)", ("float32", "float32", "float32"),
                        marks=getattr(pytest.mark, "keras-jax")),
           pytest.param("keras-torch", ("float64", "float32", "float32"), marks=getattr(pytest.mark, "keras-torch")),
           pytest.param("reference", ("float64", "float64", "float64"))]


@pytest.mark.parametrize("side,expected", FLOAT64)
def test_float64_per_backend(side, expected):
    e = ev(F64, side)
    conv, dense, dense_dtype = expected
    check(F64, side, "conv computed in", e["conv_computed_in"], conv, "error vs float64 numpy below 1e-12")
    check(F64, side, "dense computed in", e["dense_computed_in"], dense, "error vs float64 numpy below 1e-12")
    check(F64, side, "dense output dtype", e["dense_output_dtype"], dense_dtype, "the dtype Dense returns")
    bound = 1e-12 if conv == "float64" else 1e-5
    assert e["conv_rel_err"] < bound, (F64, side, e["conv_rel_err"])


@pytest.mark.parametrize("side,accurate", [pytest.param("keras", True, marks=pytest.mark.keras),
                                           pytest.param("keras-jax", True, marks=getattr(pytest.mark, "keras-jax")),
                                           pytest.param("keras-torch", False,
                                                        marks=getattr(pytest.mark, "keras-torch")),
                                           pytest.param("reference", True)])
def test_batchnorm_variance_of_a_large_mean_batch(side, accurate):
    """Two-pass variances err ~1e-6 here; Keras on torch's one-pass E[x^2] - E[x]^2 loses the variance (1) to
    cancellation against x^2 ~ 1e8."""
    e = ev(BN, side)
    check(BN, side, "variance within 1e-2", e["variance_rel_err"] < 1e-2, accurate, "a two-pass batch variance")


@pytest.mark.keras
def test_onednn_changes_tensorflow_conv_results_in_the_last_bits():
    on, off = ev(ONEDNN, "keras (oneDNN on)"), ev(ONEDNN, "keras (oneDNN off)")
    check(ONEDNN, "keras (oneDNN on)", "oneDNN enabled", on["onednn_enabled"], True, "TF_ENABLE_ONEDNN_OPTS=1")
    check(ONEDNN, "keras (oneDNN off)", "oneDNN enabled", off["onednn_enabled"], False, "TF_ENABLE_ONEDNN_OPTS=0")
    differences = finding(ONEDNN).comparison["on_vs_off"]
    assert set(differences) == {"forward", "dx", "dw"}
    for key, d in differences.items():
        assert d["max_rel_diff"] < 1e-5, (ONEDNN, key, d)  # float32 rounding, not another computation
    assert not all(d["bitwise_equal"] for d in differences.values()), differences
