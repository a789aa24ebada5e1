"""Adaptive-optimizer probes (audit/adaptive_optimizers.py): RMSprop's epsilon, defaults and momentum, Adagrad's
accumulator, Adam's and AdamW's weight decay, Keras' l2 regularizer; each side against the update rules written
here, with the defaults each framework documents."""

from __future__ import annotations

import math

import numpy as np
import pytest

from comparisons.audit import adaptive_optimizers as ao

from .helpers import check, ev, groups_are, sides

torch_only, keras_only, jax_only = pytest.mark.torch, pytest.mark.keras, pytest.mark.jax
ALL = [torch_only, keras_only, jax_only]  # the verdicts need every framework side to have run

# documented defaults: torch.optim, keras.optimizers (Keras holds its learning rate as a float32 variable),
# optax (a learning rate is required); "eps_in_sqrt" is where each puts epsilon
F32 = float(np.float32(1e-3))
RMSPROP_DEFAULTS = {"torch": {"lr": 1e-2, "decay": 0.99, "eps": 1e-8, "eps_in_sqrt": False},
                    "keras": {"lr": F32, "decay": 0.9, "eps": 1e-7, "eps_in_sqrt": True},
                    "jax": {"lr": None, "decay": 0.9, "eps": 1e-8, "eps_in_sqrt": True}}
RMSPROP_DEFAULTS["reference"] = RMSPROP_DEFAULTS["torch"]
ADAGRAD_DEFAULTS = {"torch": {"lr": 1e-2, "initial_accumulator_value": 0.0, "eps": 1e-10, "eps_in_sqrt": False},
                    "keras": {"lr": F32, "initial_accumulator_value": 0.1, "eps": 1e-7, "eps_in_sqrt": True},
                    "jax": {"lr": None, "initial_accumulator_value": 0.1, "eps": 1e-7, "eps_in_sqrt": True}}
ADAGRAD_DEFAULTS["reference"] = ADAGRAD_DEFAULTS["torch"]
ADAMW_DEFAULTS = {"torch": {"lr": 1e-3, "weight_decay": 1e-2, "eps": 1e-8},
                  "keras": {"lr": F32, "weight_decay": 0.004, "eps": 1e-7},
                  "jax": {"lr": None, "weight_decay": 1e-4, "eps": 1e-8}}
ADAMW_DEFAULTS["reference"] = ADAMW_DEFAULTS["torch"]

FLOAT64 = 1e-12  # float64 update rules recomputed here: rounding only, through a few steps
# Keras holds some hyperparameters as float32 (the accumulator's initial value, weight_decay, L2's factor):
# relative errors up to 6e-8 (float32's eps/2), well under the factors 2 to 1e4 the probes tell apart
KERAS_F32 = 1e-7


# -- RMSprop ------------------------------------------------------------------------
def rmsprop_steps(lr: float, decay: float, eps: float, eps_in_sqrt: bool) -> np.ndarray:
    """The probe's first steps from zero, from the update rule: v = decay*v + (1 - decay)*g**2,
    step = -lr*g/d with d = sqrt(v + eps) or sqrt(v) + eps."""
    g, v, out = np.array(ao.RMS["grads"]), 0.0, []
    for _ in range(ao.RMS["steps"]):
        v = decay * v + (1 - decay) * g * g
        out.append(-lr * g / (np.sqrt(v + eps) if eps_in_sqrt else np.sqrt(v) + eps))
    return np.array(out)


@pytest.mark.parametrize("side", sides("torch", "keras", "jax"))
def test_rmsprop_epsilon(side):
    pid, e, d = "rmsprop-epsilon", ev("rmsprop-epsilon", side), RMSPROP_DEFAULTS[side]
    check(pid, side, "defaults", e["defaults"], {k: d[k] for k in ("lr", "decay", "eps")}, "documented defaults")
    check(pid, side, "eps_in_sqrt", e["eps_in_sqrt"], d["eps_in_sqrt"], "where epsilon enters")
    lr = ao.RMS["lr"]
    check(pid, side, "steps with the defaults", e["steps_defaults"],
          rmsprop_steps(lr, d["decay"], d["eps"], d["eps_in_sqrt"]), "the default decay and eps", rtol=FLOAT64)
    check(pid, side, "steps with the same settings", e["steps_same_settings"],
          rmsprop_steps(lr, ao.RMS["decay"], ao.RMS["eps"], d["eps_in_sqrt"]), "the eps placement", rtol=FLOAT64)
    # read off a gradient of 100: eps shifts the reading by under 1e-10 relative
    check(pid, side, "decay read", e["decay_read"], d["decay"], "1 - (lr g / step)**2 / g**2", rtol=1e-9)
    # eps (1e-8) recovered as a difference of terms up to 1.1e-8 (outside) or 1e-8 (inside): ~1e-8 relative
    key = "eps_read_in_sqrt" if d["eps_in_sqrt"] else "eps_read_outside_sqrt"
    check(pid, side, key, e[key], ao.RMS["eps"], "the placement's epsilon", rtol=1e-6)
    if side == "reference":
        check(pid, side, "eps_in_sqrt=True", e["steps_same_settings_eps_in_sqrt"],
              rmsprop_steps(lr, ao.RMS["decay"], ao.RMS["eps"], True), "Keras' and optax's form", rtol=FLOAT64)


