"""Upsample: PyTorch's index arithmetic measured bit for bit, finite-difference gradients of every mode, loop ==
im2col, forward and backward against torch over the option grid (hypothesis), bad arguments by name."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference import Upsample, max_rel_error
from reference.upsample import axis_plan
from tests.frameworks import import_or_skip
from tests.reference.helpers import assert_gradients_match, assert_impls_agree

MODES = [("nearest", None), ("nearest-exact", None), ("bilinear", False), ("bilinear", True)]
OPTIONS = {
    "sf2": {"scale_factor": 2.0}, "sf3": {"scale_factor": 3.0}, "sf0.5": {"scale_factor": 0.5},
    "sf1.7": {"scale_factor": 1.7}, "sf1.7-recompute": {"scale_factor": 1.7, "recompute_scale_factor": True},
    "sf0.6": {"scale_factor": 0.6}, "sf0.6-recompute": {"scale_factor": 0.6, "recompute_scale_factor": False},
    "sf(2.1,1.1)": {"scale_factor": (2.1, 1.1)}, "size-up": {"size": (7, 9)}, "size-down": {"size": (2, 3)},
}


def build(case, impl):
    (mode, corners), options = case
    return Upsample(mode=mode, align_corners=corners, impl=impl, **options)


def torch_run(x, dout, mode, corners, **options):
    torch = import_or_skip("torch")
    """PyTorch's ``(out, dx)`` (a single image as a batch of one, as the reference)."""
    xt = torch.from_numpy(x[None] if x.ndim == 3 else x).requires_grad_(True)
    out = torch.nn.Upsample(mode=mode, align_corners=corners, **options)(xt)
    out.backward(torch.from_numpy(dout.reshape(out.shape)))
    squeeze = (lambda a: a[0]) if x.ndim == 3 else (lambda a: a)
    return squeeze(out.detach().numpy()), squeeze(xt.grad.numpy())


@pytest.mark.parametrize("impl", ["loop", "im2col"])
@pytest.mark.parametrize("mode", MODES, ids=lambda m: f"{m[0]}-{m[1]}")
@pytest.mark.parametrize("options", ["sf1.7", "sf0.6", "size-up"])
def test_gradients(mode, options, impl):
    rng = np.random.default_rng(1)
    assert_gradients_match(build((mode, OPTIONS[options]), impl), rng.standard_normal((2, 2, 4, 5)), rng)


@pytest.mark.parametrize("mode", MODES, ids=lambda m: f"{m[0]}-{m[1]}")
@pytest.mark.parametrize("options", OPTIONS)
def test_loop_and_im2col_agree(mode, options):
    rng = np.random.default_rng(2)
    assert_impls_agree(build, (mode, OPTIONS[options]), rng.standard_normal((2, 3, 5, 6)), rng)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("mode", MODES, ids=lambda m: f"{m[0]}-{m[1]}")
