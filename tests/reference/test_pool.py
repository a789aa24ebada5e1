"""MaxPool2d and AvgPool2d: gradients, loop == im2col, padding rules, tie rule."""

from __future__ import annotations

import numpy as np
import pytest

from comparisons.cases import pool_cases
from reference import AvgPool2d, MaxPool2d, max_rel_error
from tests.reference.helpers import assert_gradients_match, assert_impls_agree

POOL_CASES = pool_cases()
LAYERS = {"MaxPool2d": MaxPool2d, "AvgPool2d": AvgPool2d}


def build(case, impl):
    return LAYERS[case.layer](**case.specs[0].kwargs, impl=impl)


def distinct_values(shape, rng):
    """A random input whose values are all distinct and spaced, so no window has a tie (or a near-tie
    that a finite difference of h=1e-5 could flip: neighbours are at least 0.9/size apart)."""
    size = int(np.prod(shape))
    return (rng.permutation(size).reshape(shape) + rng.uniform(0, 0.1, shape)) / size


@pytest.mark.parametrize("impl", ["loop", "im2col"])
@pytest.mark.parametrize("case", POOL_CASES, ids=[c.id for c in POOL_CASES])
def test_gradients_match_finite_differences(case, impl):
    rng = np.random.default_rng(case.seed)
    assert_gradients_match(build(case, impl), distinct_values(case.input_shape, rng), rng)


@pytest.mark.parametrize("case", POOL_CASES, ids=[c.id for c in POOL_CASES])
def test_loop_and_im2col_agree(case):
    rng = np.random.default_rng(case.seed)
    assert_impls_agree(build, case, rng.standard_normal(case.input_shape), rng)


@pytest.mark.parametrize("impl", ["loop", "im2col"])
def test_max_pool_padding_never_wins(impl):
    x = -1.0 - np.arange(2 * 5 * 5, dtype=float).reshape(2, 5, 5)  # all negative: a zero pad would win
    pool = MaxPool2d(3, stride=2, padding=1, impl=impl)
    out = pool.forward(x)
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    expected = np.array([[[padded[c, 2 * i:2 * i + 3, 2 * j:2 * j + 3].max() for j in range(3)] for i in range(3)]
                         for c in range(2)])
    assert np.array_equal(out, expected)
    assert (out < 0).all()


@pytest.mark.parametrize("impl", ["loop", "im2col"])
def test_avg_pool_divides_by_whole_kernel_including_padding(impl):
    x = np.ones((1, 4, 4))
    out = AvgPool2d(3, stride=1, padding=1, impl=impl).forward(x)
    assert out[0, 0, 0] == pytest.approx(4 / 9, rel=1e-15)  # corner window: 4 real ones, 5 padded zeros
    assert out[0, 0, 1] == pytest.approx(6 / 9, rel=1e-15)
    assert out[0, 1, 1] == pytest.approx(1.0, rel=1e-15)


@pytest.mark.parametrize("impl", ["loop", "im2col"])
def test_max_pool_tie_goes_to_first_maximum_in_row_major_order(impl):
    x = np.zeros((1, 2, 2))  # one window, four equal values
    pool = MaxPool2d(2, impl=impl)
    pool.forward(x)
    dx = pool.backward(np.array([[[5.0]]]))
    assert dx.tolist() == [[[5.0, 0.0], [0.0, 0.0]]]


@pytest.mark.parametrize("impl", ["loop", "im2col"])
def test_overlapping_windows_accumulate_the_gradient(impl):
    """The tutorial's backward assigns (``=``) where windows overlap; a shared maximum must get the sum."""
    x = np.zeros((1, 3, 3))
    x[0, 1, 1] = 1.0  # the maximum of all four 2x2 windows at stride 1
    pool = MaxPool2d(2, stride=1, impl=impl)
    pool.forward(x)
    dout = np.array([[[1.0, 2.0], [3.0, 4.0]]])
    dx = pool.backward(dout)
    assert dx[0, 1, 1] == 10.0
    assert dx.sum() == 10.0


@pytest.mark.parametrize("impl", ["loop", "im2col"])
@pytest.mark.parametrize("change", ["scale", "relu_out"])
def test_changing_the_output_in_place_keeps_the_gradient(impl, change):
    """The returned array is the caller's: ``y *= 2`` or ``np.maximum(y, 0, out=y)`` before backward must
    not move the gradient (the im2col backward once located maxima by comparing with that array)."""
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4))
    dout = np.random.default_rng(1).standard_normal((2, 3, 2, 2))
    expected = MaxPool2d(2, impl=impl)
    expected.forward(x)
    want = expected.backward(dout)
    pool = MaxPool2d(2, impl=impl)
    y = pool.forward(x)
    if change == "scale":
        y *= 2
    else:
        np.maximum(y, 0, out=y)
    np.testing.assert_array_equal(pool.backward(dout), want)
    assert np.count_nonzero(want) == dout.size  # one maximum per window (random data: no ties)


