"""Optimizer probes: the first steps each framework takes from the same gradients.

Parameters are float64 vectors so the update formulas, not float32 rounding, show; the
reference side uses ``reference.optim``.
Keras keeps its learning rate in a float32 variable, so its updates carry ~1e-8 relative noise.
"""

from __future__ import annotations

import numpy as np

from reference import optim

from .base import compare_key, decide, import_keras, import_torch, probe

ADAM = {"grads": (1e-10, 1e-8, 1e-6, 1e-3, 1.0), "lr": 1e-3, "steps": 3, "same_eps": 1e-8}
SGD = {"grad": 1.0, "p0": 1.0, "lrs": (0.1, 0.1, 0.1, 0.01, 0.01), "momentum": 0.9}
DECAY = {"p0": 1.0, "lr": 0.1, "weight_decay": 0.1, "momentum": 0.9, "steps": 3}


def torch_trajectory(opt_cls, kwargs, p0, grads, lrs):
    torch = import_torch()
    p = torch.nn.Parameter(torch.tensor(p0, dtype=torch.float64))
    opt = opt_cls([p], **kwargs)
    out = []
    for g, lr in zip(grads, lrs, strict=True):
        for group in opt.param_groups:
            group["lr"] = lr
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        out.append(p.detach().numpy().copy())
    return out


def keras_trajectory(opt, p0, grads, lrs):
    keras = import_keras()
    v = keras.Variable(np.array(p0, np.float64), dtype="float64")
    out = []
    for g, lr in zip(grads, lrs, strict=True):
        opt.learning_rate.assign(lr)
        opt.apply([np.array(g, np.float64)], [v])
        out.append(np.array(v.numpy()))
    return out


def reference_trajectory(make, p0, grads, lrs):
    params = {"p": np.array(p0, np.float64)}
    opt = make(params)
    out = []
    for g, lr in zip(grads, lrs, strict=True):
        opt.lr = lr
        opt.step({"p": np.array(g, np.float64)})
        out.append(params["p"].copy())
    return out


# -- Adam's epsilon ------------------------------------------------------------
def _adam_inputs():
    g = list(ADAM["grads"])
    return [0.0] * len(g), [g] * ADAM["steps"], [ADAM["lr"]] * ADAM["steps"]


def _eps_effective(first_step: np.ndarray) -> list[float]:
    """The epsilon a first step ``-lr * g / (|g| + eps_eff)`` implies, per gradient component."""
    g = np.array(ADAM["grads"])
    return (g * (ADAM["lr"] / np.abs(first_step) - 1.0)).tolist()


def _adam_evidence(trajectory, eps_default) -> dict:
    steps = np.diff(np.vstack([np.zeros(len(ADAM["grads"]))] + trajectory), axis=0)
    return {"grads": ADAM["grads"], "eps_default": eps_default, "steps": steps,
            "eps_effective_step1": _eps_effective(steps[0])[1:3]}


def _adam_torch():
    torch = import_torch()
    p0, grads, lrs = _adam_inputs()
    default = torch.optim.Adam([torch.zeros(1, requires_grad=True)]).defaults["eps"]
    evidence = _adam_evidence(torch_trajectory(torch.optim.Adam, {"lr": ADAM["lr"]}, p0, grads, lrs), default)
    traj = torch_trajectory(torch.optim.Adam, {"lr": ADAM["lr"], "eps": ADAM["same_eps"]}, p0, grads, lrs)
    evidence["eps_effective_step1_same_eps"] = _eps_effective(traj[0])[1:3]
    return evidence


def _adam_keras():
    keras = import_keras()
    p0, grads, lrs = _adam_inputs()
    default = keras.optimizers.Adam().epsilon
    evidence = _adam_evidence(keras_trajectory(keras.optimizers.Adam(ADAM["lr"]), p0, grads, lrs), default)
    traj = keras_trajectory(keras.optimizers.Adam(ADAM["lr"], epsilon=ADAM["same_eps"]), p0, grads, lrs)
    evidence["eps_effective_step1_same_eps"] = _eps_effective(traj[0])[1:3]
    return evidence


def _adam_reference():
    p0, grads, lrs = _adam_inputs()
    default = optim.Adam({"p": np.zeros(1)}).eps
    evidence = _adam_evidence(reference_trajectory(lambda ps: optim.Adam(ps, lr=ADAM["lr"]), p0, grads, lrs), default)
    traj = reference_trajectory(lambda ps: optim.Adam(ps, lr=ADAM["lr"], eps=ADAM["same_eps"]), p0, grads, lrs)
    evidence["eps_effective_step1_same_eps"] = _eps_effective(traj[0])[1:3]
    return evidence


probe("adam-epsilon", "Adam: the default epsilon and where it enters the update", "optimizers",
      f"Adam, lr={ADAM['lr']}, from zero with the constant gradients {ADAM['grads']}: the first "
      f"{ADAM['steps']} steps, and the epsilon the first step implies (eps_eff in "
      f"-lr * g / (|g| + eps_eff), read for g = 1e-8 and 1e-6), with each default and with "
      f"eps={ADAM['same_eps']} in both.",
      "PyTorch adds eps to the bias-corrected sqrt(v_hat) (default 1e-8); Keras/TensorFlow add it to the "
      "uncorrected sqrt(v) and correct the learning rate instead (default 1e-7), so in the first steps its "
      "epsilon acts like eps/sqrt(1 - beta2^t): about 3.2e-6 at step 1. Gradients below ~1e-5 (tiny "
      "losses, heavily regularised layers) take visibly smaller steps in Keras. Equal eps values do not "
      "make the optimizers equal; the reference's Adam(eps_hat=True) reproduces Keras.",
      frameworks={"torch": _adam_torch, "keras": _adam_keras}, reference=_adam_reference,
      verdict=compare_key(
          # the two epsilon placements give steps at least 2x apart here; 1e-3 absorbs Keras' float32 beta_2
          "steps", equal=lambda a, b: np.allclose(a, b, rtol=1e-3, atol=0.0),
          reference_equal=lambda a, b: np.allclose(a, b, rtol=1e-6, atol=0.0)))


