"""Conv2d: gradients by finite differences, loop == im2col, batch == stacked images, parameters."""

from __future__ import annotations

import numpy as np
import pytest

from comparisons.cases import conv_cases
from reference import Conv2d, max_rel_error
from reference.conv import unstacked
from tests.reference.helpers import assert_gradients_match

CONV_CASES = conv_cases()


def build(case, impl, dtype=np.float64):
    return Conv2d(**case.specs[0].kwargs, impl=impl, dtype=dtype, rng=case.seed)


def direct_conv(x, w, b, stride, padding, dilation):
    """An independent definition: out[n,f,i,j] = sum_{c,a,b} xp[n,c,i*s+a*d, j*s+b*d] w[f,c,a,b] + b[f]."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    f, _, kh, kw = w.shape
    oh = (xp.shape[2] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (xp.shape[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((x.shape[0], f, oh, ow))
    for a in range(kh):
        for c in range(kw):
            patch = xp[:, :, a * dilation[0]:][:, :, : oh * stride[0]: stride[0]][:, :, :, c * dilation[1]:]
            patch = patch[:, :, :, : ow * stride[1]: stride[1]]
            out += np.einsum("nchw,fc->nfhw", patch, w[:, :, a, c])
    return out + (0 if b is None else b[:, None, None])


@pytest.mark.parametrize("case", CONV_CASES, ids=[c.id for c in CONV_CASES])
def test_im2col_gradients_match_finite_differences(case):
    rng = np.random.default_rng(case.seed)
    assert_gradients_match(build(case, "im2col"), rng.standard_normal(case.input_shape), rng)


@pytest.mark.parametrize("case", CONV_CASES[::7], ids=[c.id for c in CONV_CASES[::7]])
def test_loop_gradients_match_finite_differences(case):
    rng = np.random.default_rng(case.seed)
    assert_gradients_match(build(case, "loop"), rng.standard_normal(case.input_shape), rng)


@pytest.mark.parametrize("case", CONV_CASES, ids=[c.id for c in CONV_CASES])
def test_loop_and_im2col_agree(case):
    rng = np.random.default_rng(case.seed)
    x = rng.standard_normal(case.input_shape)
    loop, fast = build(case, "loop"), build(case, "im2col")
    out_l, out_f = loop.forward(x), fast.forward(x)
    dout = rng.standard_normal(out_l.shape)
    assert max_rel_error(out_l, out_f) < 1e-12
    assert max_rel_error(loop.backward(dout), fast.backward(dout)) < 1e-12
    for key in loop.grads:
        assert max_rel_error(loop.grads[key], fast.grads[key]) < 1e-12, key


@pytest.mark.parametrize("impl", ["loop", "im2col"])
@pytest.mark.parametrize("case", CONV_CASES[::5], ids=[c.id for c in CONV_CASES[::5]])
def test_forward_matches_direct_definition(case, impl):
    rng = np.random.default_rng(case.seed)
    x = rng.standard_normal(case.input_shape)
    layer = build(case, impl)
    xb = x if x.ndim == 4 else x[None]
    expected = direct_conv(xb, layer.params["weight"], layer.params.get("bias"), layer.stride, layer.padding,
                           layer.dilation)
    got = layer.forward(x)
    assert max_rel_error(got if x.ndim == 4 else got[None], expected) < 1e-12


@pytest.mark.parametrize("impl", ["loop", "im2col"])
def test_batch_equals_stacked_single_images(impl):
    rng = np.random.default_rng(1)
    layer = Conv2d(3, 5, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2), impl=impl, rng=2)
    x = rng.standard_normal((4, 3, 9, 7))
    batch_out = layer.forward(x)
    dout = rng.standard_normal(batch_out.shape)
    batch_dx = layer.backward(dout)
    batch_dw = layer.grads["weight"].copy()
    singles_dw = np.zeros_like(batch_dw)
    for n in range(4):
        assert max_rel_error(layer.forward(x[n]), batch_out[n]) < 1e-13
        assert max_rel_error(layer.backward(dout[n]), batch_dx[n]) < 1e-13
        singles_dw += layer.grads["weight"]
    assert max_rel_error(singles_dw, batch_dw) < 1e-12


@pytest.mark.parametrize("impl", ["loop", "im2col"])
def test_replaced_and_in_place_updated_parameters_are_used(impl):
    rng = np.random.default_rng(3)
    layer = Conv2d(2, 3, 3, padding=1, impl=impl, rng=4)
    x = rng.standard_normal((2, 5, 5))
    w = rng.standard_normal((3, 2, 3, 3))
    layer.params["weight"] = w
    layer.params["bias"][:] = 0.5
    expected = direct_conv(x[None], w, np.full(3, 0.5), (1, 1), (1, 1), (1, 1))[0]
    assert max_rel_error(layer.forward(x), expected) < 1e-12
    layer.params["weight"] *= 2
    assert max_rel_error(layer.forward(x) - 0.5, 2 * (expected - 0.5)) < 1e-12


@pytest.mark.parametrize("impl", ["loop", "im2col"])
def test_float32_layer_computes_in_float32(impl):
    rng = np.random.default_rng(5)
    layer = Conv2d(2, 3, 3, impl=impl, dtype=np.float32, rng=6)
    assert layer.params["weight"].dtype == np.float32
    x = rng.standard_normal((2, 2, 6, 6))  # float64 input is cast to the layer's dtype
    out = layer.forward(x)
    dx = layer.backward(np.ones_like(out))
    assert out.dtype == dx.dtype == layer.grads["weight"].dtype == layer.grads["bias"].dtype == np.float32


def test_default_init_matches_torch_bounds():
    layer = Conv2d(4, 64, 3, rng=0)
    bound = 1 / np.sqrt(4 * 9)
    w, b = layer.params["weight"], layer.params["bias"]
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(w).max() > 0.95 * bound  # uniform on the whole interval, not a narrower one
    assert Conv2d(1, 2, 3, rng=7).params["weight"].tolist() == Conv2d(1, 2, 3, rng=7).params["weight"].tolist()


def _run(layer, x, dout):
    out = layer.forward(x)
    dx = layer.backward(dout)
    return out, dx, {k: v.copy() for k, v in layer.grads.items()}


def test_im2col_plan_reuse_matches_fresh_layers():
    """The im2col layer keeps buffers per input shape: repeated calls, a shape change and back, and an
    in-place weight update give what a fresh layer gives."""
    rng = np.random.default_rng(11)
    layer = Conv2d(3, 4, 3, padding=1, rng=12)
    shapes = [(2, 3, 7, 6), (1, 3, 5, 9), (2, 3, 7, 6)]
    for step, shape in enumerate(shapes * 2):
        if step == 3:
            layer.params["weight"] *= -0.5
        x = rng.standard_normal(shape)
        fresh = Conv2d(3, 4, 3, padding=1, rng=0)
        fresh.params = {k: v.copy() for k, v in layer.params.items()}
        dout = rng.standard_normal(fresh.forward(x).shape)
        got, want = _run(layer, x, dout), _run(fresh, x, dout)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
        for key in want[2]:
            assert np.array_equal(got[2][key], want[2][key]), key


def test_input_gradient_in_chunks_equals_one_chunk(monkeypatch):
    """col2im computes dx a few images at a time; a tiny chunk size gives the same result."""
    import reference.conv as conv_module

    monkeypatch.setattr(conv_module, "input_grad_method", lambda stride, c, f: "col2im")
    rng = np.random.default_rng(13)
    x = rng.standard_normal((5, 2, 6, 7))
    dout = rng.standard_normal((5, 3, 6, 7))
    one = _run(Conv2d(2, 3, 3, padding=1, rng=14), x, dout)
    monkeypatch.setattr(conv_module, "CHUNK_BYTES", 600)
    layer = Conv2d(2, 3, 3, padding=1, rng=14)
    many = _run(layer, x, dout)
    assert all(len(plan.chunks) > 1 for part in layer.im2col_plan(x.shape).parts for plan in part.plans.values())
    assert np.array_equal(one[0], many[0])
    assert max_rel_error(many[1], one[1]) < 1e-14


@pytest.mark.parametrize("bias", [True, False])
def test_grouped_single_image_stride_one_matches_loop(bias):
    """Batch 1 at stride 1 shares dout's zero-bordered buffer between the two gradient GEMMs."""
    rng = np.random.default_rng(15)
    x = rng.standard_normal((1, 4, 6, 5))
    fast, loop = (Conv2d(4, 6, 3, padding=1, groups=2, bias=bias, impl=i, rng=16) for i in ("im2col", "loop"))
    dout = rng.standard_normal(loop.forward(x).shape)
    a, b = _run(fast, x, dout), _run(loop, x, dout)
    assert max_rel_error(a[0], b[0]) < 1e-12 and max_rel_error(a[1], b[1]) < 1e-12
    for key in b[2]:
        assert max_rel_error(a[2][key], b[2][key]) < 1e-12, key


