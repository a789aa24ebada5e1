"""RMSprop, Adagrad, AdamW and gradient clipping against torch.optim / torch.nn.utils: 300 steps in float64 from the
same parameters and gradient sequence, the parameters compared after every step (to rounding: the two evaluate the
same formulas in a different operation order: a few ulps per step, normwise, which 300 steps leave below 1e-13)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import reference as ref
from tests.frameworks import import_or_skip
from tests.torch_optim import run_torch

pytestmark = pytest.mark.torch

SHAPES = {"0.weight": (3, 2, 3, 3), "0.bias": (3,), "4.weight": (12, 5), "4.bias": (5,)}
STEPS = 300
RTOL = 1e-13


def problem(seed: int):
    rng = np.random.default_rng(seed)
    params = {k: rng.standard_normal(s) for k, s in SHAPES.items()}
    grads = [{k: rng.standard_normal(s) * 10.0 ** rng.integers(-3, 1) for k, s in SHAPES.items()}
             for _ in range(STEPS)]
    return params, grads


def run_reference(make, params, grads, clip=None):
    current = {k: v.copy() for k, v in params.items()}
    opt = make(current)
    history = []
    for g in grads:
        g = {k: v.copy() for k, v in g.items()}
        if clip:
            clip(g)
        opt.step(g)
        history.append({k: v.copy() for k, v in current.items()})
    return history


def assert_close(ours, theirs, what):
    worst = 0.0
    for t, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        for key in a:
            err = ref.max_rel_error(a[key], b[key])  # normwise: an element passing near 0 has no relative error
            worst = max(worst, err)
            assert err < RTOL, f"{what}: step {t + 1}, {key}: rel_error {err:.3e} >= {RTOL}"
    return worst


RMSPROP = {
    "defaults": {}, "centered": {"centered": True, "lr": 1e-3}, "momentum": {"momentum": 0.9, "lr": 1e-3},
    "all": {"lr": 3e-3, "alpha": 0.9, "eps": 1e-6, "weight_decay": 0.01, "momentum": 0.5, "centered": True},
}
ADAGRAD = {
    "defaults": {}, "lr-decay": {"lr": 0.1, "lr_decay": 0.01},
    "all": {"lr": 0.05, "lr_decay": 1e-3, "weight_decay": 0.02, "initial_accumulator_value": 0.1, "eps": 1e-8},
}
ADAMW = {"defaults": {}, "all": {"lr": 3e-3, "betas": (0.8, 0.99), "eps": 1e-7, "weight_decay": 0.1}}


@pytest.mark.parametrize("config", RMSPROP.values(), ids=RMSPROP.keys())
def test_rmsprop_matches_torch(config):
    params, grads = problem(1)
    ours = run_reference(lambda p: ref.RMSprop(p, **config), params, grads)
    assert_close(ours, run_torch(lambda torch, ps: torch.optim.RMSprop(ps, **config), params, grads), "RMSprop")


@pytest.mark.parametrize("config", ADAGRAD.values(), ids=ADAGRAD.keys())
def test_adagrad_matches_torch(config):
    params, grads = problem(2)
    ours = run_reference(lambda p: ref.Adagrad(p, **config), params, grads)
    assert_close(ours, run_torch(lambda torch, ps: torch.optim.Adagrad(ps, **config), params, grads), "Adagrad")


@pytest.mark.parametrize("config", ADAMW.values(), ids=ADAMW.keys())
def test_adamw_matches_torch(config):
    params, grads = problem(3)
    ours = run_reference(lambda p: ref.AdamW(p, **config), params, grads)
    assert_close(ours, run_torch(lambda torch, ps: torch.optim.AdamW(ps, **config), params, grads), "AdamW")


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.0])
def test_sgd_with_clip_grad_norm_matches_torch(norm_type):
    params, grads = problem(4)
    ours = run_reference(lambda p: ref.SGD(p, lr=0.01, momentum=0.9), params, grads,
                         clip=lambda g: ref.clip_grad_norm(g, 0.5, norm_type))
    theirs = run_torch(lambda torch, ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9), params, grads,
                       clip=lambda torch, ps: torch.nn.utils.clip_grad_norm_(ps, 0.5, norm_type))
    assert_close(ours, theirs, f"clip_grad_norm({norm_type})")


def test_clip_grad_norm_returns_torchs_total_norm():
    torch = import_or_skip("torch")
    _, grads = problem(5)
    for norm_type in (2.0, 1.0, math.inf, 3.0):
        g = {k: v.copy() for k, v in grads[0].items()}
        tensors = [torch.zeros(v.shape, dtype=torch.float64, requires_grad=True) for v in g.values()]
        for t, v in zip(tensors, g.values(), strict=True):
            t.grad = torch.from_numpy(v.copy())
        expected = float(torch.nn.utils.clip_grad_norm_(tensors, 0.1, norm_type))
        assert math.isclose(ref.clip_grad_norm(g, 0.1, norm_type), expected, rel_tol=1e-14)
        for t, v in zip(tensors, g.values(), strict=True):
            assert ref.rel_error(v, t.grad.numpy()) < 1e-15


def test_adam_with_clip_grad_value_matches_torch():
    params, grads = problem(6)
    ours = run_reference(lambda p: ref.Adam(p), params, grads, clip=lambda g: ref.clip_grad_value(g, 0.05))
    theirs = run_torch(lambda torch, ps: torch.optim.Adam(ps), params, grads,
                       clip=lambda torch, ps: torch.nn.utils.clip_grad_value_(ps, 0.05))
    assert_close(ours, theirs, "clip_grad_value")
