"""MaxPool2d / AvgPool2d options: dilation, ceil_mode, return_indices, count_include_pad, divisor_override."""

from __future__ import annotations

import numpy as np
import pytest

import reference as ref
from comparisons.cases_options import POOL2D_OPTIONS
from reference import AvgPool2d, MaxPool2d, max_rel_error
from reference.windows import output_size, pool_divisors
from tests.reference.helpers import assert_gradients_match
from tests.reference.test_pool import distinct_values

IDS = [o.id for o in POOL2D_OPTIONS]


def build(opt, impl, return_indices=None):
    kwargs = dict(opt.kwargs)
    if return_indices is not None and opt.layer == "MaxPool2d":
        kwargs["return_indices"] = return_indices
    return getattr(ref, opt.layer)(**kwargs, impl=impl)


@pytest.mark.parametrize("impl", ["loop", "im2col"])
@pytest.mark.parametrize("opt", POOL2D_OPTIONS, ids=IDS)
def test_gradients_match_finite_differences(opt, impl):
    rng = np.random.default_rng(opt.seed)
    assert_gradients_match(build(opt, impl, return_indices=False), distinct_values(opt.input_shape, rng), rng)


@pytest.mark.parametrize("opt", POOL2D_OPTIONS, ids=IDS)
def test_loop_and_im2col_agree(opt):
    x = opt.input()
    loop, fast = build(opt, "loop"), build(opt, "im2col")
    out_loop, out_fast = loop.forward(x), fast.forward(x)
    if opt.kwargs.get("return_indices"):
        (out_loop, idx_loop), (out_fast, idx_fast) = out_loop, out_fast
        assert np.array_equal(idx_loop, idx_fast)
    assert max_rel_error(out_fast, out_loop) < 1e-15
    dout = np.random.default_rng(opt.seed).standard_normal(out_loop.shape)
    assert max_rel_error(fast.backward(dout), loop.backward(dout)) < 1e-15


@pytest.mark.parametrize("n,k,s,p,floor,ceil", [
    (5, 2, 2, 0, 2, 3),   # ceil keeps a last window over [4, 6): one input cell, one past the end
    (6, 2, 2, 0, 3, 3),   # exact division: no difference
    (5, 3, 3, 1, 2, 2),   # ceil(4/3)+1 = 3, but window 2 would start at 6 - 1 = 5 = past the input: dropped
    (7, 3, 2, 1, 4, 4),
    (8, 3, 2, 1, 4, 5),
])
def test_ceil_mode_output_size_follows_torch_rule(n, k, s, p, floor, ceil):
    """Expected sizes from the rule: ceil((n + 2p - k) / s) + 1, minus 1 if the last start (o-1)*s >= n + p."""
    assert output_size((n, n), (k, k), (s, s), (p, p), (1, 1), "t") == (floor, floor)
    assert output_size((n, n), (k, k), (s, s), (p, p), (1, 1), "t", ceil_mode=True) == (ceil, ceil)


def test_divisors_count_covered_cells():
    """5 cells, k=3, s=2, p=1, ceil: windows [-1,2) [1,4) [3,6) lie in the padded input [-1, 6): 3 cells each
    with padding; without it 2, 3, 2."""
    out = output_size((5, 5), (3, 3), (2, 2), (1, 1), (1, 1), "t", ceil_mode=True)
    assert out == (3, 3)
    assert pool_divisors((5, 5), (3, 3), (2, 2), (1, 1), out, True)[0].tolist() == [9, 9, 9]
    assert pool_divisors((5, 5), (3, 3), (2, 2), (1, 1), out, False)[0].tolist() == [4, 6, 4]  # 2 rows x 2, 3, 2
    # k=2, s=2, no padding, 5 cells, ceil: the last window [4, 6) covers one input cell of the padded [0, 5)
    assert pool_divisors((5, 5), (2, 2), (2, 2), (0, 0), (3, 3), True)[2].tolist() == [2, 2, 1]


