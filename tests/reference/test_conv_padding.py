"""Conv2d padding options: "valid", "same", explicit ((top, bottom), (left, right)), and padding_mode
(zeros, reflect, replicate, circular), both implementations; the pad and its adjoint (fill_border,
fold_border) against np.pad; the errors PyTorch's rules call for."""

from __future__ import annotations

import numpy as np
import pytest

from comparisons.cases import conv_padding_cases, conv_padding_mode_cases
from reference import Conv2d, max_rel_error
from reference.conv import conv_pads
from reference.windows import PAD_MODES, fill_border, fold_border, pad_spatial
from tests.reference.helpers import assert_gradients_match, assert_impls_agree
from tests.reference.test_conv import direct_conv

CASES = conv_padding_cases() + conv_padding_mode_cases()
NP_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def build(case, impl):
    return Conv2d(**case.specs[0].kwargs, impl=impl, rng=case.seed)


# loop == im2col on every case (below), so the slower loop is checked against finite differences on a few
GRADCHECKS = [(c, "im2col") for c in CASES] + [(c, "loop") for c in CASES[::4]]


@pytest.mark.parametrize("case,impl", GRADCHECKS, ids=[f"{c.id}-{impl}" for c, impl in GRADCHECKS])
def test_gradients_match_finite_differences(case, impl):
    rng = np.random.default_rng(case.seed)
    assert_gradients_match(build(case, impl), rng.standard_normal(case.input_shape), rng)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_loop_and_im2col_agree(case):
    rng = np.random.default_rng(case.seed)
    assert_impls_agree(build, case, rng.standard_normal(case.input_shape), rng, params=("weight",))


@pytest.mark.parametrize("impl", ["loop", "im2col"])
@pytest.mark.parametrize("case", CASES[::3], ids=[c.id for c in CASES[::3]])
def test_forward_is_a_valid_conv_of_np_pad(case, impl):
    """Independent definition: np.pad with the mode, then the direct (unpadded) convolution."""
    layer = build(case, impl)
    x = np.random.default_rng(case.seed).standard_normal(case.input_shape)
    xb = x if x.ndim == 4 else x[None]
    xp = np.pad(xb, ((0, 0), (0, 0), *layer.pads), mode=NP_MODES[layer.padding_mode])
    expected = direct_conv(xp, layer.params["weight"], layer.params.get("bias"), layer.stride, (0, 0), layer.dilation)
    got = layer.forward(x)
    assert max_rel_error(got if x.ndim == 4 else got[None], expected) < 1e-12


@pytest.mark.parametrize("mode", PAD_MODES)
@pytest.mark.parametrize("pads", [((1, 2), (0, 3)), ((3, 0), (2, 2)), ((0, 0), (1, 0))])
def test_fill_border_is_np_pad_and_fold_border_its_adjoint(mode, pads):
    """fill_border == np.pad(mode); <fill(x), g> == <x, fold(g)> for random x, g (the adjoint identity)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4, 5))
    filled = fill_border(pad_spatial(x, pads), pads, mode)
    assert np.array_equal(filled, np.pad(x, ((0, 0), (0, 0), *pads), mode=NP_MODES[mode]))
    g = rng.standard_normal(filled.shape)
    (top, bottom), (left, right) = pads
    folded = fold_border(g.copy(), pads, mode)[:, :, top: top + 4, left: left + 5]
    lhs, rhs = np.vdot(filled, g), np.vdot(x, folded)
    assert abs(lhs - rhs) <= 1e-12 * (np.abs(filled).ravel() @ np.abs(g).ravel())


@pytest.mark.parametrize("kernel,dilation,pads", [
    (3, 1, ((1, 1), (1, 1))),
    (4, 1, ((1, 2), (1, 2))),  # total 3 is odd: the extra row/column at the bottom/right, as PyTorch
    ((2, 5), (3, 1), ((1, 2), (2, 2))),
    (1, 1, ((0, 0), (0, 0))),
])
def test_same_padding_keeps_the_size_with_the_odd_cell_at_the_end(kernel, dilation, pads):
    layer = Conv2d(2, 3, kernel, padding="same", dilation=dilation, rng=0)
    assert layer.pads == pads
    assert layer.forward(np.zeros((2, 7, 9))).shape == (3, 7, 9)


def test_padding_spellings():
    """valid is no padding; symmetric pairs read back as PyTorch spells them, asymmetric ones as pairs."""
    assert conv_pads("valid", (3, 3), (2, 2), (1, 1)) == ((0, 0), (0, 0))
    assert conv_pads((1, 2), (3, 3), (1, 1), (1, 1)) == ((1, 1), (2, 2))
    assert Conv2d(1, 1, 3, padding=((1, 1), (2, 2))).padding == (1, 2)
    assert Conv2d(1, 1, 3, padding=((0, 1), (2, 2))).padding == ((0, 1), (2, 2))
    assert "padding_mode='reflect'" in repr(Conv2d(1, 1, 3, padding=1, padding_mode="reflect"))


@pytest.mark.parametrize("call,message", [
    (lambda: Conv2d(3, 4, 3, stride=2, padding="same"), r"padding='same' needs stride 1.* got stride=\(2, 2\)"),
    (lambda: Conv2d(3, 4, 3, stride=(1, 2), padding="same"), r"got stride=\(1, 2\)"),
    (lambda: Conv2d(3, 4, 3, padding="full"), r"padding must be one of \('valid', 'same'\), got 'full'"),
    (lambda: Conv2d(3, 4, 3, padding_mode="symmetric"),
     r"padding_mode must be one of \('zeros', 'reflect', 'replicate', 'circular'\), got 'symmetric'"),
    (lambda: Conv2d(3, 4, 3, padding=((1, -1), (0, 0))), r"padding \(top, bottom\) must be >= 0, got -1"),
    (lambda: Conv2d(3, 4, 3, padding=((1, 2, 3), (0, 0))), r"padding \(top, bottom\) must be an int or a pair"),
    # PyTorch's limits: reflect pads less than the input, circular at most the input
    (lambda: Conv2d(3, 4, 3, padding=3, padding_mode="reflect").forward(np.zeros((3, 3, 8))),
     r"padding_mode='reflect' needs padding less than the input height 3, got padding \(3, 3\)"),
    (lambda: Conv2d(3, 4, 3, padding=((0, 0), (0, 5)), padding_mode="circular").forward(np.zeros((3, 6, 4))),
     r"padding_mode='circular' needs padding at most the input width 4, got padding \(0, 5\)"),
])
def test_bad_padding_raises_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.torch
@pytest.mark.parametrize("mode,padding,ok", [("reflect", 2, True), ("reflect", 3, False), ("circular", 3, True),
                                             ("circular", 4, False), ("replicate", 5, True)])
def test_padding_limits_are_torchs(mode, padding, ok, torch_framework):
    """The reference refuses exactly what PyTorch refuses, on a 3x4 input."""
    import torch

    def torch_call():
        torch.nn.Conv2d(1, 1, 3, padding=padding, padding_mode=mode)(torch.zeros(1, 1, 3, 4))

    def ref_call():
        Conv2d(1, 1, 3, padding=padding, padding_mode=mode).forward(np.zeros((1, 3, 4)))

    for call in (torch_call, ref_call):
        if ok:
            call()
        else:
            with pytest.raises((ValueError, RuntimeError)):
                call()
