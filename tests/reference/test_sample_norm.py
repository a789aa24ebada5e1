"""LayerNorm and GroupNorm: the formulas, finite-difference gradients of every option, bad arguments by name."""

from __future__ import annotations

import numpy as np
import pytest

from reference import GroupNorm, LayerNorm, max_rel_error
from tests.reference.helpers import assert_gradients_match, assert_refused_by_name, is_bool, is_int, is_real


def randomized(layer, rng):
    for key, value in layer.params.items():
        layer.params[key] = rng.uniform(0.5, 1.5, value.shape) if key == "weight" else rng.standard_normal(value.shape)
    return layer


LAYERNORMS = {
    "chw": (lambda: LayerNorm((3, 4, 5)), (2, 3, 4, 5)),
    "hw-eps": (lambda: LayerNorm((4, 5), eps=1e-2), (2, 3, 4, 5)),
    "last": (lambda: LayerNorm(5), (2, 3, 4, 5)),
    "flat": (lambda: LayerNorm(7), (4, 7)),
    "no-affine": (lambda: LayerNorm((4, 5), elementwise_affine=False), (2, 4, 5)),
    "no-bias": (lambda: LayerNorm(6, bias=False), (3, 6)),
    "whole-input": (lambda: LayerNorm([3, 4]), (3, 4)),
}
GROUPNORMS = {
    "one-group": (lambda: GroupNorm(1, 6), (2, 6, 3, 4)),
    "groups": (lambda: GroupNorm(3, 6, eps=1e-2), (2, 6, 3, 4)),
    "instance": (lambda: GroupNorm(4, 4), (2, 4, 3, 3)),
    "no-affine": (lambda: GroupNorm(2, 4, affine=False), (2, 4, 3, 3)),
    "single": (lambda: GroupNorm(2, 4), (4, 3, 5)),
}


@pytest.mark.parametrize("name", LAYERNORMS)
def test_layernorm_gradients(name):
    build, shape = LAYERNORMS[name]
    rng = np.random.default_rng(0)
    assert_gradients_match(randomized(build(), rng), 2.0 + rng.standard_normal(shape), rng)


@pytest.mark.parametrize("name", GROUPNORMS)
def test_groupnorm_gradients(name):
    build, shape = GROUPNORMS[name]
    rng = np.random.default_rng(1)
    assert_gradients_match(randomized(build(), rng), 2.0 + rng.standard_normal(shape), rng)


def test_layernorm_formula():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 4))
    ln = randomized(LayerNorm((3, 4), eps=1e-3), rng)
    flat = x.reshape(2, -1)
    xhat = ((flat - flat.mean(1, keepdims=True)) / np.sqrt(flat.var(1, keepdims=True) + 1e-3)).reshape(x.shape)
    assert max_rel_error(ln.forward(x), xhat * ln.params["weight"] + ln.params["bias"]) < 1e-14


def test_groupnorm_formula_and_its_extremes():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 6, 3, 3))
    gn = randomized(GroupNorm(2, 6), rng)
    blocks = x.reshape(2, 2, -1)
    xhat = ((blocks - blocks.mean(2, keepdims=True)) / np.sqrt(blocks.var(2, keepdims=True) + 1e-5)).reshape(x.shape)
    expected = xhat * gn.params["weight"][:, None, None] + gn.params["bias"][:, None, None]
    assert max_rel_error(gn.forward(x), expected) < 1e-14
    # one group is a layer norm over (C, H, W) with per-channel affine parameters
    ln = LayerNorm((6, 3, 3), elementwise_affine=False)
    assert max_rel_error(GroupNorm(1, 6, affine=False).forward(x), ln.forward(x)) < 1e-14


def test_float32_computes_in_float32():
    for layer, shape in ((LayerNorm(4, dtype=np.float32), (3, 4)), (GroupNorm(2, 4, dtype=np.float32), (2, 4, 3, 3))):
        out = layer.forward(np.ones(shape) + np.arange(shape[-1]))
        assert out.dtype == np.float32 and layer.backward(np.ones_like(out)).dtype == np.float32


def test_forward_errors():
    with pytest.raises(ValueError, match=r"normalized_shape=\(4, 5\)"):
        LayerNorm((4, 5)).forward(np.ones((2, 5, 4)))
    with pytest.raises(ValueError, match="normalized_shape"):
        LayerNorm((2, 4, 5)).forward(np.ones((4, 5)))
    with pytest.raises(ValueError, match="num_channels=4"):
        GroupNorm(2, 4).forward(np.ones((2, 6, 3, 3)))
    with pytest.raises(ValueError, match="divisible by num_groups"):
        GroupNorm(4, 6)


@pytest.mark.parametrize("arg, valid", [
    ("normalized_shape", lambda v: is_int(1)(v) or (isinstance(v, (tuple, list)) and len(v) > 0
                                                    and all(is_int(1)(p) for p in v))),
    ("eps", is_real(0.0, strict=True)), ("elementwise_affine", is_bool), ("bias", is_bool),
])
def test_layernorm_bad_arguments(arg, valid):
    assert_refused_by_name(LayerNorm, {"normalized_shape": 3}, arg, valid)


@pytest.mark.parametrize("arg, valid", [
    ("num_groups", lambda v: is_int(1)(v) and v == 1), ("num_channels", lambda v: is_int(1)(v) and v <= 2**20),
    ("eps", is_real(0.0, strict=True)), ("affine", is_bool),
])
def test_groupnorm_bad_arguments(arg, valid):
    assert_refused_by_name(GroupNorm, {"num_groups": 1, "num_channels": 2}, arg, valid)