@pytest.mark.parametrize("impl", ["loop", "im2col"])
def test_avg_pool_divisors_on_ones(impl):
    x = np.ones((1, 5, 5))
    exclude = AvgPool2d(3, 2, 1, impl, ceil_mode=True, count_include_pad=False).forward(x)
    assert np.allclose(exclude, 1.0, rtol=0, atol=1e-15)  # the mean of the cells it covers
    include = AvgPool2d(3, 2, 1, impl, ceil_mode=True).forward(x)
    assert include[0, 0, 0] == pytest.approx(4 / 9, rel=1e-15) and include[0, 1, 1] == pytest.approx(1.0, rel=1e-15)
    override = AvgPool2d(3, 2, 1, impl, divisor_override=2).forward(x)
    assert override[0, 0].tolist() == [2.0, 3.0, 2.0]  # window sums over 2


@pytest.mark.parametrize("impl", ["loop", "im2col"])
def test_max_pool_indices_are_flat_positions_of_the_first_maximum(impl):
    x = np.array([[[1.0, 7.0, 7.0, 0.0], [7.0, 2.0, 3.0, 9.0], [4.0, 5.0, 6.0, 9.0]]])  # (C=1, 3, 4)
    out, idx = MaxPool2d(2, 1, impl=impl, return_indices=True).forward(x)
    assert out.tolist() == [[[7.0, 7.0, 9.0], [7.0, 6.0, 9.0]]]
    assert idx.tolist() == [[[1, 1, 7], [4, 10, 7]]]  # ties: the first in row-major order
    planes = x.reshape(1, -1)
    assert np.array_equal(np.take_along_axis(planes, idx.reshape(1, -1), axis=1).reshape(out.shape), out)


@pytest.mark.parametrize("impl", ["loop", "im2col"])
def test_dilated_max_pool_reads_every_dth_cell(impl):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 7, 8))
    out = MaxPool2d(3, 1, impl=impl, dilation=(2, 3)).forward(x)
    expected = np.array([[[x[c, i:i + 5:2, j:j + 7:3].max() for j in range(2)] for i in range(3)] for c in range(2)])
    assert np.array_equal(out, expected)


@pytest.mark.parametrize("call,exc,message", [
    (lambda: MaxPool2d(2, dilation=0), ValueError, r"MaxPool2d: dilation must be positive, got 0"),
    (lambda: MaxPool2d(2, ceil_mode=1), TypeError, r"ceil_mode must be a bool, got 1"),
    (lambda: MaxPool2d(2, return_indices="yes"), TypeError, r"return_indices must be a bool"),
    (lambda: AvgPool2d(2, count_include_pad=None), TypeError, r"count_include_pad must be a bool"),
    (lambda: AvgPool2d(2, divisor_override=0), ValueError, r"divisor_override must not be zero"),
    (lambda: AvgPool2d(2, divisor_override=2.0), TypeError, r"divisor_override must be an int or None, got 2.0"),
    (lambda: AvgPool2d(2, dilation=2), TypeError, r"unexpected keyword argument 'dilation'"),
], ids=["dilation-zero", "ceil-int", "indices-str", "include-none", "divisor-zero", "divisor-float", "avg-dilation"])
def test_bad_options_raise_clear_errors(call, exc, message):
    with pytest.raises(exc, match=message):
        call()


@pytest.mark.parametrize("impl", ["loop", "im2col"])
@pytest.mark.parametrize("layer,shape,axis", [
    # the configuration where PyTorch returns -inf with an out-of-range index (and its backward crashes)
    (lambda impl: MaxPool2d(2, 2, 1, impl, dilation=(2, 1)), (1, 1, 1, 8), "height"),
    (lambda impl: MaxPool2d(2, 2, 1, impl, dilation=(2, 1), ceil_mode=True), (1, 1, 1, 8), "height"),
    (lambda impl: MaxPool2d(2, 2, 1, impl, dilation=(1, 2)), (2, 8, 1), "width"),
], ids=["dilated", "dilated-ceil", "dilated-width-single"])
def test_window_entirely_in_padding_is_refused(layer, shape, axis, impl):
    with pytest.raises(ValueError, match=f"window 0 along the {axis} lies entirely in the padding"):
        layer(impl).forward(np.zeros(shape))


@pytest.mark.torch
def test_torch_returns_minus_inf_for_a_window_entirely_in_padding(torch_framework):
    """Why the reference refuses it: PyTorch's forward gives -inf (its backward is never run here: it can
    crash the process on the out-of-range index)."""
    import torch

    out = torch.nn.MaxPool2d(2, 2, 1, dilation=(2, 1))(torch.zeros(1, 1, 1, 8))
    assert torch.isinf(out).all() and (out < 0).all()