@pytest.mark.parametrize("_", [pytest.param(None, marks=ALL)])
def test_rmsprop_epsilon_verdict(_):
    groups_are("rmsprop-epsilon", [["torch"], ["keras"], ["jax"]], ["torch"])


def rmsprop_momentum(holds_lr: bool) -> list[float]:
    """The momentum probe's trajectory: b = mu*b + g/d, p -= lr*b (PyTorch) or b = mu*b + lr*g/d, p -= b."""
    m = ao.RMS_MOMENTUM
    p, v, b, out = m["p0"], 0.0, 0.0, []
    for lr in m["lrs"]:
        v = m["decay"] * v + (1 - m["decay"]) * m["grad"] ** 2
        d = math.sqrt(v) + m["eps"]
        if holds_lr:
            b = m["momentum"] * b + lr * m["grad"] / d
            p -= b
        else:
            b = m["momentum"] * b + m["grad"] / d
            p -= lr * b
        out.append(p)
    return out


@pytest.mark.parametrize("side", sides("torch", "keras", "jax"))
def test_rmsprop_momentum_lr(side):
    pid, e = "rmsprop-momentum-lr", ev("rmsprop-momentum-lr", side)
    holds = side in ("keras", "jax")
    check(pid, side, "trajectory", e["trajectory"], rmsprop_momentum(holds),
          "b holds lr" if holds else "p -= lr*b", rtol=FLOAT64)
    if side == "reference":
        check(pid, side, "momentum_holds_lr=True", e["trajectory_momentum_holds_lr"], rmsprop_momentum(True),
              "Keras' and optax's form", rtol=FLOAT64)
    # the forms agree while the learning rate is constant (steps 1-2) and part after it changes
    assert np.allclose(rmsprop_momentum(True)[:2], rmsprop_momentum(False)[:2], rtol=FLOAT64)
    assert not np.allclose(rmsprop_momentum(True)[2:], rmsprop_momentum(False)[2:], rtol=1e-3)


@pytest.mark.parametrize("_", [pytest.param(None, marks=ALL)])
def test_rmsprop_momentum_verdict(_):
    groups_are("rmsprop-momentum-lr", [["torch"], ["keras", "jax"]], ["torch"])


# -- Adagrad ---------------------------------------------------------------------------
def adagrad_steps(lr: float, s0: float, eps: float, eps_in_sqrt: bool) -> np.ndarray:
    """The probe's first steps: s = s0 + sum g**2, step = -lr*g/d, d = sqrt(s + eps) or sqrt(s) + eps."""
    g, out = np.array(ao.ADAGRAD["grads"]), []
    s = np.full_like(g, s0)
    for _ in range(ao.ADAGRAD["steps"]):
        s = s + g * g
        out.append(-lr * g / (np.sqrt(s + eps) if eps_in_sqrt else np.sqrt(s) + eps))
    return np.array(out)


@pytest.mark.parametrize("side", sides("torch", "keras", "jax"))
def test_adagrad_accumulator(side):
    pid, e, d = "adagrad-accumulator", ev("adagrad-accumulator", side), ADAGRAD_DEFAULTS[side]
    check(pid, side, "defaults", e["defaults"], {k: d[k] for k in ("lr", "initial_accumulator_value", "eps")},
          "documented defaults")
    check(pid, side, "eps_in_sqrt", e["eps_in_sqrt"], d["eps_in_sqrt"], "where epsilon enters")
    lr, inside = ao.ADAGRAD["lr"], d["eps_in_sqrt"]
    # Keras builds the accumulator with a float32 Constant initializer: 0.1 as float32
    s0 = float(np.float32(d["initial_accumulator_value"])) if side == "keras" else d["initial_accumulator_value"]
    expected = adagrad_steps(lr, s0, d["eps"], inside)
    check(pid, side, "steps with the defaults", e["steps_defaults"], expected, "the default accumulator and eps",
          rtol=FLOAT64)
    check(pid, side, "accumulator read", e["accumulator_read"], (lr / abs(expected[0][-1])) ** 2 - 1.0,
          "s0 (+ eps inside the root)", rtol=1e-5)  # a difference of O(1) terms: 1e-16 absolute of 2e-10 (torch)
    check(pid, side, "steps with the same settings", e["steps_same_settings"],
          adagrad_steps(lr, ao.ADAGRAD["initial_accumulator_value"], ao.ADAGRAD["eps"], inside), "the eps placement",
          rtol=FLOAT64)
    key = "eps_read_in_sqrt" if inside else "eps_read_outside_sqrt"
    check(pid, side, key, e[key], ao.ADAGRAD["eps"], "the placement's epsilon", rtol=1e-6)
    if side == "reference":
        check(pid, side, "eps_in_sqrt=True", e["steps_same_settings_eps_in_sqrt"],
              adagrad_steps(lr, ao.ADAGRAD["initial_accumulator_value"], ao.ADAGRAD["eps"], True),
              "Keras' and optax's form", rtol=FLOAT64)


