"""Gradient-clipping probes (audit/clipping.py): per-variable vs global norm clipping, PyTorch's norm epsilon,
clipping by value; each side against the clipping rules written here."""

from __future__ import annotations

import numpy as np
import pytest

from comparisons.audit import clipping

from .helpers import check, ev, groups_are, sides

ALL = [pytest.mark.torch, pytest.mark.keras, pytest.mark.jax]  # the verdicts need every framework side
TORCH_EPS = 1e-6  # torch.nn.utils.clip_grad_norm_: max_norm / (total_norm + 1e-6)
FLOAT64 = 1e-12  # norms and ratios of a few float64 terms: rounding only


def global_clip(g: dict, limit: float, eps: float) -> dict:
    n = np.sqrt(sum(np.sum(a * a) for a in g.values()))
    return {k: a * min(1.0, limit / (n + eps)) for k, a in g.items()}


def per_variable_clip(g: dict, limit: float) -> dict:
    return {k: a * min(1.0, limit / np.linalg.norm(a)) for k, a in g.items()}


def check_arrays(pid, side, what, actual: dict, expected: dict, rule: str, rtol: float = FLOAT64) -> None:
    check(pid, side, f"{what} keys", sorted(actual), sorted(expected), rule)
    for k in expected:
        check(pid, side, f"{what}[{k}]", actual[k], expected[k].tolist(), rule, rtol=rtol, atol=1e-300)


@pytest.mark.parametrize("side", sides("torch", "keras", "jax"))
def test_clip_norm_scope(side):
    pid, e, g, m = "clip-norm-scope", ev("clip-norm-scope", side), clipping.grads(), clipping.MAX_NORM
    if side == "keras":
        check_arrays(pid, side, "clipnorm", e["clipped"], per_variable_clip(g, m), "each variable by its own norm")
        check_arrays(pid, side, "global_clipnorm", e["global_clipnorm"], global_clip(g, m, 0.0), "the global norm")
        check(pid, side, "a untouched", e["norms_after"]["a"], 5.0, "norm 5 < 6.5 is not clipped", rtol=FLOAT64)
    else:
        eps = TORCH_EPS if side in ("torch", "reference") else 0.0
        check_arrays(pid, side, "clipped", e["clipped"], global_clip(g, m, eps), "one factor from the global norm")
    if side == "reference":
        check_arrays(pid, side, "per_array", e["per_array"], per_variable_clip(g, m), "Keras' clipnorm")


@pytest.mark.parametrize("_", [pytest.param(None, marks=ALL)])
def test_clip_norm_scope_verdict(_):
    groups_are("clip-norm-scope", [["torch", "jax"], ["keras"]], ["torch", "jax"])


def factor(scale: float, limit: float, eps: float) -> float:
    n = 13.0 * scale  # the norm of clipping.GRADS (norms 5 and 12) times scale
    return min(1.0, limit / (n + eps))


@pytest.mark.parametrize("side", sides("torch", "keras", "jax"))
def test_clip_norm_epsilon(side):
    pid, e = "clip-norm-epsilon", ev("clip-norm-epsilon", side)
    eps = TORCH_EPS if side in ("torch", "reference") else 0.0
    for name, (scale, limit) in clipping.EPS_CASES.items():
        check(pid, side, f"factor ({name})", e["factor"][name], factor(scale, limit, eps), "max_norm / (norm + eps)",
              rtol=FLOAT64)
        if side == "reference":
            check(pid, side, f"norm_eps=0 ({name})", e["factor_norm_eps_0"][name], factor(scale, limit, 0.0),
                  "max_norm / norm", rtol=FLOAT64)
    # eps is read as max_norm/factor - 13: rounding of O(10) terms leaves ~4e-15 absolute
    check(pid, side, "eps read", e["eps_read"], eps, "the epsilon added to the norm", atol=1e-13)


@pytest.mark.parametrize("_", [pytest.param(None, marks=ALL)])
def test_clip_norm_epsilon_verdict(_):
    groups_are("clip-norm-epsilon", [["torch"], ["keras", "jax"]], ["torch"])


@pytest.mark.parametrize("side", sides("torch", "keras", "jax"))
def test_clip_value(side):
    pid, e, v = "clip-value", ev("clip-value", side), clipping.VALUE["clip"]
    expected = {k: np.clip(np.array(g), -v, v) for k, g in clipping.VALUE["grads"].items()}
    check(pid, side, "keys", sorted(e["clipped"]), sorted(expected), "every gradient clipped")
    for k, a in expected.items():
        check(pid, side, f"clipped[{k}]", e["clipped"][k], a.tolist(), "clamp to [-v, v]")


@pytest.mark.parametrize("_", [pytest.param(None, marks=ALL)])
def test_clip_value_verdict(_):
    groups_are("clip-value", [["torch", "keras", "jax"]], ["torch", "keras", "jax"])
