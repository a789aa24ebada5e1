"""Adaptive-optimizer probes: RMSprop's epsilon, defaults and momentum, Adagrad's accumulator and epsilon, weight
decay in Adam and AdamW, and Keras' l2 regularizer; PyTorch, Keras and optax (the ``jax`` side).

Parameters are float64 vectors (shape ``(len(grads),)``) so the update formulas, not float32 rounding, show.
Learning rates are powers of two: Keras keeps its learning rate in a float32 variable, which holds them
exactly, so Keras' float64 trajectories agree with the update rules to rounding. optax runs with the
registry's ``compare`` settings (x64 on), its learning rate injected (``optax.inject_hyperparams``) so it can
change between steps; the optax hyperparameters reported are the ones ``inject_hyperparams`` binds, defaults
included. The reference side uses ``reference.adaptive_optim``.
"""

from __future__ import annotations

import numpy as np

from reference import Adagrad, AdamW, RMSprop, optim

from .base import compare_key, import_keras, import_optax, import_tf, import_torch, probe
from .optimizers import keras_trajectory, reference_trajectory, torch_trajectory


def optax_optimizer(name: str, lr: float, **kwargs):
    """``optax.<name>`` with its learning rate (and ``kwargs``) as injected hyperparameters."""
    _, optax = import_optax()
    return optax.inject_hyperparams(getattr(optax, name))(learning_rate=lr, **kwargs)


def optax_hyperparams(name: str, lr: float) -> dict[str, float]:
    """Every numeric hyperparameter of ``optax.<name>(lr)``, defaults included, as its state binds them."""
    jnp, _ = import_optax()
    state = optax_optimizer(name, lr).init(jnp.zeros(1))
    return {key: float(v) for key, v in state.hyperparams.items()}


def optax_trajectory(tx, p0, grads, lrs) -> list[np.ndarray]:
    """The float64 parameters after each step of the injected-hyperparameter optimizer ``tx`` (from
    :func:`optax_optimizer`), its learning rate set to ``lrs[i]`` before step ``i``."""
    jnp, optax = import_optax()
    p = jnp.asarray(np.array(p0, np.float64))
    state = tx.init(p)
    out = []
    for g, lr in zip(grads, lrs, strict=True):
        state.hyperparams["learning_rate"] = jnp.asarray(lr, p.dtype)
        updates, state = tx.update(jnp.asarray(np.array(g, np.float64)), state, p)
        p = optax.apply_updates(p, updates)
        out.append(np.asarray(p))
    return out


def steps_of(trajectory, p0) -> np.ndarray:
    """``(steps, n)`` parameter changes of a trajectory that started at ``p0``."""
    return np.diff(np.vstack([np.asarray(p0, np.float64)] + list(trajectory)), axis=0)


def eps_readings(step: float, g: float, lr: float, v: float) -> dict[str, float]:
    """The epsilon a step ``-lr * g / d`` implies, where the denominator's accumulator is ``v``, read both
    ways: ``d = sqrt(v + eps)`` (inside) and ``d = sqrt(v) + eps`` (outside)."""
    d = lr * g / abs(step)
    return {"eps_read_in_sqrt": d * d - v, "eps_read_outside_sqrt": d - np.sqrt(v)}


def _steps_close(a, b) -> bool:
    # the epsilon placements and defaults compared here move steps by 1e-3 relative or (much) more; 1e-9 is
    # float64 rounding through a few steps
    return np.allclose(a, b, rtol=1e-9, atol=0.0)


# -- RMSprop: epsilon and defaults ----------------------------------------------
# grads: a tiny gradient (eps dominates the denominator), a middle one, and a large one (eps negligible: the
# decay reads off its first step)
RMS = {"lr": 2.0**-7, "grads": (1e-8, 1e-4, 1e2), "steps": 3, "decay": 0.9, "eps": 1e-8}


