"""SGD and Adam: the textbook formulas, in-place updates, and parity with torch.optim and keras.optimizers.

Parity runs identical initial parameters and gradient sequences through both and compares
the parameters after every step in float64. Conventions the tests pin down:
- PyTorch SGD momentum ``b = mu*b + g; p -= lr*b``; Keras ``m = mu*m - lr*g; p += m``: equal
  iterates for constant lr, up to rounding. Keras' ``weight_decay`` is decoupled (not L2), so
  Keras parity runs without it.
- Keras' Adam adds epsilon before the bias correction (``eps_hat=True`` here) and defaults to
  eps=1e-7 (PyTorch 1e-8); Keras turns Python-float betas into float32 tensors, so the
  Keras side gets float64 numpy betas and is built with ``floatx`` float64.
"""

from __future__ import annotations

import contextlib
import copy
import pickle

import numpy as np
import pytest

import reference as ref
from reference.optim import SGD, Adam
from tests.frameworks import import_or_skip
from tests.torch_optim import run_torch

SHAPES = {"0.weight": (3, 2, 3, 3), "0.bias": (3,), "4.weight": (12, 5), "4.bias": (5,)}
STEPS = 8
# Both sides evaluate the same formula in a different operation order; a few ulps per step.
RTOL = 1e-12


def make_problem(seed: int, steps: int = STEPS):
    rng = np.random.default_rng(seed)
    params = {k: rng.standard_normal(s) for k, s in SHAPES.items()}
    grads = [{k: rng.standard_normal(s) * 10.0 ** rng.integers(-4, 1) for k, s in SHAPES.items()}
             for _ in range(steps)]
    return params, grads


def run_reference(make, params, grads):
    current = {k: v.copy() for k, v in params.items()}
    opt = make(current)
    history = []
    for g in grads:
        opt.step(g)
        history.append({k: v.copy() for k, v in current.items()})
    return history


def assert_close(history, other, what):
    for t, (a, b) in enumerate(zip(history, other, strict=True)):
        for key in a:
            err = ref.rel_error(a[key], b[key])
            assert err < RTOL, f"{what}: step {t + 1}, {key}: rel_error {err:.3e} >= {RTOL}"


SGD_CONFIGS = {
    "plain": {"lr": 0.1},
    "momentum": {"lr": 0.05, "momentum": 0.9},
    "nesterov": {"lr": 0.05, "momentum": 0.8, "nesterov": True},
    "weight-decay": {"lr": 0.1, "momentum": 0.5, "weight_decay": 0.01},
}
ADAM_CONFIGS = {
    "default": {"lr": 1e-3},
    "betas": {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6},
}


# -- independent formulas ---------------------------------------------------------
def textbook_adam(params, grads, lr, b1, b2, eps, eps_hat):
    """Kingma & Ba, per parameter, written from the paper (Algorithm 1 / section 2)."""
    p = {k: v.copy() for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(x) for k, x in p.items()}
    history = []
    for t, g in enumerate(grads, start=1):
        for k in p:
            m[k] = b1 * m[k] + (1 - b1) * g[k]
            v[k] = b2 * v[k] + (1 - b2) * g[k] ** 2
            if eps_hat:
                p[k] = p[k] - lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m[k] / (np.sqrt(v[k]) + eps)
            else:
                p[k] = p[k] - lr * (m[k] / (1 - b1**t)) / (np.sqrt(v[k] / (1 - b2**t)) + eps)
        history.append({k: x.copy() for k, x in p.items()})
    return history


@pytest.mark.parametrize("eps_hat", [False, True], ids=["torch-eps", "keras-eps"])
def test_adam_matches_textbook(eps_hat):
    params, grads = make_problem(1)
    got = run_reference(lambda p: Adam(p, lr=0.01, betas=(0.85, 0.995), eps=1e-7, eps_hat=eps_hat), params, grads)
    assert_close(got, textbook_adam(params, grads, 0.01, 0.85, 0.995, 1e-7, eps_hat), "Adam vs textbook")


def test_sgd_momentum_matches_textbook():
    params, grads = make_problem(2)
    got = run_reference(lambda p: SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01), params, grads)
    p, b = {k: v.copy() for k, v in params.items()}, {}
    for t, g in enumerate(grads):
        for k in p:
            d = g[k] + 0.01 * p[k]
            b[k] = d if t == 0 else 0.9 * b[k] + d
            p[k] = p[k] - 0.1 * b[k]
        for k in p:
            err = ref.rel_error(got[t][k], p[k])
            assert err < RTOL, f"SGD step {t + 1} {k}: rel_error {err:.3e}"