@pytest.mark.parametrize("shapes, want", [
    (((1, 8, 10), (1, 10, 7), (1, 8, 7)), ((8, 10), (10, 7), (8, 7))),  # one group
    (((1, 1, 9, 8), (1, 1, 8, 5), (1, 1, 9, 5)), ((9, 8), (8, 5), (9, 5))),  # one group, one image
    (((1, 1, 9, 8), (1, 3, 8, 5), (1, 3, 9, 5)), ((1, 9, 8), (3, 8, 5), (3, 9, 5))),  # three images
    (((2, 8, 10), (2, 10, 7), (2, 8, 7)), ((2, 8, 10), (2, 10, 7), (2, 8, 7))),  # two groups
    (((1, 8), (8, 5)), ((1, 8), (8, 5))),  # 2-D already
], ids=str)
def test_unstacked_drops_only_the_leading_axes_of_length_one_every_operand_has(shapes, want):
    operands = [np.arange(np.prod(shape), dtype=np.float64).reshape(shape) for shape in shapes]
    got = unstacked(*operands)
    assert [a.shape for a in got] == list(want)
    assert all(np.shares_memory(a, b) for a, b in zip(got, operands, strict=True))  # views, so out= still writes
    stacked = np.matmul(operands[0], operands[1])
    assert np.array_equal(np.matmul(got[0], got[1]).reshape(stacked.shape), stacked)