def _rms_inputs(lr=None):
    n = RMS["steps"]
    return [0.0] * len(RMS["grads"]), [list(RMS["grads"])] * n, [RMS["lr"] if lr is None else lr] * n


def _rms_evidence(defaults: dict, steps_defaults, steps_same) -> dict:
    """``defaults`` (lr, decay, eps read from the optimizer), the steps with each default (the learning rate
    set to RMS['lr']) and with RMS's decay and eps; the decay read off the large gradient's first default step
    (``1 - (lr * g / step)**2 / g**2``) and the epsilon read off the tiny gradient's first same-settings step."""
    g_big, g_tiny = RMS["grads"][-1], RMS["grads"][0]
    d_big = RMS["lr"] * g_big / abs(steps_defaults[0][-1])
    readings = eps_readings(steps_same[0][0], g_tiny, RMS["lr"], (1 - RMS["decay"]) * g_tiny**2)
    return {"defaults": defaults, "steps_defaults": steps_defaults, "steps_same_settings": steps_same,
            "decay_read": 1.0 - (d_big / g_big) ** 2, **readings,
            "eps_in_sqrt": bool(np.isclose(readings["eps_read_in_sqrt"], RMS["eps"], rtol=1e-6, atol=0.0))}


def _rms_torch():
    torch = import_torch()
    d = torch.optim.RMSprop([torch.zeros(1, requires_grad=True)]).defaults
    p0, grads, lrs = _rms_inputs()
    same = torch_trajectory(torch.optim.RMSprop, {"lr": lrs[0], "alpha": RMS["decay"], "eps": RMS["eps"]},
                             p0, grads, lrs)
    default = torch_trajectory(torch.optim.RMSprop, {"lr": lrs[0]}, p0, grads, lrs)
    return _rms_evidence({"lr": d["lr"], "decay": d["alpha"], "eps": d["eps"]}, steps_of(default, p0),
                         steps_of(same, p0))


def _rms_keras():
    keras = import_keras()
    d = keras.optimizers.RMSprop()
    p0, grads, lrs = _rms_inputs()
    same = keras_trajectory(keras.optimizers.RMSprop(lrs[0], rho=RMS["decay"], epsilon=RMS["eps"]), p0, grads, lrs)
    default = keras_trajectory(keras.optimizers.RMSprop(lrs[0]), p0, grads, lrs)
    return _rms_evidence({"lr": float(d.learning_rate.numpy()), "decay": d.rho, "eps": d.epsilon},
                         steps_of(default, p0), steps_of(same, p0))


def _rms_optax():
    p0, grads, lrs = _rms_inputs()
    h = optax_hyperparams("rmsprop", lrs[0])
    same = optax_trajectory(optax_optimizer("rmsprop", lrs[0], decay=RMS["decay"], eps=RMS["eps"]), p0, grads, lrs)
    default = optax_trajectory(optax_optimizer("rmsprop", lrs[0]), p0, grads, lrs)
    # learning_rate is a required argument of optax.rmsprop: it has no default
    return _rms_evidence({"lr": None, "decay": h["decay"], "eps": h["eps"]}, steps_of(default, p0),
                         steps_of(same, p0))


def _rms_reference():
    p0, grads, lrs = _rms_inputs()
    d = RMSprop({"p": np.zeros(1)})
    same = reference_trajectory(lambda ps: RMSprop(ps, lrs[0], alpha=RMS["decay"], eps=RMS["eps"]), p0, grads, lrs)
    default = reference_trajectory(lambda ps: RMSprop(ps, lrs[0]), p0, grads, lrs)
    keras_form = reference_trajectory(
        lambda ps: RMSprop(ps, lrs[0], alpha=RMS["decay"], eps=RMS["eps"], eps_in_sqrt=True), p0, grads, lrs)
    return {**_rms_evidence({"lr": d.lr, "decay": d.alpha, "eps": d.eps}, steps_of(default, p0), steps_of(same, p0)),
            "steps_same_settings_eps_in_sqrt": steps_of(keras_form, p0)}