# -- SGD momentum --------------------------------------------------------------
def _sgd_inputs():
    n = len(SGD["lrs"])
    return [SGD["p0"]], [[SGD["grad"]]] * n, list(SGD["lrs"])


def _sgd_close(a, b) -> bool:
    return np.allclose(a, b, rtol=1e-6, atol=0.0)


def _sgd_torch():
    torch = import_torch()
    p0, grads, lrs = _sgd_inputs()
    return {nesterov: [float(p[0]) for p in torch_trajectory(
        torch.optim.SGD, {"lr": lrs[0], "momentum": SGD["momentum"], "nesterov": nesterov == "nesterov"},
        p0, grads, lrs)] for nesterov in ("heavy_ball", "nesterov")}


def _sgd_keras():
    keras = import_keras()
    p0, grads, lrs = _sgd_inputs()
    return {nesterov: [float(p[0]) for p in keras_trajectory(
        keras.optimizers.SGD(lrs[0], momentum=SGD["momentum"], nesterov=nesterov == "nesterov"), p0, grads, lrs)]
        for nesterov in ("heavy_ball", "nesterov")}


def _sgd_reference():
    p0, grads, lrs = _sgd_inputs()
    return {nesterov: [float(p[0]) for p in reference_trajectory(
        lambda ps, n=nesterov: optim.SGD(ps, lrs[0], momentum=SGD["momentum"], nesterov=n == "nesterov"),
        p0, grads, lrs)] for nesterov in ("heavy_ball", "nesterov")}


probe("sgd-momentum", "SGD momentum: where the learning rate sits", "optimizers",
      f"SGD, momentum {SGD['momentum']}, p0={SGD['p0']}, gradient {SGD['grad']} every step, learning rates "
      f"{SGD['lrs']} (a decay after step 3): the parameter after each step, plain and Nesterov.",
      "PyTorch keeps b = mu*b + g and steps p -= lr*b; Keras keeps m = mu*m - lr*g and steps p += m. With a "
      "constant learning rate the iterates are identical; when the learning rate changes (schedules, "
      "warm-up, ReduceLROnPlateau) PyTorch rescales the whole accumulated velocity at once while Keras "
      "lets the old velocity decay at the old rate. Expect training curves to part after every lr change.",
      frameworks={"torch": _sgd_torch, "keras": _sgd_keras}, reference=_sgd_reference,
      verdict=compare_key("heavy_ball", "nesterov", equal=_sgd_close, reference_equal=_sgd_close))


# -- SGD weight decay ----------------------------------------------------------
def _decay_inputs():
    n = DECAY["steps"]
    return [DECAY["p0"]], [[0.0]] * n, [DECAY["lr"]] * n


def _decay_torch():
    torch = import_torch()
    p0, grads, lrs = _decay_inputs()
    traj = torch_trajectory(torch.optim.SGD, {"lr": lrs[0], "momentum": DECAY["momentum"],
                                               "weight_decay": DECAY["weight_decay"]}, p0, grads, lrs)
    # _rtol: how closely a float64 trajectory can match this one (float64 throughout: rounding only)
    return {"trajectory": [float(p[0]) for p in traj], "_rtol": 1e-9}


def _decay_keras():
    keras = import_keras()
    p0, grads, lrs = _decay_inputs()
    opt = keras.optimizers.SGD(lrs[0], momentum=DECAY["momentum"], weight_decay=DECAY["weight_decay"])
    # _rtol: the learning rate is a float32 variable, so the trajectory carries ~1e-8 relative noise
    return {"trajectory": [float(p[0]) for p in keras_trajectory(opt, p0, grads, lrs)], "_rtol": 1e-6}


def _decay_reference():
    p0, grads, lrs = _decay_inputs()
    traj = reference_trajectory(lambda ps: optim.SGD(ps, lrs[0], momentum=DECAY["momentum"],
                                                      weight_decay=DECAY["weight_decay"]), p0, grads, lrs)
    return {"trajectory": [float(p[0]) for p in traj]}


@probe("sgd-weight-decay", "SGD weight_decay: L2 in the gradient vs decoupled decay", "optimizers",
       f"SGD(lr={DECAY['lr']}, momentum={DECAY['momentum']}, weight_decay={DECAY['weight_decay']}), "
       f"p0={DECAY['p0']}, zero loss gradient: the parameter after each of {DECAY['steps']} steps.",
       "PyTorch's weight_decay adds wd*p to the gradient, so the decay goes through momentum and "
       "accumulates; Keras' weight_decay shrinks the weights directly (p -= lr*wd*p) outside momentum. "
       "The same number means a much weaker decay in Keras when momentum is used; to port, add an L2 "
       "term to the loss in Keras (kernel_regularizer with l2 = wd/2) or use decoupled decay on both sides.",
       frameworks={"torch": _decay_torch, "keras": _decay_keras}, reference=_decay_reference)
def _decay_verdict(evidence, reference):
    """Frameworks agree to 1e-6; the reference matches a framework to the ``_rtol`` its side declares
    (float64 rounding, 1e-9, when it declares none)."""
    def same(a, b):
        return np.allclose(a["trajectory"], b["trajectory"], rtol=1e-6)

    def reference_same(r, e):
        return np.allclose(r["trajectory"], e["trajectory"], rtol=e.get("_rtol", 1e-9))

    return decide(evidence, reference, same, reference_same)
