"""RMSprop, Adagrad, AdamW and gradient clipping against torch.optim / torch.nn.utils, and against Keras' optimizers
(``RMSprop``, ``Adagrad``, ``AdamW``, ``clipnorm`` / ``global_clipnorm`` / ``clipvalue``, on TensorFlow) with the
reference's Keras switches: 300 steps in float64 from the same parameters and gradient sequence, the parameters
compared after every step (to rounding: the two evaluate the same formulas in a different operation order: a few
ulps per step, normwise, which 300 steps leave below 1e-13)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import reference as ref
from tests.frameworks import import_or_skip
from tests.torch_optim import run_torch

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


ADAPTIVE = [pytest.param(name, config, seed, id=f"{name}-{key}")
            for seed, (name, configs) in enumerate((("RMSprop", RMSPROP), ("Adagrad", ADAGRAD), ("AdamW", ADAMW)), 1)
            for key, config in configs.items()]


@pytest.mark.torch
@pytest.mark.parametrize(("name", "config", "seed"), ADAPTIVE)
def test_adaptive_optimizer_matches_torch(name, config, seed):
    """``reference.<name>`` and ``torch.optim.<name>`` (the same names and options) over the same trajectory."""
    params, grads = problem(seed)
    ours = run_reference(lambda p: getattr(ref, name)(p, **config), params, grads)
    assert_close(ours, run_torch(lambda torch, ps: getattr(torch.optim, name)(ps, **config), params, grads), name)


@pytest.mark.torch
@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.0])
def test_sgd_with_clip_grad_norm_matches_torch(norm_type):
    params, grads = problem(4)
    ours = run_reference(lambda p: ref.SGD(p, lr=0.01, momentum=0.9), params, grads,
                         clip=lambda g: ref.clip_grad_norm(g, 0.5, norm_type))
    theirs = run_torch(lambda torch, ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9), params, grads,
                       clip=lambda torch, ps: torch.nn.utils.clip_grad_norm_(ps, 0.5, norm_type))
    assert_close(ours, theirs, f"clip_grad_norm({norm_type})")


@pytest.mark.torch
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


@pytest.mark.torch
def test_adam_with_clip_grad_value_matches_torch():
    params, grads = problem(6)
    ours = run_reference(lambda p: ref.Adam(p), params, grads, clip=lambda g: ref.clip_grad_value(g, 0.05))
    theirs = run_torch(lambda torch, ps: torch.optim.Adam(ps), params, grads,
                       clip=lambda torch, ps: torch.nn.utils.clip_grad_value_(ps, 0.05))
    assert_close(ours, theirs, "clip_grad_value")


# -- Keras (TensorFlow, in this process) -----------------------------------------------------------------------
def run_keras(name: str, params, grads, **options) -> list[dict]:
    """Keras' optimizer of the reference optimizer ``name`` (:func:`comparisons.frameworks.keras3.trainer.
    keras_optimizer`, reference keyword ``options`` and Keras' clipping) stepped once per entry of ``grads`` from
    ``params``, in float64. Returns the parameters after every step."""
    import keras
    import tensorflow as tf

    from comparisons.frameworks.keras3.trainer import keras_optimizer

    variables = {k: keras.Variable(v.copy(), dtype="float64") for k, v in params.items()}
    opt = keras_optimizer(name, "float64", **options)
    opt.build(list(variables.values()))
    step = tf.function(lambda gs: opt.apply_gradients(zip(gs, variables.values(), strict=True)))  # one trace
    history = []
    for g in grads:
        step([tf.constant(g[k]) for k in variables])
        history.append({k: np.array(v.numpy()) for k, v in variables.items()})
    return history


def without_weight_decay(configs: dict) -> dict:
    """The configurations Keras expresses: the reference's (PyTorch's) L2 ``weight_decay`` has no Keras keyword
    (Keras' ``weight_decay`` is decoupled)."""
    return {name: config for name, config in configs.items() if "weight_decay" not in config}


KERAS_RMSPROP = {**without_weight_decay(RMSPROP), "all-but-decay": {"lr": 3e-3, "alpha": 0.9, "eps": 1e-6,
                                                                     "momentum": 0.5, "centered": True}}
KERAS_ADAGRAD = {**without_weight_decay({k: v for k, v in ADAGRAD.items() if "lr_decay" not in v}),
                 "keras-defaults": {"lr": 1e-3, "initial_accumulator_value": 0.1, "eps": 1e-7},
                 "all-but-decay": {"lr": 0.05, "initial_accumulator_value": 0.1, "eps": 1e-8}}


@pytest.mark.keras
@pytest.mark.parametrize("config", KERAS_RMSPROP.values(), ids=KERAS_RMSPROP.keys())
def test_rmsprop_matches_keras(keras_framework, config):
    """Keras' RMSprop: epsilon inside the square root, the momentum buffer holding the learning rate."""
    params, grads = problem(1)
    ours = run_reference(lambda p: ref.RMSprop(p, **config, eps_in_sqrt=True, momentum_holds_lr=True), params, grads)
    assert_close(ours, run_keras("rmsprop", params, grads, **config), "RMSprop vs Keras")


@pytest.mark.keras
@pytest.mark.parametrize("config", KERAS_ADAGRAD.values(), ids=KERAS_ADAGRAD.keys())
def test_adagrad_matches_keras(keras_framework, config):
    """Keras' Adagrad: epsilon inside the square root."""
    params, grads = problem(2)
    ours = run_reference(lambda p: ref.Adagrad(p, **config, eps_in_sqrt=True), params, grads)
    assert_close(ours, run_keras("adagrad", params, grads, **config), "Adagrad vs Keras")


@pytest.mark.keras
@pytest.mark.parametrize("config", ADAMW.values(), ids=ADAMW.keys())
def test_adamw_matches_keras(keras_framework, config):
    """Keras' AdamW: the decay ``p -= p * weight_decay * lr`` first, then Adam with epsilon before the bias
    correction (``eps_hat``)."""
    params, grads = problem(3)
    ours = run_reference(lambda p: ref.AdamW(p, **config, eps_hat=True), params, grads)
    assert_close(ours, run_keras("adamw", params, grads, **config), "AdamW vs Keras")


@pytest.mark.keras
@pytest.mark.parametrize("per_array", [False, True], ids=["global_clipnorm", "clipnorm"])
def test_sgd_with_norm_clipping_matches_keras(keras_framework, per_array):
    """Keras' ``global_clipnorm`` (every array by the global norm) and ``clipnorm`` (each array by its own norm):
    the ratio ``c / max(norm, c)`` without PyTorch's added 1e-6 (``norm_eps=0``)."""
    params, grads = problem(4)
    ours = run_reference(lambda p: ref.SGD(p, lr=0.01, momentum=0.9), params, grads,
                         clip=lambda g: ref.clip_grad_norm(g, 0.5, per_array=per_array, norm_eps=0.0))
    clip = {"clipnorm" if per_array else "global_clipnorm": 0.5}
    assert_close(ours, run_keras("sgd", params, grads, lr=0.01, momentum=0.9, **clip), f"{clip} vs Keras")


@pytest.mark.keras
def test_adam_with_clipvalue_matches_keras(keras_framework):
    params, grads = problem(6)
    ours = run_reference(lambda p: ref.Adam(p, eps_hat=True), params, grads,
                         clip=lambda g: ref.clip_grad_value(g, 0.05))
    assert_close(ours, run_keras("adam", params, grads, clipvalue=0.05), "clipvalue vs Keras")


@pytest.mark.keras
def test_keras_clipping_differs_from_torchs_without_the_switches(keras_framework):
    """The switches matter: PyTorch's clipping (global, ``+ 1e-6``) is not Keras' ``clipnorm`` over 300 steps."""
    params, grads = problem(4)
    torch_form = run_reference(lambda p: ref.SGD(p, lr=0.01, momentum=0.9), params, grads,
                               clip=lambda g: ref.clip_grad_norm(g, 0.5))
    with pytest.raises(AssertionError, match="rel_error"):
        assert_close(torch_form, run_keras("sgd", params, grads, lr=0.01, momentum=0.9, clipnorm=0.5), "clipnorm")


@pytest.mark.keras
@pytest.mark.parametrize("name, option", [("rmsprop", "weight_decay"), ("adagrad", "lr_decay"),
                                          ("adam", "weight_decay"), ("sgd", "nesterov")])
def test_keras_optimizer_refuses_what_keras_has_no_keyword_for(keras_framework, name, option):
    from comparisons.frameworks.keras3.trainer import keras_optimizer

    with pytest.raises(ValueError, match=f"has no equivalent of the reference's {option}="):
        keras_optimizer(name, "float64", **{option: 0.1})