probe("rmsprop-epsilon", "RMSprop: epsilon inside or outside the square root, and the defaults", "optimizers",
      f"RMSprop from zero with the constant gradients {RMS['grads']}, lr={RMS['lr']}: the first {RMS['steps']} "
      f"steps with each framework's default decay and epsilon, and with decay={RMS['decay']}, eps={RMS['eps']} "
      "in all; the defaults read from the optimizer objects, the decay read off the largest gradient's first "
      "default step, and the epsilon the smallest gradient's first step implies with eps inside the square "
      "root (d = sqrt(v + eps)) or outside (d = sqrt(v) + eps).",
      "PyTorch divides by sqrt(v) + eps (alpha=0.99, eps=1e-8, lr=1e-2); Keras by sqrt(v + epsilon) (rho=0.9, "
      "epsilon=1e-7, learning_rate=1e-3); optax.rmsprop by sqrt(v + eps) as well (eps_in_sqrt=True, decay=0.9, "
      "eps=1e-8, no default learning rate). With eps inside the root a gradient far below sqrt(eps) (3e-4 for "
      "Keras' 1e-7) gets a step about g/sqrt(eps), while PyTorch still takes a nearly full step lr*g/(sqrt(v) + "
      "eps); equal eps values do not make the optimizers equal. The decay differs too (0.99 averages over ~100 "
      "steps, 0.9 over ~10). To port, pass every hyperparameter explicitly (alpha/rho/decay, eps, lr) and match "
      "the placement: optax.rmsprop(eps_in_sqrt=False) is PyTorch's form, the reference's "
      "RMSprop(eps_in_sqrt=True) Keras' and optax's default.",
      frameworks={"torch": _rms_torch, "keras": _rms_keras, "jax": _rms_optax}, reference=_rms_reference,
      verdict=compare_key(("defaults", "decay"), ("defaults", "eps"), "steps_same_settings",
                          equal=lambda a, b: _steps_close(a, b) if isinstance(a, list) else a == b,
                          reference_equal=lambda a, b: _steps_close(a, b) if isinstance(a, list)
                          else bool(np.isclose(a, b, rtol=1e-12, atol=0.0))))


# -- RMSprop: momentum with a changing learning rate ------------------------------
# eps=0 in every framework, so only where the learning rate enters the momentum buffer differs
RMS_MOMENTUM = {"p0": 1.0, "grad": 1.0, "lrs": (2.0**-3, 2.0**-3, 2.0**-6, 2.0**-6, 2.0**-6), "momentum": 0.9,
                "decay": 0.9, "eps": 0.0}


def _rms_momentum_inputs():
    m = RMS_MOMENTUM
    return [m["p0"]], [[m["grad"]]] * len(m["lrs"]), list(m["lrs"])


def _flat(trajectory) -> list[float]:
    return [float(p[0]) for p in trajectory]


def _rms_momentum_torch():
    torch, m = import_torch(), RMS_MOMENTUM
    p0, grads, lrs = _rms_momentum_inputs()
    return {"trajectory": _flat(torch_trajectory(
        torch.optim.RMSprop, {"lr": lrs[0], "alpha": m["decay"], "eps": m["eps"], "momentum": m["momentum"]},
        p0, grads, lrs))}


def _rms_momentum_keras():
    keras, m = import_keras(), RMS_MOMENTUM
    p0, grads, lrs = _rms_momentum_inputs()
    opt = keras.optimizers.RMSprop(lrs[0], rho=m["decay"], epsilon=m["eps"], momentum=m["momentum"])
    return {"trajectory": _flat(keras_trajectory(opt, p0, grads, lrs))}


def _rms_momentum_optax():
    m = RMS_MOMENTUM
    p0, grads, lrs = _rms_momentum_inputs()
    tx = optax_optimizer("rmsprop", lrs[0], decay=m["decay"], eps=m["eps"], momentum=m["momentum"])
    return {"trajectory": _flat(optax_trajectory(tx, p0, grads, lrs))}


