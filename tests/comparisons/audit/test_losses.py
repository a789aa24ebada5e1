"""Loss probes (audit/losses.py): Keras' probability clipping, cross-entropy on logits, label smoothing, binary
cross-entropy at probabilities 0 and 1."""

from __future__ import annotations

import numpy as np
import pytest

from comparisons.audit import losses

from .helpers import check, ev, finding, groups_are, keras_only, torch_only

# Framework losses are float32: a sum of ten exponentials rounds to a few float32 eps (rtol 1e-6), and a
# loss near 0 (-log p, p near 1) resolves eps32 / 2 = 6e-8 absolute; Keras' clip at 1 - 1e-7 moves such a
# loss by 1.2e-7, which the absolute bound still catches (measured errors: 3.8e-8 absolute, 2.6e-8
# relative). The reference side is float64 and agrees to rounding (measured 2.5e-17 absolute).
LOSS_TOL = {"rtol": 1e-6, "atol": 6e-8}
LOSS_TOL_FLOAT64 = {"rtol": 1e-12, "atol": 1e-15}


def loss_tol(side: str) -> dict[str, float]:
    return LOSS_TOL_FLOAT64 if side == "reference" else LOSS_TOL


def softmax64(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def ce_on_logits(label: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-row -log softmax(z)[label] and the norm of its gradient softmax - onehot, in float64."""
    z = losses.logits().astype(np.float64)
    p = softmax64(z)
    onehot = np.eye(losses.K)[label]
    return -np.log(p[:, label]), np.linalg.norm(p - onehot, axis=1)


@pytest.mark.parametrize("side", [pytest.param("torch", marks=torch_only), "reference"])
def test_loss_on_logits_is_not_clipped(side):
    pid = "loss-cce-probability-clipping"
    for name, label in (("right", 0), ("wrong", 1)):
        loss, grad = ce_on_logits(label)
        check(pid, side, f"loss ({name} label)", ev(pid, side)[f"loss_{name}"], loss, "-log softmax",
              **loss_tol(side))
        check(pid, side, f"grad norm ({name})", ev(pid, side)[f"grad_norm_{name}"], grad, "softmax - onehot",
              **loss_tol(side))


@pytest.mark.keras
def test_keras_clips_probabilities():
    pid, e = "loss-cce-probability-clipping", ev("loss-cce-probability-clipping", "keras")
    eps = e["epsilon"]
    import keras

    check(pid, "keras", "epsilon", eps, keras.config.epsilon(), "keras.config.epsilon()")
    lo, hi = eps, float(np.float32(1.0) - np.float32(eps))  # the clip bounds as float32 holds them
    p = softmax64(losses.logits().astype(np.float64))
    for name, label in (("right", 0), ("wrong", 1)):
        q = p[:, label]
        clipped = np.clip(q, lo, hi)
        check(pid, "keras", f"loss ({name} label)", e[f"loss_{name}"], -np.log(clipped),
              "-log(clip(p, eps, 1 - eps))", **LOSS_TOL)
        # where the clip is active the loss is flat: no gradient reaches the logits
        inside = (q > lo) & (q < hi)
        _, grad = ce_on_logits(label)
        check(pid, "keras", f"grad norm ({name})", e[f"grad_norm_{name}"], np.where(inside, grad, 0.0),
              "zero gradient where clipped", **LOSS_TOL)
    assert finding(pid).differs is True


@pytest.mark.parametrize("side", [pytest.param("torch", marks=torch_only), pytest.param("keras", marks=keras_only)])
def test_loss_from_logits_agrees(side):
    pid = "loss-cce-from-logits"
    for name, label in (("right", 0), ("wrong", 1)):
        loss, grad = ce_on_logits(label)
        check(pid, side, f"loss ({name})", ev(pid, side)[f"loss_{name}"], loss, "-log softmax", **loss_tol(side))
        check(pid, side, f"grad ({name})", ev(pid, side)[f"grad_norm_{name}"], grad, "softmax - onehot",
              **loss_tol(side))


def smoothed_cross_entropy(ls: float) -> dict:
    """Mean of -sum_c q_c log softmax(z)_c with q = (1 - ls) onehot + ls/C, and the norm of its gradient
    (softmax - q) / N, in float64."""
    z, y = losses.smoothing_batch()
    n, c = z.shape
    q = (1 - ls) * np.eye(c)[y] + ls / c
    p = softmax64(z)
    return {"loss": float(np.mean(-(q * np.log(p)).sum(axis=1))), "grad_norm": float(np.linalg.norm((p - q) / n))}


@pytest.mark.parametrize("side", [pytest.param("torch", marks=torch_only), pytest.param("keras", marks=keras_only),
                                  "reference"])
def test_cross_entropy_label_smoothing(side):
    pid, e = "cross-entropy-label-smoothing", ev("cross-entropy-label-smoothing", side)
    for ls in losses.SMOOTH["label_smoothing"]:
        expected = smoothed_cross_entropy(ls)
        for key in ("loss", "grad_norm"):  # float64 sums of 5 terms: agree to ~1e-15
            check(pid, side, f"{key} (ls={ls})", e[f"ls={ls}"][key], expected[key], "y*(1 - ls) + ls/C", rtol=1e-12)


@pytest.mark.keras
def test_sparse_cross_entropy_has_no_label_smoothing():
    import keras

    pid = "cross-entropy-label-smoothing"
    with pytest.raises(TypeError, match="label_smoothing"):
        keras.losses.SparseCategoricalCrossentropy(label_smoothing=0.1)
    check(pid, "keras", "sparse_has_label_smoothing", ev(pid, "keras")["sparse_has_label_smoothing"], False,
          "SparseCategoricalCrossentropy(label_smoothing=...) is a TypeError")


# -- binary cross-entropy at probabilities 0 and 1 -------------------------------------------------
def bce_expected(side: str) -> dict[str, dict]:
    """Per BCE_EDGES case, from each framework's rule (float64): PyTorch each log clamped at -100 and
    dloss/dp = (p - t) / max(p(1 - p), float32 1e-12); Keras p clipped to [1e-7, 1 - 1e-7], no gradient where
    clipped; optax on the logits -inf/+inf: -t log_sigmoid(x) - (1 - t) log_sigmoid(-x) (0 * inf = nan) and
    dloss/dx = sigmoid(x) - t."""
    p, t = np.array(losses.BCE_EDGES).T
    with np.errstate(divide="ignore", invalid="ignore"):
        if side in ("torch", "reference"):
            loss = -(t * np.maximum(np.log(p), -100) + (1 - t) * np.maximum(np.log(1 - p), -100))
            grad = (p - t) / np.maximum(p * (1 - p), float(np.float32(1e-12)))
            return {"loss": loss, "dloss_dp": grad}
        if side == "keras":
            q = np.clip(p, 1e-7, 1 - 1e-7)
            return {"loss": -(t * np.log(q) + (1 - t) * np.log(1 - q)), "dloss_dp": np.zeros_like(p)}
        x = np.log(p) - np.log1p(-p)
        log_sig, log_not_sig = -np.logaddexp(0, -x), -np.logaddexp(0, x)
        return {"loss": -t * log_sig - (1 - t) * log_not_sig, "dloss_dlogit": (x > 0).astype(float) - t}


def check_edges(pid: str, side: str, what: str, actual: dict, expected: np.ndarray, rule: str) -> None:
    names = [f"p={p:g},t={t:g}" for p, t in losses.BCE_EDGES]
    check(pid, side, f"{what} cases", list(actual), names, rule)
    for name, x in zip(names, expected, strict=True):
        if np.isfinite(x):  # float64 logs of 1e-7-size terms: rounding only
            check(pid, side, f"{what} ({name})", actual[name], float(x), rule, rtol=1e-12, atol=1e-300)
        else:
            check(pid, side, f"{what} ({name})", actual[name], str(x), rule)


@pytest.mark.parametrize("side", [pytest.param("torch", marks=torch_only), pytest.param("keras", marks=keras_only),
                                  pytest.param("jax", marks=pytest.mark.jax), "reference"])
def test_bce_probability_edges(side):
    pid, e = "loss-bce-probability-edges", ev("loss-bce-probability-edges", side)
    for key, expected in bce_expected(side).items():
        check_edges(pid, side, key, e[key], expected, f"{side}'s binary cross-entropy")
    if side == "keras":
        check(pid, side, "epsilon", e["epsilon"], 1e-7, "keras.config.epsilon()")
    if side == "reference":
        for key, expected in bce_expected("keras").items():
            check_edges(pid, side, f"clip_epsilon {key}", e["clip_epsilon=1e-7"][key], expected, "Keras' clipping")


@pytest.mark.parametrize("_", [pytest.param(None, marks=[torch_only, keras_only, pytest.mark.jax])])
def test_bce_probability_edges_verdict(_):
    groups_are("loss-bce-probability-edges", [["torch"], ["keras"], ["jax"]], ["torch"])
