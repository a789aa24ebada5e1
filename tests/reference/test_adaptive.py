"""AdaptiveAvgPool2d, AdaptiveMaxPool2d, GlobalMaxPool2d: window rule, gradients, ties, indices, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from comparisons.cases_options import POOL_OPTIONS
from reference import AvgPool2d, MaxPool2d, adaptive, max_rel_error
from reference.adaptive import AdaptiveAvgPool2d, AdaptiveMaxPool2d, GlobalMaxPool2d, adaptive_bounds
from tests.reference.helpers import assert_gradients_match
from tests.reference.test_pool import distinct_values


def build(opt, return_indices: bool = False):
    """The option's layer; ``return_indices`` off unless asked (gradient checks need a plain output)."""
    kwargs = {k: v for k, v in opt.kwargs.items() if k != "return_indices"}
    if return_indices:
        kwargs["return_indices"] = True
    return getattr(adaptive, opt.layer)(**kwargs)


@pytest.mark.parametrize("opt", POOL_OPTIONS, ids=[o.id for o in POOL_OPTIONS])
def test_gradients_match_finite_differences(opt):
    rng = np.random.default_rng(opt.seed)
    assert_gradients_match(build(opt), distinct_values(opt.input_shape, rng), rng)


@pytest.mark.parametrize("size,out", [(s, o) for s in (1, 2, 5, 7, 10) for o in (1, 2, 3, 4, 7, 11)])
def test_bounds_follow_floor_ceil_rule_and_cover_the_input(size, out):
    bounds = adaptive_bounds(size, out)
    assert bounds == [(math.floor(i * size / out), math.ceil((i + 1) * size / out)) for i in range(out)]
    assert bounds[0][0] == 0 and bounds[-1][1] == size
    assert all(start < end for start, end in bounds)  # no empty window
    assert all(b[0] <= a[1] for a, b in zip(bounds, bounds[1:], strict=False))  # no gap between windows