def _rms_momentum_reference():
    m = RMS_MOMENTUM
    p0, grads, lrs = _rms_momentum_inputs()

    def run(holds_lr: bool) -> list[float]:
        return _flat(reference_trajectory(lambda ps: RMSprop(ps, lrs[0], alpha=m["decay"], eps=m["eps"],
                                                              momentum=m["momentum"], momentum_holds_lr=holds_lr),
                                           p0, grads, lrs))

    return {"trajectory": run(False), "trajectory_momentum_holds_lr": run(True)}


probe("rmsprop-momentum-lr", "RMSprop momentum: whether the buffer holds the learning rate", "optimizers",
      f"RMSprop(momentum={RMS_MOMENTUM['momentum']}, decay={RMS_MOMENTUM['decay']}, eps={RMS_MOMENTUM['eps']}), "
      f"p0={RMS_MOMENTUM['p0']}, gradient {RMS_MOMENTUM['grad']} every step, learning rates {RMS_MOMENTUM['lrs']} "
      "(a decay after step 2): the parameter after each step.",
      "PyTorch keeps b = momentum*b + g/d and steps p -= lr*b; Keras and optax (trace after "
      "scale_by_learning_rate) keep b = momentum*b + lr*g/d and step p -= b. With a constant learning rate the "
      "iterates agree; after a learning-rate change PyTorch rescales the whole accumulated velocity at once "
      "while Keras and optax let the old velocity run out at the old rate, so schedules and warm-up give "
      "different curves. The reference's RMSprop(momentum_holds_lr=True) is the Keras/optax form.",
      frameworks={"torch": _rms_momentum_torch, "keras": _rms_momentum_keras, "jax": _rms_momentum_optax},
      reference=_rms_momentum_reference,
      verdict=compare_key("trajectory", equal=_steps_close, reference_equal=_steps_close))


# -- Adagrad: initial accumulator and epsilon -------------------------------------
# the same-settings run starts every accumulator at 0, so the tiny gradient's first step shows the placement
ADAGRAD = {"lr": 2.0**-7, "grads": (1e-8, 1e-4, 1.0), "steps": 3, "initial_accumulator_value": 0.0, "eps": 1e-8}


def _adagrad_inputs():
    n = ADAGRAD["steps"]
    return [0.0] * len(ADAGRAD["grads"]), [list(ADAGRAD["grads"])] * n, [ADAGRAD["lr"]] * n


def _adagrad_evidence(defaults: dict, steps_defaults, steps_same) -> dict:
    """``defaults`` (lr, initial accumulator, eps read from the optimizer), the steps with each default (the
    learning rate set to ADAGRAD['lr']) and with ADAGRAD's accumulator and eps; the accumulator read off
    the unit gradient's first default step (``(lr * g / step)**2 - g**2``: the initial accumulator, plus
    eps where it sits inside the root) and the epsilon read off the tiny gradient's first same-settings step."""
    g_unit, g_tiny = ADAGRAD["grads"][-1], ADAGRAD["grads"][0]
    readings = eps_readings(steps_same[0][0], g_tiny, ADAGRAD["lr"], g_tiny**2)
    return {"defaults": defaults, "steps_defaults": steps_defaults, "steps_same_settings": steps_same,
            "accumulator_read": (ADAGRAD["lr"] * g_unit / abs(steps_defaults[0][-1])) ** 2 - g_unit**2, **readings,
            "eps_in_sqrt": bool(np.isclose(readings["eps_read_in_sqrt"], ADAGRAD["eps"], rtol=1e-6, atol=0.0))}


