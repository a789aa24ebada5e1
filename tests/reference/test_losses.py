"""softmax_cross_entropy: value against an extended-precision definition, gradient, large logits; non-finite and
extreme logits (and log_softmax on them) against PyTorch."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference import log_softmax, max_rel_error, numerical_gradient, softmax_cross_entropy
from tests.frameworks import import_or_skip


def loss_in_long_double(scores, y):
    """-mean(log softmax(scores)[y]) computed in numpy's long double, straight from the definition."""
    s = np.asarray(scores, dtype=np.longdouble)
    m = s.max(axis=1, keepdims=True)
    logz = m[:, 0] + np.log(np.exp(s - m).sum(axis=1))
    return float(np.mean(logz - s[np.arange(len(y)), y]))


@pytest.mark.parametrize("scale", [1.0, 30.0, 1e4])
def test_value_matches_definition(scale):
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((6, 10)) * scale
    y = rng.integers(0, 10, 6)
    loss, _ = softmax_cross_entropy(scores, y)
    assert np.isfinite(loss)
    assert loss == pytest.approx(loss_in_long_double(scores, y), rel=1e-13)


@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_gradient_matches_finite_differences(scale):
    rng = np.random.default_rng(1)
    scores = rng.standard_normal((5, 4)) * scale
    y = rng.integers(0, 4, 5)
    _, dscores = softmax_cross_entropy(scores, y)
    assert np.isfinite(dscores).all()
    numeric = numerical_gradient(lambda: np.array(softmax_cross_entropy(scores, y)[0]), scores, np.array(1.0),
                                 h=1e-6 if scale == 1 else 1e-3)
    assert max_rel_error(dscores, numeric) < 1e-7
    assert np.allclose(dscores.sum(axis=1), 0.0, atol=1e-15)  # each row of softmax - onehot sums to 0


def test_tutorial_shape_single_sample():
    loss, d = softmax_cross_entropy(np.zeros((1, 10)), np.array([3]))
    assert loss == pytest.approx(np.log(10), rel=1e-15)
    assert d.shape == (1, 10) and d[0, 3] == pytest.approx(0.1 - 1, rel=1e-15)


# -- non-finite and extreme logits, against PyTorch --------------------------------------------------------------
# Tolerances, normwise (max |ours - torch| / max |torch| over the finite entries; nan and inf must sit at the same
# places with the same signs): float64 1e-12, rounding level. float32 16 ulps (16 * 2**-23 ~ 1.9e-6): both sides
# round each of the C = 3 exponentials, the logarithm, the subtraction and the reduction over N <= 3 positions
# (PyTorch with its vectorized exp/log, within 1 ulp each, numpy with its own): measured at most 5 ulps.
TOL = {"float64": 1e-12, "float32": 16 * float(np.finfo(np.float32).eps)}
INF, NAN = float("inf"), float("nan")
EDGE_INPUTS = {  # name: (dtypes, scores, class-index target); C = 3 throughout
    "masked-non-target": (("float64", "float32"), [[2.0, -INF, 0.5], [0.3, -1.0, 2.0]], [0, 1]),
    "masked-target": (("float64", "float32"), [[2.0, -INF, 0.5], [0.3, -1.0, 2.0]], [1, 2]),
    "one-class-left": (("float64", "float32"), [[-INF, 5.0, -INF], [1e4, -1e4, -INF]], [1, 0]),
    "all-masked-row": (("float64", "float32"), [[-INF, -INF, -INF], [1.0, 2.0, 3.0]], [0, 1]),
    "plus-inf-and-nan": (("float64", "float32"), [[INF, 0.0, 1.0], [NAN, 0.0, 1.0], [1.0, 2.0, 3.0]], [1, 2, 0]),
    "near-float32-max": (("float32",), [[3e38, -3e38, 0.0], [3.4e38, 3.3e38, -1.0]], [0, 1]),
    "float32-overflowing-difference": (("float32",), [[3e38, -3e38, 0.0], [-3.4e38, 3.4e38, -3.4e38]], [1, 1]),
    "near-float64-max": (("float64",), [[1.7e308, -1.7e308, 0.0], [-1.7e308, 1.7e308, 1.7e308]], [0, 2]),
}
WEIGHT = [1.0, 0.0, 2.0]  # a zero weight on the class that is -inf in several inputs
OPTIONS = {
    "mean": {},
    "sum": {"reduction": "sum"},
    "none": {"reduction": "none"},
    "smoothing": {"label_smoothing": 0.1},
    "smoothing-one-none": {"label_smoothing": 1.0, "reduction": "none"},
    "weight": {"weight": WEIGHT},
    "weight-smoothing-sum": {"weight": WEIGHT, "label_smoothing": 0.2, "reduction": "sum"},
    "ignore-0": {"ignore_index": 0},
    "ignore-1-smoothing": {"ignore_index": 1, "label_smoothing": 0.3},
    "prob-onehot": {"target": "onehot"},
    "prob-smoothing-weight-none": {"target": "onehot", "label_smoothing": 0.1, "weight": WEIGHT, "reduction": "none"},
    "prob-mixed": {"target": "mixed"},
}
EDGE_CASES = [(dtype, name) for name, (dtypes, _, _) in EDGE_INPUTS.items() for dtype in dtypes]