def test_adam_eps_placement_differs_early():
    """The two epsilon conventions are different optimizers: with small gradients they disagree."""
    params, grads = make_problem(3, steps=1)
    grads = [{k: g * 1e-6 for k, g in grads[0].items()}]
    a = run_reference(lambda p: Adam(p, eps_hat=False), params, grads)[0]["4.weight"]
    b = run_reference(lambda p: Adam(p, eps_hat=True), params, grads)[0]["4.weight"]
    assert ref.rel_error(a - params["4.weight"], b - params["4.weight"]) > 1e-3


# -- in place, errors ---------------------------------------------------------------
def test_updates_sequential_parameters_in_place():
    rng = np.random.default_rng(4)
    model = ref.Sequential([ref.Flatten(), ref.Linear(12, 3, rng=rng)])
    weight = model.params["1.weight"]
    before = weight.copy()
    opt = Adam(model.params, lr=0.1)
    scores = model.forward(rng.standard_normal((2, 3, 2, 2)))
    _, dscores = ref.softmax_cross_entropy(scores, np.array([0, 2]))
    model.backward(dscores)
    opt.step(model.grads)
    assert model.params["1.weight"] is weight, "Adam.step replaced the parameter array instead of updating it"
    assert model.layers[1].params["weight"] is weight
    assert not np.allclose(weight, before)


def test_float32_parameters_stay_float32():
    params = {"w": np.ones(3, dtype=np.float32)}
    for opt in (Adam(params), SGD(params, lr=0.1, momentum=0.9)):
        opt.step({"w": np.full(3, 0.5, dtype=np.float32)})
        assert params["w"].dtype == np.float32


@pytest.mark.parametrize("make", [lambda p: Adam(p), lambda p: SGD(p, lr=0.1)], ids=["adam", "sgd"])
def test_step_errors_name_the_key(make):
    opt = make({"a.weight": np.zeros((2, 3))})
    with pytest.raises(KeyError, match="a.weight"):
        opt.step({})
    with pytest.raises(ValueError, match=r"grads\['a.weight'\] must have shape \(2, 3\), got shape \(3, 2\)"):
        opt.step({"a.weight": np.zeros((3, 2))})


def test_constructor_errors():
    for lr in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match=rf"SGD: lr must be a finite number > 0, got {lr!r}"):
            SGD({"w": np.zeros(2)}, lr=lr)
    with pytest.raises(ValueError, match="nesterov=True needs momentum"):
        SGD({"w": np.zeros(2)}, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"Adam: betas\[0\] must be a finite number in \[0, 1\), got 1.0"):
        Adam({"w": np.zeros(2)}, betas=(1.0, 0.999))
    with pytest.raises(TypeError, match=r"params\['w'\] must be a float ndarray"):
        Adam({"w": [0.0, 1.0]})
    with pytest.raises(ValueError, match="non-empty mapping"):
        Adam({})