def _adagrad_torch():
    torch = import_torch()
    d = torch.optim.Adagrad([torch.zeros(1, requires_grad=True)]).defaults
    p0, grads, lrs = _adagrad_inputs()
    same = torch_trajectory(torch.optim.Adagrad, {"lr": lrs[0], "eps": ADAGRAD["eps"], "initial_accumulator_value":
                                                   ADAGRAD["initial_accumulator_value"]}, p0, grads, lrs)
    default = torch_trajectory(torch.optim.Adagrad, {"lr": lrs[0]}, p0, grads, lrs)
    return _adagrad_evidence({"lr": d["lr"], "initial_accumulator_value": d["initial_accumulator_value"],
                              "eps": d["eps"]}, steps_of(default, p0), steps_of(same, p0))


def _adagrad_keras():
    keras = import_keras()
    d = keras.optimizers.Adagrad()
    p0, grads, lrs = _adagrad_inputs()
    same = keras_trajectory(keras.optimizers.Adagrad(lrs[0], epsilon=ADAGRAD["eps"], initial_accumulator_value=
                                                      ADAGRAD["initial_accumulator_value"]), p0, grads, lrs)
    default = keras_trajectory(keras.optimizers.Adagrad(lrs[0]), p0, grads, lrs)
    return _adagrad_evidence({"lr": float(d.learning_rate.numpy()),
                              "initial_accumulator_value": d.initial_accumulator_value, "eps": d.epsilon},
                             steps_of(default, p0), steps_of(same, p0))


def _adagrad_optax():
    p0, grads, lrs = _adagrad_inputs()
    h = optax_hyperparams("adagrad", lrs[0])
    same = optax_trajectory(optax_optimizer("adagrad", lrs[0], eps=ADAGRAD["eps"], initial_accumulator_value=
                                            ADAGRAD["initial_accumulator_value"]), p0, grads, lrs)
    default = optax_trajectory(optax_optimizer("adagrad", lrs[0]), p0, grads, lrs)
    return _adagrad_evidence({"lr": None, "initial_accumulator_value": h["initial_accumulator_value"],
                              "eps": h["eps"]}, steps_of(default, p0), steps_of(same, p0))


def _adagrad_reference():
    p0, grads, lrs = _adagrad_inputs()
    d = Adagrad({"p": np.zeros(1)})

    def run(**kwargs):
        return steps_of(reference_trajectory(lambda ps: Adagrad(ps, lrs[0], **kwargs), p0, grads, lrs), p0)

    same = {"eps": ADAGRAD["eps"], "initial_accumulator_value": ADAGRAD["initial_accumulator_value"]}
    return {**_adagrad_evidence({"lr": d.lr, "initial_accumulator_value": d.initial_accumulator_value,
                                 "eps": d.eps}, run(), run(**same)),
            "steps_same_settings_eps_in_sqrt": run(**same, eps_in_sqrt=True)}


probe("adagrad-accumulator", "Adagrad: the initial accumulator and where epsilon enters", "optimizers",
      f"Adagrad from zero with the constant gradients {ADAGRAD['grads']}, lr={ADAGRAD['lr']}: the first "
      f"{ADAGRAD['steps']} steps with each framework's defaults and with initial_accumulator_value="
      f"{ADAGRAD['initial_accumulator_value']}, eps={ADAGRAD['eps']} in all; the defaults read from the "
      "optimizer objects, the accumulator read off the unit gradient's first default step, and the epsilon "
      "the smallest gradient's first step implies inside or outside the square root.",
      "PyTorch starts the sum of squared gradients at 0 and divides by sqrt(s) + eps (eps=1e-10, lr=1e-2); "
      "Keras and optax start it at 0.1 and divide by sqrt(s + eps) (epsilon 1e-7; Keras' learning_rate 1e-3, "
      "optax none). The 0.1 damps the first steps of every parameter whose squared gradients sum to less "
      "than ~0.1 (a unit gradient's first step is 1/sqrt(1.1) = 0.95 of PyTorch's, a 0.01 gradient's 0.03), "
      "and eps inside the root caps a tiny gradient's step at about g/sqrt(eps). Port with "
      "initial_accumulator_value and eps passed explicitly; the reference's Adagrad(eps_in_sqrt=True, "
      "initial_accumulator_value=0.1, eps=1e-7) is the Keras/optax form.",
      frameworks={"torch": _adagrad_torch, "keras": _adagrad_keras, "jax": _adagrad_optax},
      reference=_adagrad_reference,
      verdict=compare_key(("defaults", "initial_accumulator_value"), ("defaults", "eps"), "steps_same_settings",
                          equal=lambda a, b: _steps_close(a, b) if isinstance(a, list) else a == b,
                          reference_equal=lambda a, b: _steps_close(a, b) if isinstance(a, list)
                          else bool(np.isclose(a, b, rtol=1e-12, atol=0.0))))