def edge_arrays(name: str, opt: str, dtype: str):
    """``(scores, target, kwargs)`` in ``dtype``: class indices, or probabilities for the ``prob-`` options (the
    one-hot of the indices, or an even split between the index and the next class)."""
    _, scores, index = EDGE_INPUTS[name]
    scores, index = np.array(scores, dtype=dtype), np.array(index)
    kwargs = dict(OPTIONS[opt])
    target = {"onehot": np.eye(3, dtype=dtype)[index],
              "mixed": (np.eye(3, dtype=dtype)[index] + np.eye(3, dtype=dtype)[(index + 1) % 3]) / 2,
              None: index}[kwargs.pop("target", None)]
    if "weight" in kwargs:
        kwargs["weight"] = np.array(kwargs["weight"], dtype=dtype)
    return scores, target, kwargs


def torch_loss_and_gradient(scores, target, **kwargs):
    """``F.cross_entropy`` and the gradient of its sum (of ``loss.sum()`` for ``reduction="none"``)."""
    torch = import_or_skip("torch")
    torch.set_num_threads(1)
    z = torch.tensor(scores, requires_grad=True)
    kwargs = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    loss = torch.nn.functional.cross_entropy(z, torch.from_numpy(target), **kwargs)
    loss.sum().backward()
    return loss.detach().numpy(), z.grad.numpy()


def gradient_scale(target, kwargs) -> float:
    """The size of the two terms whose difference is the gradient, ``softmax * sum_c q`` and ``q`` (times the
    mean's 1/denominator): at most the largest class weight. Rounding is relative to them, not to the difference,
    which can cancel to nothing (equal logits under ``label_smoothing=1``)."""
    w = np.ones(1) if kwargs.get("weight") is None else np.asarray(kwargs["weight"], dtype=np.float64)
    if kwargs.get("reduction", "mean") != "mean":
        return float(w.max())
    if target.dtype.kind == "f":
        denominator = len(target)
    else:
        kept = target[target != kwargs.get("ignore_index", -100)]
        denominator = float(w[kept].sum()) if w.size > 1 else len(kept)
    return float(w.max()) / denominator if denominator > 0 else 1.0


def assert_matches(ours, theirs, tol: float, what: str, scale: float = 0.0) -> None:
    """Same shape, nan and +-inf at the same places, the finite values within ``tol`` normwise (relative to the
    largest finite value of ``theirs``, or to ``scale`` if larger)."""
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    assert ours.shape == theirs.shape, what
    assert np.array_equal(np.isnan(ours), np.isnan(theirs)), f"{what}: nan at other places: {ours} vs {theirs}"
    infinite = np.isinf(theirs)
    assert np.array_equal(np.isinf(ours), infinite) and np.array_equal(ours[infinite], theirs[infinite]), \
        f"{what}: inf at other places: {ours} vs {theirs}"
    finite = np.isfinite(theirs)
    if finite.any():
        scale = max(np.abs(theirs[finite]).max(), scale, np.finfo(np.float64).tiny)
        err = np.abs(ours[finite] - theirs[finite]).max() / scale
        assert err <= tol, f"{what}: normwise error {err:.3e} > {tol:.1e}: {ours} vs {theirs}"


@pytest.mark.torch
@pytest.mark.parametrize("dtype,name", EDGE_CASES, ids=[f"{d}-{n}" for d, n in EDGE_CASES])
def test_non_finite_and_extreme_logits_match_torch(dtype, name):
    """log_softmax, and the cross-entropy's loss and gradient under every option, as PyTorch's, with no warning.

    A -inf logit masks its class (finite loss when it is not the target); logits near the float range stay exact
    (a difference beyond it is -inf); nan and inf where PyTorch has them (a -inf target logit: inf loss, finite
    gradient; a row of only -inf, or holding +inf or nan: nan)."""
    torch = import_or_skip("torch")
    scores = np.array(EDGE_INPUTS[name][1], dtype=dtype)
    theirs = torch.log_softmax(torch.from_numpy(scores), 1).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = log_softmax(scores, axis=1), log_softmax(scores.T, axis=0)
    assert ours[0].dtype == scores.dtype
    assert_matches(ours[0], theirs, TOL[dtype], "log_softmax axis=1")
    assert_matches(ours[1], theirs.T, TOL[dtype], "log_softmax axis=0")
    for opt in OPTIONS:
        scores, target, kwargs = edge_arrays(name, opt, dtype)
        t_loss, t_grad = torch_loss_and_gradient(scores, target, **kwargs)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            loss, grad = softmax_cross_entropy(scores, target, **kwargs)
        assert grad.dtype == scores.dtype
        assert_matches(loss, t_loss, TOL[dtype], f"{opt}: loss")
        assert_matches(grad, t_grad, TOL[dtype], f"{opt}: gradient", gradient_scale(target, kwargs))