W = {"w": np.zeros(2)}
BAD_ARGUMENTS = [
    # (id, call, exception, message)
    ("sgd-lr-str", lambda: SGD(W, lr="0.1"), TypeError, r"SGD: lr must be a real number, got '0.1' \(str\)"),
    ("sgd-lr-none", lambda: SGD(W, lr=None), TypeError, r"SGD: lr must be a real number, got None \(NoneType\)"),
    ("adam-lr-bool", lambda: Adam(W, lr=True), TypeError, r"Adam: lr must be a real number, got True \(bool\)"),
    ("sgd-momentum-none", lambda: SGD(W, lr=0.1, momentum=None), TypeError,
     r"SGD: momentum must be a real number, got None \(NoneType\)"),
    ("sgd-momentum-str", lambda: SGD(W, lr=0.1, momentum="0.9"), TypeError,
     r"SGD: momentum must be a real number, got '0.9' \(str\)"),
    ("sgd-momentum-nan", lambda: SGD(W, lr=0.1, momentum=float("nan")), ValueError,
     r"SGD: momentum must be a finite number >= 0, got nan \(float\)"),
    ("sgd-momentum-inf", lambda: SGD(W, lr=0.1, momentum=np.inf), ValueError, r"momentum must be a finite number >= 0"),
    ("sgd-momentum-negative", lambda: SGD(W, lr=0.1, momentum=-0.5), ValueError,
     r"SGD: momentum must be a finite number >= 0, got -0.5 \(float\)"),
    ("sgd-nesterov-str", lambda: SGD(W, lr=0.1, momentum=0.9, nesterov="False"), TypeError,
     r"SGD: nesterov must be a bool, got 'False' \(str\)"),
    ("sgd-nesterov-int", lambda: SGD(W, lr=0.1, momentum=0.9, nesterov=1), TypeError,
     r"SGD: nesterov must be a bool, got 1 \(int\)"),
    ("sgd-weight-decay-nan", lambda: SGD(W, lr=0.1, weight_decay=float("nan")), ValueError,
     r"SGD: weight_decay must be a finite number >= 0, got nan"),
    ("sgd-weight-decay-str", lambda: SGD(W, lr=0.1, weight_decay="0"), TypeError,
     r"SGD: weight_decay must be a real number, got '0' \(str\)"),
    ("sgd-weight-decay-negative", lambda: SGD(W, lr=0.1, weight_decay=-1), ValueError,
     r"SGD: weight_decay must be a finite number >= 0, got -1 \(int\)"),
    ("adam-betas-scalar", lambda: Adam(W, betas=0), TypeError, r"Adam: betas must be a pair of real numbers, got 0"),
    ("adam-betas-one", lambda: Adam(W, betas=(0.9,)), ValueError,
     r"Adam: betas must be a pair of real numbers, got \(0.9,\) \(tuple\)"),
    ("adam-betas-nan", lambda: Adam(W, betas=(0.9, float("nan"))), ValueError,
     r"Adam: betas\[1\] must be a finite number in \[0, 1\), got nan"),
    ("adam-betas-str", lambda: Adam(W, betas=("0.9", 0.999)), TypeError,
     r"Adam: betas\[0\] must be a real number, got '0.9' \(str\)"),
    ("adam-eps-none", lambda: Adam(W, eps=None), TypeError, r"Adam: eps must be a real number, got None"),
    ("adam-eps-nan", lambda: Adam(W, eps=float("nan")), ValueError, r"Adam: eps must be a finite number >= 0, got nan"),
    ("adam-eps-inf", lambda: Adam(W, eps=float("inf")), ValueError, r"Adam: eps must be a finite number >= 0, got inf"),
    ("adam-eps-negative", lambda: Adam(W, eps=-1e-8), ValueError,
     r"Adam: eps must be a finite number >= 0, got -1e-08"),
    ("adam-eps-hat-str", lambda: Adam(W, eps_hat="False"), TypeError,
     r"Adam: eps_hat must be a bool, got 'False' \(str\)"),
    ("adam-eps-hat-none", lambda: Adam(W, eps_hat=None), TypeError, r"Adam: eps_hat must be a bool, got None"),
    ("params-list", lambda: Adam([np.zeros(2)]), TypeError,
     r"Adam: params must be a non-empty mapping name -> array, got list"),
    ("params-float16", lambda: SGD({"w": np.zeros(2, np.float16)}, lr=0.1), TypeError,
     r"SGD: params\['w'\] must be a float ndarray \(float32 or float64, updated in place\), got ndarray float16"),
    ("params-read-only", lambda: Adam({"w": np.broadcast_to(np.zeros(1), (3,))}), ValueError,
     r"Adam: params\['w'\] must be a writeable array \(updated in place\), got a read-only array"),
]


@pytest.mark.parametrize("call,exc,message", [b[1:] for b in BAD_ARGUMENTS], ids=[b[0] for b in BAD_ARGUMENTS])
def test_every_constructor_argument_is_checked(call, exc, message):
    with pytest.raises(exc, match=message):
        call()


def test_numpy_scalars_and_0d_arrays_are_accepted_as_numbers():
    adam = Adam(W, lr=np.asarray(0.01), betas=(np.float32(0.5), np.asarray(0.75)), eps=np.float32(1e-5))
    sgd = SGD(W, lr=np.float32(0.5), momentum=np.asarray(0.5), nesterov=np.True_, weight_decay=np.int64(0))
    assert (adam.lr, adam.beta1, adam.beta2, adam.eps) == (0.01, 0.5, 0.75, float(np.float32(1e-5)))
    assert (sgd.lr, sgd.momentum, sgd.nesterov, sgd.weight_decay) == (0.5, 0.5, True, 0.0)
    assert all(type(v) is float for v in (adam.lr, adam.beta1, adam.beta2, adam.eps, sgd.lr, sgd.momentum))