@pytest.mark.parametrize("options", OPTIONS)
def test_non_finite_values_give_the_loops_infs_and_nans(mode, options):
    """The im2col backward multiplies ``dout`` by interpolation matrices that are mostly zeros: an infinite or NaN
    ``dout`` times those zeros must not put NaNs in cells its output never read (one infinite ``dout`` made nearly
    every cell of ``dx`` NaN). Infinities and NaNs in ``x`` go through the forward's weights as in the loop."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 5, 6))
    x[0, 1, 2, 3], x[1, 0, 4, 0] = np.inf, np.nan
    got, want = (build((mode, OPTIONS[options]), impl) for impl in ("im2col", "loop"))
    out = want.forward(x)
    dout = rng.standard_normal(out.shape)
    dout[0, 0, 0, 0], dout[1, 2, -1, -1], dout[0, 2, out.shape[2] // 2, 0] = np.inf, -np.inf, np.nan
    pairs = [(got.forward(x), out), (got.backward(dout), want.backward(dout))]
    for a, b in pairs:
        for test in (np.isnan, np.isposinf, np.isneginf):
            assert np.array_equal(test(a), test(b)), test.__name__
        finite = np.isfinite(b)
        assert max_rel_error(a[finite], b[finite]) <= 1e-12  # float64 rounding
    assert np.isfinite(pairs[1][1]).sum() > 0, "every cell of dx is non-finite: nothing tells the two apart"


@pytest.mark.parametrize("mode", MODES, ids=lambda m: f"{m[0]}-{m[1]}")
@pytest.mark.parametrize("options", OPTIONS)
def test_matches_torch(mode, options):
    """float64 to 1e-12 relative, float32 to a few ulps, forward and backward; nearest bit for bit."""
    rng = np.random.default_rng(3)
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 4e-7)):
        x = rng.standard_normal((2, 3, 5, 6)).astype(dtype)
        for impl in ("loop", "im2col"):
            layer = build((mode, OPTIONS[options]), impl)
            out = layer.forward(x)
            dout = rng.standard_normal(out.shape).astype(dtype)
            dx = layer.backward(dout)
            t_out, t_dx = torch_run(x, dout, *mode, **OPTIONS[options])
            assert out.dtype == dx.dtype == dtype
            assert out.shape == t_out.shape
            if mode[0] != "bilinear":
                assert np.array_equal(out, t_out)
            assert max_rel_error(out, t_out) <= tol and max_rel_error(dx, t_dx) <= tol


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 9), w=st.integers(1, 9), mode=st.sampled_from(MODES),
       up=st.sampled_from(["size", "scale", "pair"]), sf=st.floats(0.2, 4.0), sf2=st.floats(0.2, 4.0),
       oh=st.integers(1, 12), ow=st.integers(1, 12), recompute=st.sampled_from([None, False, True]),
       single=st.booleans(), dtype=st.sampled_from([np.float64, np.float32]), impl=st.sampled_from(["loop", "im2col"]))
def test_random_options_match_torch(h, w, mode, up, sf, sf2, oh, ow, recompute, single, dtype, impl):
    if up == "size":
        options = {"size": (oh, ow)}
    else:
        factors = (sf, sf) if up == "scale" else (sf, sf2)
        if min(math.floor(n * f) for n, f in zip((h, w), factors, strict=True)) < 1:
            return
        options = {"scale_factor": sf if up == "scale" else factors, "recompute_scale_factor": recompute}
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, h, w) if single else (2, 3, h, w)).astype(dtype)
    layer = Upsample(mode=mode[0], align_corners=mode[1], impl=impl, **options)
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = layer.backward(dout)
    t_out, t_dx = torch_run(x, dout, *mode, **options)
    tol = 1e-12 if dtype == np.float64 else 4e-7
    assert out.shape == t_out.shape and dx.shape == x.shape
    if mode[0] != "bilinear":
        assert np.array_equal(out, t_out)
    assert max_rel_error(out, t_out) <= tol and max_rel_error(dx, t_dx) <= tol


def test_nearest_scale_is_pytorch_float32_arithmetic():
    torch = import_or_skip("torch")
    """Measured: ``floor(float32(o) * float32(1 / scale_factor))`` without recompute, ``in / out`` with it, and
    PyTorch's copies for an output of the input's size or twice it, whatever the scale factor."""
    plan = axis_plan(5, 5, "nearest", False, 1.1, np.float64)  # 1/1.1 would give [0, 0, 1, 2, 3]
    assert plan.i0.tolist() == [0, 1, 2, 3, 4]
    plan = axis_plan(5, 10, "nearest", False, 2.1, np.float64)  # 1/2.1 would read cell 3 at o = 8
    assert plan.i0.tolist() == [o >> 1 for o in range(10)]
    assert axis_plan(5, 8, "nearest", False, 1.7, np.float64).i0.tolist() == [0, 0, 1, 1, 2, 2, 3, 4]
    assert axis_plan(5, 8, "nearest", False, None, np.float64).i0.tolist() == [0, 0, 1, 1, 2, 3, 3, 4]
    for n, sf in ((5, 1.7), (5, 1.1), (5, 2.1), (7, 0.6), (9, 0.3)):
        for recompute in (None, True):
            x = torch.arange(float(n)).reshape(1, 1, 1, n)
            t = torch.nn.Upsample(scale_factor=(1.0, sf), recompute_scale_factor=recompute)(x)[0, 0, 0]
            plan = axis_plan(n, math.floor(n * sf), "nearest", False, None if recompute else sf, np.float32)
            assert plan.i0.tolist() == t.long().tolist()


def test_single_image_and_float32():
    x = np.random.default_rng(5).standard_normal((3, 4, 5)).astype(np.float32)
    layer = Upsample(scale_factor=2, mode="bilinear")
    out = layer.forward(x)
    assert out.shape == (3, 8, 10) and out.dtype == np.float32
    assert layer.backward(np.ones_like(out)).shape == x.shape


@pytest.mark.parametrize("kwargs, message", [
    ({}, "size or scale_factor"),
    ({"size": 3, "scale_factor": 2.0}, "size or scale_factor"),
    ({"size": 0}, "size"), ({"size": (2, 3, 4)}, "size"), ({"size": 2.5}, "size"), ({"size": "3"}, "size"),
    ({"scale_factor": 0}, "scale_factor"), ({"scale_factor": -1.0}, "scale_factor"),
    ({"scale_factor": math.inf}, "scale_factor"), ({"scale_factor": math.nan}, "scale_factor"),
    ({"scale_factor": "2"}, "scale_factor"), ({"scale_factor": (2.0, 0.0)}, "scale_factor"),
    ({"scale_factor": True}, "scale_factor"),
    ({"scale_factor": 2.0, "mode": "bicubic"}, "mode"), ({"scale_factor": 2.0, "mode": None}, "mode"),
    ({"scale_factor": 2.0, "align_corners": True}, "align_corners"),
    ({"scale_factor": 2.0, "mode": "nearest-exact", "align_corners": False}, "align_corners"),
    ({"scale_factor": 2.0, "mode": "bilinear", "align_corners": "True"}, "align_corners"),
    ({"scale_factor": 2.0, "recompute_scale_factor": 1}, "recompute_scale_factor"),
    ({"size": 4, "recompute_scale_factor": True}, "recompute_scale_factor"),
    ({"scale_factor": 2.0, "impl": "fast"}, "impl"),
])
def test_bad_arguments_are_refused_by_name(kwargs, message):
    with pytest.raises((TypeError, ValueError), match=message):
        Upsample(**kwargs)


def test_empty_output_is_refused():
    with pytest.raises(ValueError, match="output"):
        Upsample(scale_factor=0.3).forward(np.zeros((1, 1, 2, 5)))
    with pytest.raises(ValueError, match="dims"):
        Upsample(scale_factor=2).forward(np.zeros((4, 5)))