def test_masked_class_gives_torchs_values():
    """The values measured with PyTorch 2.13: F.cross_entropy([[2, -inf, 0.5]], [0]) in float64."""
    loss, grad = softmax_cross_entropy(np.array([[2.0, -INF, 0.5]]), np.array([0]))
    assert loss == pytest.approx(0.20141327798275246, rel=1e-15)
    assert grad[0, 1] == 0 and grad[0, 0] == pytest.approx(-0.18242552380635635, rel=1e-15)
    assert grad[0, 2] == pytest.approx(0.18242552380635632, rel=1e-15)


def test_log_softmax_takes_float_arrays_only_and_an_empty_axis():
    with pytest.raises(TypeError, match=r"log_softmax: scores must have a real floating dtype .* got dtype int64"):
        log_softmax(np.array([1, 2, 3]))
    assert log_softmax(np.zeros((2, 0))).shape == (2, 0)  # torch.log_softmax(torch.zeros(2, 0), 1): shape (2, 0)


def test_gradient_of_an_empty_mean_is_nan_only_where_torch_has_it():
    """Counted weights summing to 0 (0/0): PyTorch's gradient is nan on the counted rows, 0 on the ignored ones."""
    scores = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    loss, grad = softmax_cross_entropy(scores, np.array([0, -100]), weight=np.array([0.0, 1.0, 1.0]))
    assert np.isnan(loss) and np.isnan(grad[0]).all() and np.array_equal(grad[1], np.zeros(3))


# -- random logits with masked classes and huge magnitudes, against PyTorch ------------------------------------------
HUGE = {"float64": 1e300, "float32": 1e38}


@st.composite
def masked_logits(draw):
    """``(scores, target, kwargs)``: logits of ordinary size, huge magnitude or -inf (never a whole row), class
    indices (a few ignored) or probabilities, and any reduction, weight and label smoothing."""
    dtype = draw(st.sampled_from(["float64", "float32"]))
    n, c = draw(st.integers(1, 4)), draw(st.integers(2, 5))
    entry = st.one_of(st.floats(-30, 30), st.floats(-1, 1).map(lambda u: u * HUGE[dtype]), st.just(-INF))
    scores = np.array(draw(st.lists(st.lists(entry, min_size=c, max_size=c), min_size=n, max_size=n)), dtype=dtype)
    for row in scores:
        if np.isneginf(row).all():
            row[draw(st.integers(0, c - 1))] = draw(st.floats(-30, 30))
    kwargs = {"reduction": draw(st.sampled_from(["mean", "sum", "none"])),
              "label_smoothing": draw(st.sampled_from([0.0, 0.0, 0.1, 1.0]))}
    if draw(st.booleans()):
        kwargs["weight"] = np.array(draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0]), min_size=c, max_size=c)),
                                    dtype=dtype)
    if draw(st.booleans()):
        probs = np.array(draw(st.lists(st.lists(st.floats(0, 1), min_size=c, max_size=c), min_size=n, max_size=n)))
        target = (probs / np.maximum(probs.sum(axis=1, keepdims=True), 1e-3)).astype(dtype)
    else:
        target = np.array(draw(st.lists(st.integers(-1, c - 1), min_size=n, max_size=n)))
        kwargs["ignore_index"] = -1
    return scores, target, kwargs


@pytest.mark.torch
@given(masked_logits())
def test_random_masked_and_huge_logits_match_torch(case):
    scores, target, kwargs = case
    t_loss, t_grad = torch_loss_and_gradient(scores, target, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, grad = softmax_cross_entropy(scores, target, **kwargs)
    tol = TOL[scores.dtype.name] * 4  # sums over up to 4 positions and 5 classes: a few more roundings
    assert_matches(loss, t_loss, tol, "loss")
    assert_matches(grad, t_grad, tol, "gradient", gradient_scale(target, kwargs))
