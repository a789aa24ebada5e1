"""Conv2d(groups=g): a grouped conv is g independent convs on channel blocks; loop == im2col; gradients."""

from __future__ import annotations

import numpy as np
import pytest

from reference import Conv2d, max_rel_error
from tests.reference.helpers import assert_gradients_match

CONFIGS = [  # (C, F, groups, kernel, stride, padding, dilation)
    (4, 6, 2, 3, 1, 1, 1), (6, 3, 3, (2, 3), 2, (1, 0), 1), (3, 3, 3, 3, 1, 2, 2), (3, 6, 3, (3, 2), 2, 1, 1),
    (4, 8, 4, 1, 1, 0, 1), (2, 2, 1, 3, 1, 1, 1),
]
IDS = [f"c{c}-f{f}-g{g}-k{k}-s{s}-p{p}-d{d}" for c, f, g, k, s, p, d in CONFIGS]


def grouped(cfg, impl, bias=True, seed=0) -> Conv2d:
    c, f, g, k, s, p, d = cfg
    return Conv2d(c, f, k, stride=s, padding=p, dilation=d, groups=g, bias=bias, impl=impl, rng=seed)


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_equals_independent_convs_on_channel_blocks(cfg):
    """Output block k is an ungrouped conv of input block k with weight block k (PyTorch's definition)."""
    c, f, g, k, s, p, d = cfg
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, c, 8, 7))
    layer = grouped(cfg, "im2col")
    out = layer.forward(x)
    assert layer.params["weight"].shape[:2] == (f, c // g)
    cg, fg = c // g, f // g
    for block in range(g):
        part = Conv2d(cg, fg, k, stride=s, padding=p, dilation=d, impl="loop")
        part.params["weight"] = layer.params["weight"][block * fg:(block + 1) * fg]
        part.params["bias"] = layer.params["bias"][block * fg:(block + 1) * fg]
        expected = part.forward(x[:, block * cg:(block + 1) * cg])
        assert max_rel_error(out[:, block * fg:(block + 1) * fg], expected) < 1e-14


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
@pytest.mark.parametrize("single", [False, True], ids=["batch", "single"])
def test_loop_equals_im2col(cfg, single):
    rng = np.random.default_rng(2)
    shape = (cfg[0], 9, 8) if single else (3, cfg[0], 9, 8)
    x = rng.standard_normal(shape)
    loop, fast = grouped(cfg, "loop", seed=3), grouped(cfg, "im2col", seed=3)
    out = loop.forward(x)
    assert max_rel_error(fast.forward(x), out) < 1e-14
    dout = rng.standard_normal(out.shape)
    assert max_rel_error(fast.backward(dout), loop.backward(dout)) < 1e-14
    for key in loop.grads:
        assert max_rel_error(fast.grads[key], loop.grads[key]) < 1e-14, key


@pytest.mark.parametrize("cfg", CONFIGS[:4], ids=IDS[:4])
@pytest.mark.parametrize("impl", ["loop", "im2col"])
def test_gradients(cfg, impl):
    rng = np.random.default_rng(4)
    assert_gradients_match(grouped(cfg, impl, bias=impl == "loop"), rng.standard_normal((2, cfg[0], 6, 5)), rng)


def test_init_bound_uses_the_group_fan_in():
    """As torch.nn.Conv2d: U(-1/sqrt(C/g*kh*kw), ...)."""
    w = Conv2d(8, 8, 3, groups=8, rng=0).params["weight"]
    assert w.shape == (8, 1, 3, 3)
    assert np.abs(w).max() <= 1 / 3 and np.abs(w).max() > 1 / np.sqrt(72)


@pytest.mark.parametrize("kwargs,error,match", [
    ({"groups": 3}, ValueError, "Conv2d: in_channels must be divisible by groups=3, got in_channels=4"),
    ({"groups": 4, "out_channels": 6}, ValueError, "out_channels must be divisible by groups=4, got out_channels=6"),
    ({"groups": 0}, ValueError, "Conv2d: groups must be positive, got 0"),
    ({"groups": 2.0}, TypeError, r"Conv2d: groups must be an int, got 2.0"),
])
def test_bad_groups_raise_clear_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        Conv2d(**{"in_channels": 4, "out_channels": 8, "kernel_size": 3, **kwargs})


def test_weight_of_the_ungrouped_shape_is_rejected():
    layer = Conv2d(4, 4, 3, groups=2)
    layer.params["weight"] = np.zeros((4, 4, 3, 3))
    with pytest.raises(ValueError, match=r"must have shape \(4, 2, 3, 3\), got shape \(4, 4, 3, 3\)"):
        layer.forward(np.zeros((4, 5, 5)))