@pytest.mark.parametrize("_", [pytest.param(None, marks=ALL)])
def test_adagrad_verdict(_):
    groups_are("adagrad-accumulator", [["torch"], ["keras", "jax"]], ["torch"])


# -- Adam's weight_decay -------------------------------------------------------------------
def adam_l2(wd: float) -> list[float]:
    """PyTorch's Adam with L2 in the gradient (g = wd*p) and a zero loss gradient."""
    a = ao.ADAM_DECAY
    p, m, v, out = a["p0"], 0.0, 0.0, []
    for t in range(1, a["steps"] + 1):
        g = wd * p
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        p -= a["lr"] * (m / (1 - 0.9**t)) / (math.sqrt(v / (1 - 0.999**t)) + 1e-8)
        out.append(p)
    return out


def decoupled(wd: float) -> list[float]:
    """Decoupled decay p -= lr*wd*p with a zero gradient (Adam's own step is then 0)."""
    a = ao.ADAM_DECAY
    return [a["p0"] * (1 - a["lr"] * wd) ** t for t in range(1, a["steps"] + 1)]


@pytest.mark.parametrize("side", sides("torch", "keras"))
def test_adam_weight_decay(side):
    pid, e = "adam-weight-decay", ev("adam-weight-decay", side)
    for wd in ao.ADAM_DECAY["weight_decays"]:
        if side == "torch":
            check(pid, side, f"wd={wd}", e[f"wd={wd}"], adam_l2(wd), "L2 through Adam", rtol=FLOAT64)
        else:  # Keras' weight_decay is float32: up to 6e-8 relative of lr*wd (1e-4 here), ~1e-12 of p
            check(pid, side, f"wd={wd}", e[f"wd={wd}"], decoupled(wd), "p -= lr*wd*p",
                  rtol=1e-11 if side == "keras" else FLOAT64)
    # L2 through Adam's normalisation shrinks by about lr per step whatever wd is
    assert np.allclose(adam_l2(0.01), adam_l2(0.1), rtol=1e-8)


@pytest.mark.parametrize("_", [pytest.param(None, marks=[torch_only, keras_only])])
def test_adam_weight_decay_verdict(_):
    groups_are("adam-weight-decay", [["torch"], ["keras"]], ["keras"])


# -- AdamW's default decay -------------------------------------------------------------------
@pytest.mark.parametrize("side", sides("torch", "keras", "jax"))
def test_adamw_default_decay(side):
    pid, e, d = "adamw-default-decay", ev("adamw-default-decay", side), ADAMW_DEFAULTS[side]
    check(pid, side, "defaults", e["defaults"], d, "documented defaults")
    tol = KERAS_F32 if side == "keras" else FLOAT64
    for lr in ao.ADAMW["lrs"]:
        check(pid, side, f"p1 (lr={lr})", e["p1"][f"lr={lr}"], ao.ADAMW["p0"] * (1 - lr * d["weight_decay"]),
              "p *= 1 - lr*wd", rtol=tol * 1e-3)  # 1 - p1 is at most 1e-3 of p1
        # wd read as (1 - p1)/lr, 1 - p1 down to 1e-7: float64 rounding of p1 leaves up to 1.1e-9 relative
        check(pid, side, f"decay read (lr={lr})", e["weight_decay_read"][f"lr={lr}"], d["weight_decay"],
              "(1 - p1)/lr", rtol=max(tol, 2e-9))


@pytest.mark.parametrize("_", [pytest.param(None, marks=ALL)])
def test_adamw_verdict(_):
    groups_are("adamw-default-decay", [["torch"], ["keras"], ["jax"]], ["torch"])


# -- Keras' l2 regularizer -----------------------------------------------------------------------
@pytest.mark.parametrize("side", sides("torch", "keras", "jax"))
def test_l2_regularizer(side):
    pid, e = "keras-l2-regularizer", ev("keras-l2-regularizer", side)
    lam, w = ao.L2["lam"], np.array(ao.L2["w"])
    coefficient = 2 * lam if side == "keras" else lam
    tol = KERAS_F32 if side == "keras" else FLOAT64
    check(pid, side, "added gradient", e["added_gradient"], (coefficient * w).tolist(),
          "2*lam*w" if side == "keras" else "lam*w", rtol=tol)
    check(pid, side, "coefficient", e["coefficient"], [coefficient] * len(w), "gradient / w", rtol=tol)
    if side == "keras":
        check(pid, side, "penalty", e["penalty"], lam * float(np.sum(w * w)), "lam * sum(w**2)", rtol=KERAS_F32)
        check(pid, side, "L2() default", e["l2_default"], 0.01, "keras.regularizers.L2(l2=0.01)")


@pytest.mark.parametrize("_", [pytest.param(None, marks=ALL)])
def test_l2_regularizer_verdict(_):
    groups_are("keras-l2-regularizer", [["torch", "jax"], ["keras"]], ["torch", "jax"])