MAKERS = {"sgd": lambda p: SGD(p, lr=0.1, momentum=0.9), "adam": lambda p: Adam(p, lr=0.1)}


@pytest.mark.parametrize("make", MAKERS.values(), ids=MAKERS.keys())
@pytest.mark.parametrize("grads,exc,message", [
    ([np.zeros((2, 3)), np.zeros(3)], TypeError, r"\.step: grads must be a mapping name -> array, got list"),
    ({"a.weight": None, "a.bias": np.zeros(3)}, TypeError,
     r"\.step: grads\['a.weight'\] must be a float32 or float64 array of shape \(2, 3\), got None \(NoneType\)"),
    ({"a.weight": np.zeros((2, 3)), "a.bias": [0.0, 0.0]}, ValueError,
     r"\.step: grads\['a.bias'\] must have shape \(3,\), got shape \(2,\)"),
    ({"a.weight": np.zeros((2, 3)), "a.bias": np.zeros(3, dtype=int)}, TypeError,
     r"\.step: grads\['a.bias'\] must be a float32 or float64 array of shape \(3,\), got dtype int64"),
], ids=["list", "none", "list-shape", "int"])
def test_step_refuses_bad_gradients_and_changes_nothing(make, grads, exc, message):
    """The gradients are checked before anything moves: the parameters, the state and the step count stay."""
    params = {"a.weight": np.ones((2, 3)), "a.bias": np.ones(3)}
    opt = make(params)
    opt.step({"a.weight": np.full((2, 3), 0.5), "a.bias": np.full(3, 0.25)})
    before = snapshot(params, opt)
    with pytest.raises(exc, match=message):
        opt.step(grads)
    after = snapshot(params, opt)
    assert after.keys() == before.keys() and all(np.array_equal(after[k], before[k]) for k in before)


def snapshot(params, opt) -> dict:
    """Copies of everything a step changes: the parameters, the per-key state, the step count."""
    state = {"SGD": lambda: opt.buffers, "Adam": lambda: {**opt.m, **{f"v:{k}": v for k, v in opt.v.items()}}}
    arrays = {**params, **{f"state:{k}": v for k, v in state[type(opt).__name__]().items()}}
    return {**{k: v.copy() for k, v in arrays.items()}, "iterations": np.array(opt.iterations)}


@pytest.mark.parametrize("make", MAKERS.values(), ids=MAKERS.keys())
def test_step_takes_gradients_as_nested_lists(make):
    a, b = {"w": np.ones((2, 2))}, {"w": np.ones((2, 2))}
    make(a).step({"w": [[0.5, -0.5], [1.0, 2.0]]})
    make(b).step({"w": np.array([[0.5, -0.5], [1.0, 2.0]])})
    assert np.array_equal(a["w"], b["w"])


def adam_with_model(seed: int):
    rng = np.random.default_rng(seed)
    model = ref.Sequential([ref.Flatten(), ref.Linear(6, 4, rng=rng), ref.ReLU(), ref.Linear(4, 3, rng=rng)])
    grads = [{k: rng.standard_normal(v.shape) for k, v in model.params.items()} for _ in range(6)]
    return model, Adam(model.params, lr=0.05, betas=(0.8, 0.9)), grads


def assert_same_state(opt, other):
    assert opt.iterations == other.iterations
    for key in opt.keys:
        for name in ("m", "v"):
            assert np.array_equal(getattr(opt, name)[key], getattr(other, name)[key]), (name, key)
        assert np.shares_memory(other.m[key], other._m) and np.shares_memory(other.v[key], other._v)


COPIES = {"deepcopy": copy.deepcopy, "pickle": lambda obj: pickle.loads(pickle.dumps(obj))}


@pytest.mark.parametrize("duplicate", COPIES.values(), ids=COPIES.keys())
def test_a_copied_adam_continues_as_the_original(duplicate):
    """Copied after 3 steps, both take the same 3 further steps: equal parameters and moments, each its own."""
    params, grads = make_problem(20, steps=6)
    opt = Adam(params, lr=0.01)
    for g in grads[:3]:
        opt.step(g)
    twin = duplicate(opt)
    for g in grads[3:]:
        opt.step(g)
        twin.step(g)
    assert_same_state(opt, twin)
    for key in params:
        assert np.array_equal(twin.params[key], params[key]) and twin.params[key] is not params[key]
        assert twin.arrays[twin.keys.index(key)] is twin.params[key]