# -- Adam's weight_decay: L2 in the gradient vs decoupled -----------------------------
ADAM_DECAY = {"lr": 2.0**-10, "p0": 1.0, "weight_decays": (0.01, 0.1), "steps": 3}


def _adam_decay_inputs():
    n = ADAM_DECAY["steps"]
    return [ADAM_DECAY["p0"]], [[0.0]] * n, [ADAM_DECAY["lr"]] * n


def _adam_decay_torch():
    torch = import_torch()
    p0, grads, lrs = _adam_decay_inputs()
    return {f"wd={wd}": _flat(torch_trajectory(torch.optim.Adam, {"lr": lrs[0], "weight_decay": wd}, p0, grads, lrs))
            for wd in ADAM_DECAY["weight_decays"]}


def _adam_decay_keras():
    keras = import_keras()
    p0, grads, lrs = _adam_decay_inputs()
    return {f"wd={wd}": _flat(keras_trajectory(keras.optimizers.Adam(lrs[0], weight_decay=wd), p0, grads, lrs))
            for wd in ADAM_DECAY["weight_decays"]}


def _adam_decay_reference():
    p0, grads, lrs = _adam_decay_inputs()
    # reference.Adam takes no weight_decay: its decayed Adam is AdamW (decoupled)
    return {"optimizer": "AdamW", **{f"wd={wd}": _flat(reference_trajectory(
        lambda ps, w=wd: AdamW(ps, lrs[0], weight_decay=w), p0, grads, lrs)) for wd in ADAM_DECAY["weight_decays"]}}


probe("adam-weight-decay", "Adam's weight_decay: L2 in the gradient vs decoupled decay", "optimizers",
      f"Adam(lr={ADAM_DECAY['lr']}, weight_decay=wd) for wd in {ADAM_DECAY['weight_decays']}, p0="
      f"{ADAM_DECAY['p0']}, zero loss gradient: the parameter after each of {ADAM_DECAY['steps']} steps "
      "(optax.adam has no weight_decay argument: see adamw-default-decay).",
      "torch.optim.Adam(weight_decay=wd) adds wd*p to the gradient, which Adam then normalises: the decay "
      "step is about lr whatever wd is (the same shrinkage for wd=0.01 and 0.1), and it competes with the "
      "loss gradient inside m and v. Keras' Adam(weight_decay=wd) is decoupled: p -= lr*wd*p before the Adam "
      "step, a pull 100x (wd=0.01) and 10x (wd=0.1) weaker here, that scales with wd. To port PyTorch's "
      "Adam(weight_decay) to Keras, add "
      "kernel_regularizer=l2(wd/2) to every decayed layer (see keras-l2-regularizer); to port Keras' to "
      "PyTorch, use torch.optim.AdamW (the reference's AdamW is that form).",
      frameworks={"torch": _adam_decay_torch, "keras": _adam_decay_keras}, reference=_adam_decay_reference,
      verdict=compare_key(*(f"wd={wd}" for wd in ADAM_DECAY["weight_decays"]), equal=_steps_close,
                          reference_equal=_steps_close))


# -- AdamW's default weight decay ---------------------------------------------------
ADAMW = {"p0": 1.0, "lrs": (2.0**-10, 2.0**-6)}