@pytest.mark.parametrize("x_shape,out,k", [((2, 3, 6, 6), 3, 2), ((1, 2, 8, 4), (2, 1), (4, 4)), ((3, 9, 9), 1, 9)])
def test_divisible_sizes_equal_fixed_pooling(x_shape, out, k):
    """When out divides the input, the windows are the disjoint k = size/out tiles of Avg/MaxPool2d."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape)
    for ours, theirs in ((AdaptiveAvgPool2d(out), AvgPool2d(k)), (AdaptiveMaxPool2d(out), MaxPool2d(k))):
        y = ours.forward(x)
        assert max_rel_error(y, theirs.forward(x)) < 1e-15
        dout = rng.standard_normal(y.shape)
        assert max_rel_error(ours.backward(dout), theirs.backward(dout)) < 1e-15


def test_avg_matches_window_means_and_upsampling_repeats_cells():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 5))
    out = AdaptiveAvgPool2d((4, 7)).forward(x)
    expected = np.array([[[x[c, r0:r1, c0:c1].mean() for c0, c1 in adaptive_bounds(5, 7)]
                          for r0, r1 in adaptive_bounds(3, 4)] for c in range(2)])
    assert max_rel_error(out, expected) < 1e-15
    assert AdaptiveAvgPool2d((3, 5)).forward(x) == pytest.approx(x, rel=1e-15)  # same size: identity


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("out", [(2, 3), (3, 3), (4, 5), (1, 1), (7, 9)], ids=str)
def test_avg_with_infinities_and_nans_is_the_window_by_window_result(out):
    """The averaging matrices are mostly zeros: an infinite or NaN cell times those zeros must not put NaNs in the
    outputs (and input gradients) of windows it is not part of. Compared with each window's own sum over its
    count, written out here (PyTorch's order), and its gradient spread over the window the same way."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 6, 7))
    x[0, 1, 2, 3], x[1, 0, 5, 0], x[1, 2, 0, 6] = np.inf, -np.inf, np.nan
    layer = AdaptiveAvgPool2d(out)
    got = layer.forward(x)
    rows, cols = adaptive_bounds(6, out[0]), adaptive_bounds(7, out[1])
    want = np.empty(got.shape)
    for i, (r0, r1) in enumerate(rows):
        for j, (c0, c1) in enumerate(cols):
            want[..., i, j] = x[..., r0:r1, c0:c1].sum(axis=(-2, -1)) / ((r1 - r0) * (c1 - c0))
    dout = rng.standard_normal(got.shape)
    dout[0, 0, 0, 0], dout[1, 1, -1, -1] = np.inf, np.nan
    dx = layer.backward(dout)
    want_dx = np.zeros(x.shape)
    for i, (r0, r1) in enumerate(rows):
        for j, (c0, c1) in enumerate(cols):
            want_dx[..., r0:r1, c0:c1] += (dout[..., i, j] / ((r1 - r0) * (c1 - c0)))[..., None, None]
    for a, b in ((got, want), (dx, want_dx)):
        for test in (np.isnan, np.isposinf, np.isneginf):
            assert np.array_equal(test(a), test(b)), test.__name__
        finite = np.isfinite(b)
        assert finite.any() and max_rel_error(a[finite], b[finite]) <= 1e-12  # float64 rounding
        assert a.flags.c_contiguous


def test_overlapping_windows_accumulate_gradient():
    """5 -> 3 windows are [0,2) [1,4) [3,5): cells 1 and 3 lie in two windows each."""
    layer = AdaptiveAvgPool2d((1, 3))
    layer.forward(np.zeros((1, 1, 5)))
    dx = layer.backward(np.ones((1, 1, 3)))
    assert dx[0, 0] == pytest.approx([1 / 2, 1 / 2 + 1 / 3, 1 / 3, 1 / 3 + 1 / 2, 1 / 2], rel=1e-15)
    layer = AdaptiveMaxPool2d((1, 3))
    layer.forward(np.array([[[0.0, 5.0, 1.0, 6.0, 2.0]]]))
    # maxima: 5 (cell 1) in [0,2), 6 (cell 3) in both [1,4) and [3,5)
    assert layer.backward(np.ones((1, 1, 3)))[0, 0].tolist() == [0.0, 1.0, 0.0, 2.0, 0.0]


@pytest.mark.parametrize("opt", [o for o in POOL_OPTIONS if o.layer != "AdaptiveAvgPool2d"],
                         ids=[o.id for o in POOL_OPTIONS if o.layer != "AdaptiveAvgPool2d"])
def test_indices_point_at_the_first_maximum_of_each_window(opt):
    x = opt.input()
    if opt.layer == "GlobalMaxPool2d":  # no return_indices argument: its indices are in layer.indices
        layer = build(opt)
        out, indices = layer.forward(x), layer.indices
    else:
        layer = build(opt, return_indices=True)
        out, indices = layer.forward(x)
    assert indices.dtype == np.int64 and indices.shape == out.shape
    assert np.array_equal(layer.indices, indices)
    batch = x if x.ndim == 4 else x[None]
    idx = indices.reshape(*batch.shape[:2], -1)
    planes = batch.reshape(*batch.shape[:2], -1)
    assert np.array_equal(np.take_along_axis(planes, idx, axis=-1).reshape(out.shape), out)
    # first maximum in row-major order: no earlier cell of the same window holds the maximum
    h, w = batch.shape[2:]
    oh, ow = (1, 1) if opt.layer == "GlobalMaxPool2d" else out.shape[-2:]
    for i, (r0, r1) in enumerate(adaptive_bounds(h, oh)):
        for j, (c0, c1) in enumerate(adaptive_bounds(w, ow)):
            window = batch[:, :, r0:r1, c0:c1].reshape(*batch.shape[:2], -1)
            first = window.argmax(axis=-1)
            a, b = np.divmod(first, c1 - c0)
            got = idx.reshape(*batch.shape[:2], oh, ow)[:, :, i, j]
            assert np.array_equal(got, (r0 + a) * w + c0 + b)


def test_global_max_pool_is_the_plane_maximum_with_gradient_to_first_max():
    x = np.array([[[1.0, 3.0], [3.0, 0.0]], [[-2.0, -1.0], [-5.0, -1.0]]])  # (C=2, 2, 2), ties in both
    layer = GlobalMaxPool2d()
    out = layer.forward(x)
    assert out.tolist() == [3.0, -1.0] and layer.indices.tolist() == [1, 1]
    dx = layer.backward(np.array([10.0, 20.0]))
    assert dx.tolist() == [[[0.0, 10.0], [0.0, 0.0]], [[0.0, 20.0], [0.0, 0.0]]]
    batch = np.stack([x, -x])
    assert np.array_equal(GlobalMaxPool2d().forward(batch), batch.max(axis=(2, 3)))


@pytest.mark.parametrize("layer", [AdaptiveAvgPool2d((2, 3)), AdaptiveMaxPool2d(2), GlobalMaxPool2d()], ids=repr)
def test_float32_stays_float32(layer):
    x = np.random.default_rng(2).standard_normal((2, 3, 5, 5)).astype(np.float32)
    out = layer.forward(x)
    assert out.dtype == np.float32
    assert layer.backward(np.ones_like(out)).dtype == np.float32


@pytest.mark.parametrize("call,exc,message", [
    (lambda: AdaptiveAvgPool2d(0), ValueError, r"AdaptiveAvgPool2d: output_size must be positive, got 0"),
    (lambda: AdaptiveMaxPool2d((2, 3, 4)), ValueError, r"output_size must be an int or a pair, got \(2, 3, 4\)"),
    (lambda: AdaptiveAvgPool2d(2.5), TypeError, r"output_size must be an int, got 2.5"),
    (lambda: AdaptiveMaxPool2d(2, return_indices=1), TypeError, r"return_indices must be a bool, got 1"),
    (lambda: AdaptiveAvgPool2d(2).forward(np.zeros((4, 4))), ValueError,
     r"AdaptiveAvgPool2d.forward: x must have 3 or 4 dims"),
    (lambda: AdaptiveMaxPool2d(2).forward(np.zeros((1, 2, 0, 3))), ValueError, r"non-empty height and width"),
    (lambda: GlobalMaxPool2d().forward(np.zeros((1, 2, 2), dtype=np.int64)), TypeError, r"int64"),
    (lambda: GlobalMaxPool2d().backward(np.zeros((1, 2))), RuntimeError, r"GlobalMaxPool2d.backward called before"),
    (lambda: _forwarded(GlobalMaxPool2d()).backward(np.zeros((2, 3, 1, 1))), ValueError,
     r"dout must have shape \(2, 3\)"),
], ids=["out-zero", "out-triple", "out-float", "indices-int", "rank", "empty", "int-input", "backward-first",
        "global-dout-shape"])
def test_bad_arguments_raise_clear_errors(call, exc, message):
    with pytest.raises(exc, match=message):
        call()


def _forwarded(layer):
    layer.forward(np.zeros((2, 3, 4, 4)))
    return layer


def test_changing_the_returned_indices_keeps_the_gradient():
    """The returned indices are the caller's (``MaxUnpool``-style code may edit them): backward uses its own."""
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 5))
    dout = np.random.default_rng(1).standard_normal((2, 3, 2, 2))
    untouched = AdaptiveMaxPool2d(2, return_indices=True)
    untouched.forward(x)
    layer = AdaptiveMaxPool2d(2, return_indices=True)
    _, indices = layer.forward(x)
    indices[...] = 0
    np.testing.assert_array_equal(layer.backward(dout), untouched.backward(dout))
