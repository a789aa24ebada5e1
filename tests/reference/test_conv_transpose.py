"""ConvTranspose2d: output size, finite-difference gradients of every option, loop == im2col, the adjoint of
Conv2d, bad arguments by name."""

from __future__ import annotations

import numpy as np
import pytest

from reference import Conv2d, ConvTranspose2d, max_rel_error
from reference.conv_transpose import transposed_output_size
from tests.reference.helpers import (
    assert_gradients_match,
    assert_impls_agree,
    assert_refused_by_name,
    is_bool,
    is_int,
    is_pair,
)

# (C, F, kernel, stride, padding, output_padding, dilation, groups, bias, input shape)
CONFIGS = {
    "plain": (2, 3, 3, 1, 0, 0, 1, 1, True, (2, 2, 4, 5)),
    "stride2-pad1-outpad1": (2, 3, 3, 2, 1, 1, 1, 1, False, (2, 2, 3, 4)),
    "rect-stride-outpad": (2, 2, (2, 3), (2, 3), (1, 0), (1, 2), 1, 1, True, (1, 2, 3, 3)),
    "dilation-groups": (4, 2, 3, 1, 1, 0, 2, 2, True, (1, 4, 4, 4)),
    "outpad-below-dilation": (2, 2, 3, 1, 0, 1, 3, 1, True, (1, 2, 3, 3)),
    "depthwise-single": (3, 3, 3, 2, 1, 1, 1, 3, True, (3, 3, 3)),
}


def build(name: str, impl: str) -> ConvTranspose2d:
    c, f, k, s, p, op, d, g, bias, _ = CONFIGS[name]
    return ConvTranspose2d(c, f, k, s, p, op, g, bias, d, impl=impl, rng=0)


@pytest.mark.parametrize("impl", ["loop", "im2col"])
@pytest.mark.parametrize("name", CONFIGS)
def test_gradients(name, impl):
    rng = np.random.default_rng(1)
    assert_gradients_match(build(name, impl), rng.standard_normal(CONFIGS[name][-1]), rng)


@pytest.mark.parametrize("name", CONFIGS)
def test_loop_and_im2col_agree(name):
    rng = np.random.default_rng(2)
    params = ("weight", "bias") if CONFIGS[name][-2] else ("weight",)
    assert_impls_agree(build, name, rng.standard_normal(CONFIGS[name][-1]), rng, params)


@pytest.mark.parametrize("name", CONFIGS)
def test_output_size(name):
    c, f, k, s, p, op, d, g, bias, shape = CONFIGS[name]
    out = build(name, "im2col").forward(np.zeros(shape))

    def pair(v):
        return v if isinstance(v, tuple) else (v, v)

    expected = transposed_output_size(shape[-2:], pair(k), pair(s), pair(p), pair(op), pair(d))
    assert out.shape[-2:] == expected
    assert out.shape[-3] == f


def test_is_the_adjoint_of_conv2d():
    """<conv(y), x> == <y, convT(x)> for the same weight, stride, padding, dilation and groups."""
    rng = np.random.default_rng(3)
    conv = Conv2d(6, 4, 3, stride=2, padding=1, dilation=1, groups=2, bias=False, rng=0)
    convt = ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2, bias=False)
    convt.params["weight"] = conv.params["weight"]
    x = rng.standard_normal((2, 4, 4, 5))
    y = rng.standard_normal((2, 6, 8, 10))
    assert np.isclose(np.vdot(conv.forward(y), x), np.vdot(y, convt.forward(x)), rtol=1e-13)


def test_float32_computes_in_float32():
    layer = ConvTranspose2d(2, 3, 3, stride=2, dtype=np.float32, rng=0)
    out = layer.forward(np.ones((1, 2, 3, 3)))
    assert out.dtype == np.float32 and layer.backward(np.ones_like(out)).dtype == np.float32


@pytest.mark.parametrize("kwargs, message", [
    ({"stride": 2, "output_padding": 2}, "output_padding must be smaller than either stride or dilation"),
    ({"output_padding": 1}, "output_padding must be smaller"),
    ({"groups": 2, "in_channels": 3}, "in_channels must be divisible by groups=2"),
    ({"groups": 2, "out_channels": 3}, "out_channels must be divisible by groups=2"),
])
def test_refuses_inconsistent_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ConvTranspose2d(**{"in_channels": 2, "out_channels": 2, "kernel_size": 3, **kwargs})


def test_forward_errors_name_the_problem():
    with pytest.raises(ValueError, match="leaves no output"):
        ConvTranspose2d(1, 1, 1, padding=3).forward(np.ones((1, 1, 2, 2)))
    with pytest.raises(ValueError, match="in_channels=2"):
        ConvTranspose2d(2, 1, 3).forward(np.ones((1, 3, 4, 4)))


@pytest.mark.parametrize("arg, valid", [
    ("in_channels", is_int(1)), ("out_channels", is_int(1)), ("kernel_size", is_pair(1)), ("stride", is_pair(1)),
    ("padding", is_pair(0)), ("dilation", is_pair(1)), ("bias", is_bool),
    ("impl", lambda v: v in ("loop", "im2col") if isinstance(v, str) else False),
    ("groups", lambda v: is_int(1)(v) and v in (1, 2)),
])
def test_bad_arguments_are_refused_by_name(arg, valid):
    assert_refused_by_name(ConvTranspose2d, {"in_channels": 2, "out_channels": 2, "kernel_size": 3, "stride": 2},
                           arg, valid)


def test_bad_output_padding_and_dtype_are_refused_by_name():
    assert_refused_by_name(ConvTranspose2d, {"in_channels": 2, "out_channels": 2, "kernel_size": 3, "stride": 3},
                           "output_padding", lambda v: is_pair(0)(v) and max(np.atleast_1d(v)) < 3)
    with pytest.raises(TypeError, match="dtype"):
        ConvTranspose2d(2, 2, 3, dtype=np.int32)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("where", ["input", "weight"])
@pytest.mark.parametrize("name", CONFIGS)
def test_non_finite_inputs_and_weights_give_the_loops_infs_and_nans(name, where):
    """The im2col forward (the adjoint convolution's window gradients and col2im) and the weight gradient meet zeros
    past each row's end that are not part of the layer: an infinite weight or input must not turn them into NaN
    where the loop implementation has a finite value or an infinity."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal(CONFIGS[name][-1])
    layers = [build(name, impl) for impl in ("loop", "im2col")]
    if where == "input":
        x[..., 1, 0], x[..., -1, -1] = np.inf, -np.inf
    else:
        for layer in layers:
            layer.params["weight"][-1, 0, 0, -1] = np.inf
    results = []
    for layer in layers:
        out = layer.forward(x)
        dx = layer.backward(np.random.default_rng(4).standard_normal(out.shape))
        results.append([out, dx, *(layer.grads[key] for key in sorted(layer.grads))])
    for want, got in zip(*results, strict=True):
        for test in (np.isnan, np.isposinf, np.isneginf):
            assert np.array_equal(test(got), test(want)), test.__name__
        finite = np.isfinite(want)
        if finite.any():  # float64 rounding
            assert max_rel_error(got[finite], want[finite]) <= 1e-12
    assert any(not np.isfinite(r).all() for r in results[0]), "the case has no non-finite value to compare"