@pytest.mark.parametrize("impl", ["loop", "im2col"])
def test_max_pool_nan_is_the_maximum(impl):
    """A NaN wins its window (as numpy's argmax and PyTorch): the output is NaN, the gradient goes to it;
    the other windows are untouched by it. (With two NaNs in a window the reference takes the first, as
    argmax; PyTorch's CPU kernel takes the last.)"""
    x = np.arange(16.0).reshape(1, 4, 4)
    x[0, 0, 1] = np.nan  # in the top-left window, not at its maximum (5.0)
    pool = MaxPool2d(2, impl=impl)
    out = pool.forward(x)
    assert np.isnan(out[0, 0, 0]) and out[0].tolist()[1] == [13.0, 15.0] and out[0, 0, 1] == 7.0
    dx = pool.backward(np.ones((1, 2, 2)))
    assert dx[0, 0, 1] == 1.0 and dx[0, 1, 1] == 0.0 and dx.sum() == 4.0


def first_max_brute_force(plane: np.ndarray, out_hw, k: int, s: int, p: int) -> np.ndarray:
    """Flat index of each window's first maximum among the cells it reads inside ``plane``, row-major."""
    h, w = plane.shape
    out = np.empty(out_hw, dtype=np.int64)
    for i in range(out_hw[0]):
        for j in range(out_hw[1]):
            cells = [(r, c) for r in range(i * s - p, i * s - p + k) for c in range(j * s - p, j * s - p + k)
                     if 0 <= r < h and 0 <= c < w]
            best = max(plane[r, c] for r, c in cells)
            out[i, j] = next(r * w + c for r, c in cells if plane[r, c] == best)
    return out


@pytest.mark.parametrize("impl", ["loop", "im2col"])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_max_pool_padding_never_wins_a_tie_with_minus_infinity(impl, ceil_mode):
    """An input -inf ties with the -inf padding: the first maximum is still an input cell (as PyTorch, whose
    kernel reads no padding), so indices point into the input and every window's gradient arrives."""
    rng = np.random.default_rng(3)
    x = np.where(rng.random((2, 1, 5, 6)) < 0.7, -np.inf, rng.standard_normal((2, 1, 5, 6)))
    x[0, 0] = -np.inf  # one plane all -inf: every window ties
    pool = MaxPool2d(3, stride=2, padding=1, impl=impl, return_indices=True, ceil_mode=ceil_mode)
    out, indices = pool.forward(x)
    for n in range(2):
        np.testing.assert_array_equal(indices[n, 0], first_max_brute_force(x[n, 0], out.shape[2:], 3, 2, 1))
    dx = pool.backward(np.ones_like(out))
    assert dx.sum() == out.size


@pytest.mark.parametrize("impl", ["loop", "im2col"])
@pytest.mark.parametrize("kwargs", [{"kernel_size": 2}, {"kernel_size": 3, "stride": 1, "padding": 1},
                                    {"kernel_size": 3, "stride": 2, "dilation": 2}, {"kernel_size": 2, "stride": 3}],
                         ids=str)
def test_max_pool_gradient_goes_to_the_first_maximum_only_even_when_infinite(kwargs, impl):
    """Each window's gradient lands on its first maximum and nowhere else, also when it is infinite or NaN (as
    PyTorch's scatter to the argmax): ``dout`` times a 0/1 mask would put NaN at the window's other cells. The
    expected gradient is built from the forward's ``indices``."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 3, 7, 8))
    layer = MaxPool2d(impl=impl, return_indices=True, **kwargs)
    out, indices = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    dout[0, 0, 0, 0], dout[1, 2, -1, -1], dout[0, 1, 1, 1] = np.inf, -np.inf, np.nan
    want = np.zeros((2, 3, 7 * 8))
    for n in range(2):
        for c in range(3):
            np.add.at(want[n, c], indices[n, c].reshape(-1), dout[n, c].reshape(-1))
    got, want = layer.backward(dout), want.reshape(x.shape)
    for test in (np.isnan, np.isposinf, np.isneginf):
        assert np.array_equal(test(got), test(want)), test.__name__
    finite = np.isfinite(want)
    assert max_rel_error(got[finite], want[finite]) <= 1e-15  # overlapping windows add in another order: rounding
