"""Window arithmetic: output size, spatial-only padding, the strided view and its adjoint."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from reference.windows import (
    ShiftedWindowGrads,
    add_windows,
    output_size,
    pad_spatial,
    sliding_windows,
    window_slices,
)

pairs = st.tuples


@st.composite
def window_configs(draw):
    kernel = draw(pairs(st.integers(1, 4), st.integers(1, 4)))
    stride = draw(pairs(st.integers(1, 3), st.integers(1, 3)))
    dilation = draw(pairs(st.integers(1, 3), st.integers(1, 3)))
    padding = draw(pairs(st.integers(0, 2), st.integers(0, 2)))
    ek = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    size = (draw(st.integers(max(1, ek[0] - 2 * padding[0]), 12)),
            draw(st.integers(max(1, ek[1] - 2 * padding[1]), 12)))
    return kernel, stride, dilation, padding, size


@given(window_configs())
def test_output_size_counts_the_windows_that_fit(cfg):
    kernel, stride, dilation, padding, size = cfg
    oh, ow = output_size(size, kernel, stride, padding, dilation, "test")
    # count start positions by brute force: the last tap of the window must stay inside the padded input
    count = [sum(1 for s in range(0, n + 2 * p, st_) if s + d * (k - 1) < n + 2 * p)
             for n, k, st_, p, d in zip(size, kernel, stride, padding, dilation, strict=True)]
    assert (oh, ow) == tuple(count)


@given(window_configs())
def test_sliding_windows_equal_window_slices(cfg):
    kernel, stride, dilation, padding, size = cfg
    rng = np.random.default_rng(0)
    contiguous = pad_spatial(rng.standard_normal((2, 3, *size)), padding)
    out_hw = output_size(size, kernel, stride, padding, dilation, "test")
    # the view is built from strides: also on a width-major copy and on a reversed (negative-stride) view
    width_major = np.swapaxes(np.ascontiguousarray(np.swapaxes(contiguous, 2, 3)), 2, 3)
    reversed_rows = np.ascontiguousarray(contiguous[:, :, ::-1])[:, :, ::-1]
    for xp in (contiguous, width_major, reversed_rows):
        win = sliding_windows(xp, kernel, stride, dilation)
        assert win.shape == (2, 3, *out_hw, *kernel) and not win.flags.writeable
        for i, j, rows, cols in window_slices(out_hw, kernel, stride, dilation):
            assert np.array_equal(win[:, :, i, j], contiguous[:, :, rows, cols])


@given(window_configs())
def test_add_windows_is_the_adjoint_of_sliding_windows(cfg):
    """<windows(x), g> == <x, add_windows(g)> for every x and g: col2im is im2col's transpose."""
    kernel, stride, dilation, padding, size = cfg
    rng = np.random.default_rng(1)
    xp = rng.standard_normal((1, 2, size[0] + 2 * padding[0], size[1] + 2 * padding[1]))
    win = sliding_windows(xp, kernel, stride, dilation)
    g = rng.standard_normal(win.shape)
    back = add_windows(np.zeros_like(xp), g, stride, dilation)
    # the two sums may cancel to far below their terms: bound the difference by the terms' magnitude
    assert abs(np.sum(win * g) - np.sum(xp * back)) <= 1e-12 * np.sum(np.abs(win * g))


@given(window_configs(), st.integers(1, 2), st.integers(1, 3), st.integers(1, 3), st.data())
def test_shifted_window_grads_sum_to_add_windows(cfg, groups, channels, images, data):
    """Window gradients written through ``gemm_out`` land in disjoint places, and ``windows`` summed over its
    last axis is col2im (:func:`add_windows`), also for fewer images than the buffer holds. Integer values,
    so both sides are exact."""
    kernel, _, dilation, padding, size = cfg
    n = data.draw(st.integers(1, images))
    (kh, kw), (hp, wp) = kernel, (size[0] + 2 * padding[0], size[1] + 2 * padding[1])
    out_h, out_w = output_size(size, kernel, (1, 1), padding, dilation, "test")
    store = ShiftedWindowGrads(images, groups, channels, (hp, wp), out_h, kernel, dilation, np.float64)
    g = np.random.default_rng(2).integers(1, 10, (n, groups * channels, out_h, out_w, kh, kw)).astype(np.float64)
    rows = np.zeros((groups, kh, n, kw, channels, out_h, wp))  # the GEMM's rows (b, c) per group, a and image
    rows[..., :out_w] = g.reshape(n, groups, channels, out_h, out_w, kh, kw).transpose(1, 5, 0, 6, 2, 3, 4)
    store.gemm_out(n)[...] = rows.reshape(groups, kh, n, kw * channels, out_h * wp)
    assert store.buf.sum() == g.sum()  # nothing written twice over
    windows = store.windows(n)
    assert not windows.flags.writeable
    summed = np.matmul(windows, np.ones(kh * kw)).reshape(groups * channels, n, hp, wp).transpose(1, 0, 2, 3)
    assert np.array_equal(summed, add_windows(np.zeros((n, groups * channels, hp, wp)), g, (1, 1), dilation))


def test_pad_spatial_pads_only_the_spatial_axes():
    x = np.ones((2, 3, 4, 5))
    assert pad_spatial(x, (1, 2)).shape == (2, 3, 6, 9)
    assert pad_spatial(x.transpose(0, 2, 3, 1), (1, 2), axes=(1, 2)).shape == (2, 6, 9, 3)
    assert pad_spatial(x, (0, 0)) is x
