"""The harness's own logic (:mod:`comparisons.harness`): the tolerance formula and its float64 level over the
matrix, the error measure's edge cases (zeros, empty arrays, different shapes, nan), and quantity names."""

from __future__ import annotations

import numpy as np
import pytest

import reference as ref
from comparisons import cases, harness

TRIPLES = cases.expand(cases.all_cases())


def test_tolerance_is_four_eps_times_the_reduction_length_at_least_four():
    eps64, eps32 = np.finfo(np.float64).eps, np.finfo(np.float32).eps
    assert harness.tolerance("float64", 1) == harness.tolerance("float64", 4) == 16 * eps64
    assert harness.tolerance("float64", 100) == 400 * eps64
    assert harness.tolerance("float32", 144) == 576 * float(eps32)


def test_float64_tolerance_is_rounding_level():
    """Every float64 tolerance the matrix uses is at most 1e-10 relative."""
    worst = max(harness.tolerance("float64", harness.run_reference(c, impl, "float64").reduction_length)
                for c, impl, dt in TRIPLES if dt == "float64")
    assert worst <= 1e-10


def test_errors_are_relative_to_the_larger_of_the_magnitude_and_the_values():
    assert harness.errors([1.0, 2.5], [1.0, 2.0]) == (0.5, 0.25)
    assert harness.errors([1.0, 2.5], [1.0, 2.0], magnitude=10.0) == (0.5, 0.05)
    assert harness.errors([1.0, 2.5], [1.0, 2.0], magnitude=0.1) == (0.5, 0.25)


def test_errors_of_zeros_and_of_empty_arrays():
    assert harness.errors(np.zeros(3), np.zeros(3)) == (0.0, 0.0)
    assert harness.errors(np.zeros((0, 4)), np.zeros((0, 4))) == (0.0, 0.0)
    # nothing to scale by: any difference from an all-zero expectation is infinitely wrong
    assert harness.errors([1e-300, 0.0], np.zeros(2)) == (1e-300, float("inf"))
    # a magnitude gives the scale even where the values are all 0
    assert harness.errors([1e-3, 0.0], np.zeros(2), magnitude=1.0) == (1e-3, 1e-3)


def test_errors_refuse_arrays_of_different_shapes():
    with pytest.raises(ValueError, match=r"shapes differ, reference \(2, 3\) vs framework \(3, 2\)"):
        harness.errors(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="shapes differ"):
        harness.errors(np.zeros(1), np.zeros(()))


@pytest.mark.parametrize("magnitude", [0.0, 1.0])
@pytest.mark.parametrize("side", ["actual", "expected", "both"])
def test_a_nan_never_passes(side, magnitude):
    """A nan on either side gives a relative error no tolerance accepts (``rel <= tol`` is False)."""
    clean, with_nan = np.array([1.0, 2.0]), np.array([1.0, np.nan])
    actual = with_nan if side in ("actual", "both") else clean
    expected = with_nan if side in ("expected", "both") else clean
    _, rel = harness.errors(actual, expected, magnitude)
    assert not rel <= harness.tolerance("float64", 10**6)


def test_quantity_names_drop_the_layer_index_of_one_layer_cases():
    one = cases.conv_cases()[0]
    chain = cases.tutorial_cases()[0]
    assert harness.quantity_name("0.weight", one) == "weight"
    assert harness.quantity_name("forward", one) == "forward"
    assert harness.quantity_name("4.weight", chain) == "4.weight"


@pytest.mark.parametrize("dtype", cases.DTYPES)
@pytest.mark.parametrize("case", cases.binary_loss_cases(), ids=lambda c: c.id)
def test_binary_loss_runs_are_the_reference_functions_on_what_is_fed(case, dtype):
    """The reference run of a binary cross-entropy case is the reference function on the input and targets the
    framework is fed (probabilities in [0, 1] for ``binary_cross_entropy``), its loss recorded, the gradient's
    magnitude at least the gradient, and float64's tolerance at rounding level."""
    run = harness.run_reference(case, None, dtype)
    option, args = case.binary_loss, run.loss_args
    assert run.labels.shape == run.x.shape == case.input_shape and run.dout is None
    if option.logits:
        expected = ref.binary_cross_entropy_with_logits(run.x, run.labels, args["weight"], args["pos_weight"],
                                                        option.reduction, args["dloss"])
    else:
        assert 0 <= run.x.min() and run.x.max() <= 1
        expected = ref.binary_cross_entropy(run.x, run.labels, args["weight"], option.reduction, args["dloss"])
    np.testing.assert_array_equal(run.results["loss"], expected[0])
    np.testing.assert_array_equal(run.results["dx"], expected[1])
    assert run.magnitudes["dx"] >= np.abs(run.results["dx"]).max()
    assert run.magnitudes["loss"] >= np.abs(run.results["loss"]).max()
    assert harness.tolerance("float64", run.reduction_length) <= 1e-13


def test_binary_logits_loss_magnitude_carries_the_cancelled_logits():
    """On logits ``(1 - t) x - log_sigmoid(x)`` cancels terms of the logits' size: the loss's magnitude holds them
    (scale 40: the mean of |x| is of the size of the loss itself)."""
    case = next(c for c in cases.binary_loss_cases() if c.id == "bce-logits-N6C5-mean-scale40")
    run = harness.run_reference(case, None, "float64")
    assert run.magnitudes["loss"] >= float(np.abs(run.results["loss"])) + np.abs(run.x).mean() - 1e-9
