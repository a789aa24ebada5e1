"""binary_cross_entropy and binary_cross_entropy_with_logits against torch.nn.functional, loss and gradient, in
float64 and float32, every reduction, weights, pos_weight, and probabilities and labels of exactly 0 and 1."""

from __future__ import annotations

import numpy as np
import pytest

import reference as ref
from tests.frameworks import import_or_skip

pytestmark = pytest.mark.torch
TOL = {"float64": 1e-14, "float32": 1e-6}


def torch_loss(fn, x, t, dloss, reduction, **weights):
    torch = import_or_skip("torch")
    xt = torch.from_numpy(x).requires_grad_(True)
    options = {k: None if v is None else torch.from_numpy(v) for k, v in weights.items()}
    loss = fn(torch)(xt, torch.from_numpy(t), reduction=reduction, **options)
    loss.backward(torch.as_tensor(dloss, dtype=loss.dtype))
    return loss.detach().numpy(), xt.grad.numpy()


def assert_matches(ours, theirs, dtype):
    for mine, other in zip(ours, theirs, strict=True):
        mine, other = np.asarray(mine, dtype=np.float64), np.asarray(other, dtype=np.float64)
        scale = max(1.0, float(np.max(np.abs(other))))
        assert np.max(np.abs(mine - other)) <= TOL[dtype] * scale


def draws(dtype, edges: bool):
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, (4, 5))
    t = rng.uniform(0, 1, (4, 5))
    if edges:  # every pairing of probability and label in {0, 1}, and labels 0 and 1 on random probabilities
        p[0, :4], t[0, :4] = [0, 0, 1, 1], [0, 1, 0, 1]
        t[1] = rng.integers(0, 2, 5)
        p[2, :2] = [0, 1]
    return p.astype(dtype), t.astype(dtype), rng


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("edges", [False, True])
def test_bce_matches_torch(dtype, reduction, weighted, edges):
    p, t, rng = draws(dtype, edges)
    w = rng.uniform(0.5, 2, 5).astype(dtype) if weighted else None
    dloss = rng.standard_normal(p.shape).astype(dtype) if reduction == "none" else 1.3
    ours = ref.binary_cross_entropy(p, t, w, reduction, dloss)
    theirs = torch_loss(lambda torch: torch.nn.functional.binary_cross_entropy, p, t, dloss, reduction, weight=w)
    assert_matches(ours, theirs, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weights", ["none", "weight", "pos_weight", "both"])
@pytest.mark.parametrize("scale", [1.0, 50.0])
def test_bce_with_logits_matches_torch(dtype, reduction, weights, scale):
    p, t, rng = draws(dtype, True)
    x = (scale * rng.standard_normal(p.shape)).astype(dtype)
    w = rng.uniform(0.5, 2, (4, 1)).astype(dtype) if weights in ("weight", "both") else None
    c = rng.uniform(0.5, 3, 5).astype(dtype) if weights in ("pos_weight", "both") else None
    dloss = rng.standard_normal(p.shape).astype(dtype) if reduction == "none" else 0.7
    ours = ref.binary_cross_entropy_with_logits(x, t, w, c, reduction, dloss)
    theirs = torch_loss(lambda torch: torch.nn.functional.binary_cross_entropy_with_logits, x, t, dloss, reduction,
                        weight=w, pos_weight=c)
    assert_matches(ours, theirs, dtype)