def _decay_read(p1: float, lr: float) -> float:
    """The decay a zero-gradient step implies: ``p1 = p0 * (1 - lr * wd)``."""
    return (1.0 - p1 / ADAMW["p0"]) / lr


def _adamw_evidence(defaults: dict, first_params: dict[float, float]) -> dict:
    """``defaults`` (lr, weight_decay, eps from the optimizer) and the decay read off the first
    zero-gradient step at each learning rate (``p1 = p0 * (1 - lr * wd)``)."""
    return {"defaults": defaults, "p1": {f"lr={lr}": p for lr, p in first_params.items()},
            "weight_decay_read": {f"lr={lr}": _decay_read(p, lr) for lr, p in first_params.items()}}


def _adamw_torch():
    torch = import_torch()
    d = torch.optim.AdamW([torch.zeros(1, requires_grad=True)]).defaults
    p1 = {lr: _flat(torch_trajectory(torch.optim.AdamW, {"lr": lr}, [ADAMW["p0"]], [[0.0]], [lr]))[0]
          for lr in ADAMW["lrs"]}
    return _adamw_evidence({"lr": d["lr"], "weight_decay": d["weight_decay"], "eps": d["eps"]}, p1)


def _adamw_keras():
    keras = import_keras()
    d = keras.optimizers.AdamW()
    p1 = {lr: _flat(keras_trajectory(keras.optimizers.AdamW(lr), [ADAMW["p0"]], [[0.0]], [lr]))[0]
          for lr in ADAMW["lrs"]}
    return _adamw_evidence({"lr": float(d.learning_rate.numpy()), "weight_decay": d.weight_decay,
                            "eps": d.epsilon}, p1)


def _adamw_optax():
    h = optax_hyperparams("adamw", ADAMW["lrs"][0])
    p1 = {lr: _flat(optax_trajectory(optax_optimizer("adamw", lr), [ADAMW["p0"]], [[0.0]], [lr]))[0]
          for lr in ADAMW["lrs"]}
    return _adamw_evidence({"lr": None, "weight_decay": h["weight_decay"], "eps": h["eps"]}, p1)


def _adamw_reference():
    d = AdamW({"p": np.zeros(1)})
    p1 = {lr: _flat(reference_trajectory(lambda ps, r=lr: AdamW(ps, r), [ADAMW["p0"]], [[0.0]], [lr]))[0]
          for lr in ADAMW["lrs"]}
    return _adamw_evidence({"lr": d.lr, "weight_decay": d.weight_decay, "eps": d.eps}, p1)


def _decays_close(a: dict, b: dict) -> bool:
    # the decay is read as (1 - p1)/lr with 1 - p1 ~ 1e-5..1e-3: float64 rounding leaves ~1e-11 relative; the
    # defaults compared are 2.5x and 40x apart
    return a.keys() == b.keys() and np.allclose(list(a.values()), list(b.values()), rtol=1e-9)


probe("adamw-default-decay", "AdamW: the default weight decay", "optimizers",
      f"AdamW with every default but the learning rate, p0={ADAMW['p0']}, one zero-gradient step at each lr in "
      f"{ADAMW['lrs']}: the defaults read from the optimizer objects and the decay the step implies "
      "(p1 = p0 * (1 - lr * wd)).",
      "All three decouple the decay and multiply it by the learning rate (p *= 1 - lr*wd), but the defaults "
      "differ: torch.optim.AdamW weight_decay=0.01, keras.optimizers.AdamW 0.004, optax.adamw 1e-4 (and Keras' "
      "epsilon is 1e-7 on the uncorrected sqrt(v), see adam-epsilon). A model ported with the defaults "
      "decays 2.5x (Keras) or 100x (optax) less than in PyTorch: always pass weight_decay explicitly.",
      frameworks={"torch": _adamw_torch, "keras": _adamw_keras, "jax": _adamw_optax}, reference=_adamw_reference,
      verdict=compare_key("weight_decay_read", equal=_decays_close, reference_equal=_decays_close))


