"""The harness's own logic (:mod:`comparisons.harness`): the tolerance formula and its float64 level over the
matrix, the error measure's edge cases (zeros, empty arrays, different shapes, nan), and quantity names."""

from __future__ import annotations

import numpy as np
import pytest

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