@pytest.mark.parametrize("duplicate", COPIES.values(), ids=COPIES.keys())
def test_a_copy_of_model_and_adam_updates_the_copied_model(duplicate):
    model, opt, grads = adam_with_model(21)
    for g in grads[:2]:
        opt.step(g)
    model_copy, opt_copy = duplicate((model, opt))
    original = {k: v.copy() for k, v in model.params.items()}
    for g in grads[2:]:
        opt_copy.step(g)
    for key, value in original.items():
        assert np.array_equal(model.params[key], value), "the copy's steps reached the original model"
        assert not np.array_equal(model_copy.params[key], value), "the copy's steps missed the copied model"
    for g in grads[2:]:
        opt.step(g)
    assert_same_state(opt, opt_copy)
    for key in original:
        assert np.array_equal(model_copy.params[key], model.params[key])


# -- PyTorch --------------------------------------------------------------------------
@pytest.mark.torch
@pytest.mark.parametrize("config", SGD_CONFIGS.values(), ids=SGD_CONFIGS.keys())
def test_sgd_matches_torch(config):
    params, grads = make_problem(10)
    ours = run_reference(lambda p: SGD(p, **config), params, grads)
    theirs = run_torch(lambda torch, ps: torch.optim.SGD(ps, **config), params, grads)
    assert_close(ours, theirs, f"SGD{config} vs torch.optim.SGD")


@pytest.mark.torch
@pytest.mark.parametrize("config", ADAM_CONFIGS.values(), ids=ADAM_CONFIGS.keys())
def test_adam_matches_torch(config):
    params, grads = make_problem(11)
    ours = run_reference(lambda p: Adam(p, **config), params, grads)
    theirs = run_torch(lambda torch, ps: torch.optim.Adam(ps, **config), params, grads)
    assert_close(ours, theirs, f"Adam{config} vs torch.optim.Adam")


# -- Keras ------------------------------------------------------------------------------
@contextlib.contextmanager
def keras_float64():
    keras = import_or_skip("keras")
    previous = keras.config.floatx()
    keras.config.set_floatx("float64")
    try:
        yield keras
    finally:
        keras.config.set_floatx(previous)


def run_keras(make, params, grads):
    with keras_float64() as keras:
        variables = {k: keras.Variable(v.copy(), dtype="float64") for k, v in params.items()}
        opt = make(keras)
        history = []
        for g in grads:
            opt.apply_gradients([(keras.ops.convert_to_tensor(g[k]), v) for k, v in variables.items()])
            history.append({k: np.array(v.numpy()) for k, v in variables.items()})
    return history


@pytest.mark.keras
@pytest.mark.parametrize("config", [c for c in SGD_CONFIGS.values() if "weight_decay" not in c],
                         ids=[k for k, c in SGD_CONFIGS.items() if "weight_decay" not in c])
def test_sgd_matches_keras(config):
    params, grads = make_problem(12)
    ours = run_reference(lambda p: SGD(p, **config), params, grads)
    kw = {"learning_rate": config["lr"], "momentum": np.float64(config.get("momentum", 0.0)),
          "nesterov": config.get("nesterov", False)}
    theirs = run_keras(lambda keras: keras.optimizers.SGD(**kw), params, grads)
    assert_close(ours, theirs, f"SGD{config} vs keras.optimizers.SGD")


@pytest.mark.keras
@pytest.mark.parametrize("eps", [1e-7, 1e-8], ids=["keras-default-eps", "torch-eps"])
def test_adam_matches_keras(eps):
    params, grads = make_problem(13)
    ours = run_reference(lambda p: Adam(p, lr=2e-3, eps=eps, eps_hat=True), params, grads)
    theirs = run_keras(lambda keras: keras.optimizers.Adam(learning_rate=2e-3, beta_1=np.float64(0.9),
                                                           beta_2=np.float64(0.999), epsilon=eps), params, grads)
    assert_close(ours, theirs, f"Adam(eps={eps}, eps_hat=True) vs keras.optimizers.Adam")