# -- Keras' l2 regularizer vs weight_decay ---------------------------------------------
L2 = {"lam": 0.01, "w": (0.5, -2.0)}


def _l2_evidence(added) -> dict:
    """The gradient the penalty adds, per weight and divided by the weight (the coefficient of w)."""
    added = np.asarray(added, np.float64)
    return {"w": L2["w"], "added_gradient": added, "coefficient": (added / np.array(L2["w"])).tolist()}


def _l2_torch():
    torch = import_torch()
    # SGD(lr=1, weight_decay=lam) with a zero loss gradient steps by exactly the gradient weight decay adds
    p1 = torch_trajectory(torch.optim.SGD, {"lr": 1.0, "weight_decay": L2["lam"]}, list(L2["w"]),
                           [[0.0] * len(L2["w"])], [1.0])[0]
    return {"api": f"torch.optim.SGD(weight_decay={L2['lam']})", **_l2_evidence(np.array(L2["w"]) - p1)}


def _l2_keras():
    keras, tf = import_keras(), import_tf()
    layer = keras.layers.Dense(1, use_bias=False, kernel_regularizer=keras.regularizers.L2(L2["lam"]),
                               dtype="float64")
    layer.build((None, len(L2["w"])))
    layer.kernel.assign(np.array(L2["w"], np.float64)[:, None])
    with tf.GradientTape() as tape:
        layer(np.ones((1, len(L2["w"]))))
        penalty = tf.add_n(layer.losses)
    grad = tape.gradient(penalty, layer.kernel).numpy()[:, 0]
    return {"api": f"Dense(kernel_regularizer=L2({L2['lam']}))", "penalty": float(penalty),
            "l2_default": keras.regularizers.L2().l2, **_l2_evidence(grad)}


def _l2_optax():
    jnp, optax = import_optax()
    w = jnp.asarray(np.array(L2["w"], np.float64))
    tx = optax.add_decayed_weights(L2["lam"])
    updates, _ = tx.update(jnp.zeros_like(w), tx.init(w), w)
    return {"api": f"optax.add_decayed_weights({L2['lam']})", **_l2_evidence(np.asarray(updates))}


def _l2_reference():
    p = {"p": np.array(L2["w"], np.float64)}
    optim.SGD(p, 1.0, weight_decay=L2["lam"]).step({"p": np.zeros(len(L2["w"]))})
    return {"api": f"SGD(weight_decay={L2['lam']})", **_l2_evidence(np.array(L2["w"]) - p["p"])}


def _coefficients_close(a, b) -> bool:
    # lam vs 2*lam: float64 reads of w*lam/w agree to ~1e-16
    return np.allclose(a, b, rtol=1e-12, atol=0.0)


probe("keras-l2-regularizer", "Keras' l2(lam) regularizer vs weight_decay=lam", "optimizers",
      f"The gradient a penalty of strength lam={L2['lam']} adds to weights w={L2['w']} (zero loss gradient): "
      "PyTorch's SGD weight_decay, Keras' Dense(kernel_regularizer=L2(lam)) (the gradient of layer.losses), "
      "optax.add_decayed_weights(lam); and that gradient divided by w.",
      "Keras' L2(lam) adds lam * sum(w**2) to the loss, so its gradient is 2*lam*w; PyTorch's weight_decay=lam "
      "(and optax.add_decayed_weights(lam)) adds lam*w. A regularizer copied with the same number is twice as "
      "strong: PyTorch's weight_decay=wd (SGD or Adam) is Keras' kernel_regularizer=L2(wd/2) on every "
      "decayed layer (the regularizer goes through the loss gradient, so through momentum and Adam's "
      "normalisation exactly as PyTorch's coupled decay does). Keras' L2() defaults to l2=0.01.",
      frameworks={"torch": _l2_torch, "keras": _l2_keras, "jax": _l2_optax}, reference=_l2_reference,
      verdict=compare_key("coefficient", equal=_coefficients_close, reference_equal=_coefficients_close))
