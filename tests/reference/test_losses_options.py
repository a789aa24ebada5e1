"""softmax_cross_entropy's options: weight, ignore_index, reductions, label smoothing, probability targets,
(N, C, d1, ...) inputs; against a long-double definition and finite differences; edge cases and errors."""

from __future__ import annotations

import numpy as np
import pytest

from comparisons.cases_options import CROSS_ENTROPY_OPTIONS, ce_arrays
from reference import log_softmax, max_rel_error, numerical_gradient, softmax_cross_entropy

OPTS = CROSS_ENTROPY_OPTIONS
IDS = [o.id for o in OPTS]


def definition(scores, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """PyTorch's documented formula, one position at a time, in long double (independent of the vectorized code):
    l = (1 - ls) * w[y] * -logp[y] + ls/C * sum_c w[c] * -logp[c] for an index y (0 if ignored), or
    l = -sum_c w[c] * ((1 - ls) * t[c] + ls/C) * logp[c] for probabilities t; the mean divides by
    sum(w[y]) over non-ignored y (indices) or by the number of positions (probabilities)."""
    s = np.moveaxis(np.asarray(scores, dtype=np.longdouble), 1, -1)  # (N, d..., C)
    n_classes = s.shape[-1]
    w = np.ones(n_classes, np.longdouble) if weight is None else np.asarray(weight, np.longdouble)
    probabilities = np.issubdtype(np.asarray(target).dtype, np.floating)
    t = np.moveaxis(np.asarray(target, dtype=np.longdouble), 1, -1) if probabilities else np.asarray(target)
    losses, total = np.zeros(s.shape[:-1], np.longdouble), np.longdouble(0)
    for pos in np.ndindex(s.shape[:-1]):
        row = s[pos]
        logp = row - row.max() - np.log(np.sum(np.exp(row - row.max())))
        if probabilities:
            losses[pos] = -np.sum(w * ((1 - label_smoothing) * t[pos] + label_smoothing / n_classes) * logp)
            total += 1
        elif t[pos] != ignore_index:
            y = t[pos]
            losses[pos] = -(1 - label_smoothing) * w[y] * logp[y] - label_smoothing / n_classes * np.sum(w * logp)
            total += w[y]
    if reduction == "none":
        return losses
    return losses.sum() / total if reduction == "mean" else losses.sum()


@pytest.mark.parametrize("opt", OPTS, ids=IDS)
def test_value_matches_long_double_definition(opt):
    scores, target, weight, _ = ce_arrays(opt)
    loss, _ = softmax_cross_entropy(scores, target, **opt.kwargs(weight))
    expected = definition(scores, target, **opt.kwargs(weight))
    if opt.reduction == "none":
        assert loss.shape == scores.shape[:1] + scores.shape[2:]
        assert max_rel_error(loss, expected.astype(np.float64)) < 1e-14
    else:
        assert isinstance(loss, float)
        assert loss == pytest.approx(float(expected), rel=1e-14)


@pytest.mark.parametrize("opt", OPTS, ids=IDS)
def test_gradient_matches_finite_differences(opt):
    """Central differences of ``sum(loss * dloss)``; h scaled with the logits (1e4 logits need h ~ 1e-3 to
    rise above rounding, and the loss is piecewise smooth enough there)."""
    scores, target, weight, dloss = ce_arrays(opt)
    kwargs = opt.kwargs(weight)
    _, dscores = softmax_cross_entropy(scores, target, **kwargs, dloss=dloss)
    assert dscores.shape == scores.shape and np.isfinite(dscores).all()
    numeric = numerical_gradient(lambda: np.asarray(softmax_cross_entropy(scores, target, **kwargs)[0]
                                                    if opt.reduction != "none" else
                                                    softmax_cross_entropy(scores, target, **kwargs, dloss=dloss)[0]),
                                 scores, np.asarray(dloss), h=1e-6 * max(1.0, opt.scale / 10))
    assert max_rel_error(dscores, numeric) < 1e-7


@pytest.mark.parametrize("opt", [o for o in OPTS if o.scale == 1.0], ids=[o.id for o in OPTS if o.scale == 1.0])
def test_float32_matches_float64_to_float32_rounding(opt):
    """Computed in float32 from the same (float32-representable) inputs: within ``eps32 * (C + positions)``,
    the length of the softmax sum plus the reduction's (4x safety)."""
    s32, t32, w32, d32 = ce_arrays(opt, "float32")
    s64, t64, w64 = (None if a is None else a.astype(np.float64) if a.dtype.kind == "f" else a for a in (s32, t32, w32))
    d64 = d32.astype(np.float64) if opt.reduction == "none" else d32
    l32, g32 = softmax_cross_entropy(s32, t32, **opt.kwargs(w32), dloss=d32)
    l64, g64 = softmax_cross_entropy(s64, t64, **opt.kwargs(w64), dloss=d64)
    assert g32.dtype == np.float32
    tol = 4 * np.finfo(np.float32).eps * (s32.shape[1] + t32.size)
    assert max_rel_error(np.asarray(l32), np.asarray(l64)) < tol
    assert max_rel_error(g32, g64) < tol


def old_softmax_cross_entropy(scores, y):
    """The implementation before the options existed (mean over the batch), kept as the expectation."""
    logp = log_softmax(scores)
    rows = np.arange(len(y))
    dscores = np.exp(logp)
    dscores[rows, y] -= 1
    dscores /= len(y)
    return float(-logp[rows, y].mean()), dscores


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_two_argument_call_is_unchanged_bit_for_bit(dtype):
    rng = np.random.default_rng(3)
    scores, y = rng.standard_normal((16, 10)).astype(dtype), rng.integers(0, 10, 16)
    loss, dscores = softmax_cross_entropy(scores, y)
    old_loss, old_d = old_softmax_cross_entropy(scores, y)
    assert type(loss) is float and loss == old_loss
    assert dscores.dtype == scores.dtype and np.array_equal(dscores, old_d)


def test_ignored_positions_add_nothing_and_do_not_count():
    rng = np.random.default_rng(4)
    scores, y, w = rng.standard_normal((6, 4)), np.array([0, -100, 3, 1, -100, 2]), rng.uniform(0.5, 2, 4)
    kept = y != -100
    for ls in (0.0, 0.2):
        loss, d = softmax_cross_entropy(scores, y, weight=w, label_smoothing=ls)
        loss_kept, d_kept = softmax_cross_entropy(scores[kept], y[kept], weight=w, label_smoothing=ls)
        assert loss == pytest.approx(loss_kept, rel=1e-15)
        assert np.array_equal(d[~kept], np.zeros((2, 4))) and max_rel_error(d[kept], d_kept) < 1e-15


def test_in_range_ignore_index_drops_that_class():
    rng = np.random.default_rng(5)
    scores, y = rng.standard_normal((6, 4)), np.array([0, 1, 1, 3, 2, 1])
    loss, _ = softmax_cross_entropy(scores, y, ignore_index=1)
    assert loss == pytest.approx(softmax_cross_entropy(scores[y != 1], y[y != 1])[0], rel=1e-15)


@pytest.mark.parametrize("ls", [0.0, 0.3])
def test_one_hot_probabilities_equal_indices_up_to_the_mean_divisor(ls):
    """Same per-position losses; the index mean divides by sum(w[y]), the probability mean by N."""
    rng = np.random.default_rng(6)
    scores, y, w = rng.standard_normal((5, 3, 2)), rng.integers(0, 3, (5, 2)), rng.uniform(0.5, 2, 3)
    onehot = np.moveaxis(np.eye(3)[y], -1, 1)
    for weight, divisor_ratio in ((None, 1.0), (w, w[y].sum() / y.size)):
        l_idx, d_idx = softmax_cross_entropy(scores, y, weight=weight, label_smoothing=ls)
        l_prob, d_prob = softmax_cross_entropy(scores, onehot, weight=weight, label_smoothing=ls)
        assert l_prob == pytest.approx(l_idx * divisor_ratio, rel=1e-14)
        assert max_rel_error(d_prob, d_idx * divisor_ratio) < 1e-14


def test_huge_logits_stay_finite_and_exact():
    scores = np.array([[1e4, -1e4, 0.0], [3e4, 3e4, -3e4]])
    y = np.array([1, 0])
    loss, d = softmax_cross_entropy(scores, y, label_smoothing=0.1)
    assert loss == pytest.approx(float(definition(scores, y, label_smoothing=0.1)), rel=1e-15)
    assert np.isfinite(d).all()


def test_nothing_counted_gives_nan_mean_with_zero_gradient_as_torch():
    scores = np.random.default_rng(7).standard_normal((3, 4))
    loss, d = softmax_cross_entropy(scores, np.full(3, -100))
    assert np.isnan(loss) and np.array_equal(d, np.zeros((3, 4)))
    assert softmax_cross_entropy(scores, np.full(3, -100), reduction="sum")[0] == 0.0
    loss, d = softmax_cross_entropy(np.zeros((0, 4)), np.zeros(0, dtype=np.int64))
    assert np.isnan(loss) and d.shape == (0, 4)
    # counted targets whose weights sum to 0: 0/0 in the loss and the gradient (PyTorch: nan both)
    loss, d = softmax_cross_entropy(scores, np.zeros(3, dtype=np.int64), weight=np.array([0.0, 1, 1, 1]))
    assert np.isnan(loss) and np.isnan(d).all()


def test_none_without_dloss_is_the_gradient_of_the_summed_losses():
    rng = np.random.default_rng(9)
    scores, y = rng.standard_normal((4, 3, 2)), rng.integers(0, 3, (4, 2))
    losses, d_none = softmax_cross_entropy(scores, y, reduction="none", label_smoothing=0.1)
    total, d_sum = softmax_cross_entropy(scores, y, reduction="sum", label_smoothing=0.1)
    assert losses.shape == (4, 2) and total == pytest.approx(losses.sum(), rel=1e-15)
    assert max_rel_error(d_none, d_sum) < 1e-15
    ones = softmax_cross_entropy(scores, y, reduction="none", label_smoothing=0.1, dloss=np.ones((4, 2)))[1]
    assert np.array_equal(ones, d_none)


def test_label_smoothing_one_is_uniform_target():
    rng = np.random.default_rng(8)
    scores, y = rng.standard_normal((4, 5)), rng.integers(0, 5, 4)
    loss, d = softmax_cross_entropy(scores, y, label_smoothing=1.0)
    uniform = np.full((4, 5), 0.2)
    loss_u, d_u = softmax_cross_entropy(scores, uniform)
    assert loss == pytest.approx(loss_u, rel=1e-15) and max_rel_error(d, d_u) < 1e-15


S, Y = np.zeros((2, 3)), np.array([0, 1])
BAD = [
    ("label-range", lambda: softmax_cross_entropy(S, np.array([0, 3])), ValueError,
     r"labels must be in \[0, 3\), got 3 \(only ignore_index=-100 may lie outside\)"),
    ("label-negative", lambda: softmax_cross_entropy(S, np.array([-1, 0])), ValueError, r"got -1"),
    ("label-range-other-ignore", lambda: softmax_cross_entropy(S, np.array([0, -100]), ignore_index=-1), ValueError,
     r"got -100 \(only ignore_index=-1"),
    ("label-float-index-shape", lambda: softmax_cross_entropy(S, np.array([0.0, 1.0])), TypeError,
     r"target of shape \(2,\) must hold integer class indices, got dtype float64 \(class probabilities must have "
     r"scores' shape \(2, 3\)\)"),
    ("label-bool", lambda: softmax_cross_entropy(S, np.array([True, False])), TypeError, r"got dtype bool"),
    ("target-shape", lambda: softmax_cross_entropy(S, np.array([0, 1, 2])), ValueError,
     r"target must have shape \(2,\) \(class indices\) or \(2, 3\) \(probabilities\) to match scores \(2, 3\), "
     r"got shape \(3,\)"),
    ("scores-rank", lambda: softmax_cross_entropy(np.zeros(3), np.array(0)), ValueError,
     r"scores must have at least 2 dims \(N, C\) or \(N, C, d1, ...\), got shape \(3,\)"),
    ("scores-int", lambda: softmax_cross_entropy(np.zeros((2, 3), dtype=int), Y), TypeError, r"scores must have a "),
    ("weight-shape", lambda: softmax_cross_entropy(S, Y, weight=np.ones(2)), ValueError,
     r"weight must have shape \(3,\), one per class of scores, got shape \(2,\)"),
    ("weight-int", lambda: softmax_cross_entropy(S, Y, weight=np.ones(3, dtype=int)), TypeError,
     r"weight must have a real floating dtype"),
    ("prob-ignore", lambda: softmax_cross_entropy(S, np.full((2, 3), 1 / 3), ignore_index=0), ValueError,
     r"ignore_index applies to class-index targets only, got ignore_index=0 with class-probability target"),
    ("ignore-float", lambda: softmax_cross_entropy(S, Y, ignore_index=1.0), TypeError, r"ignore_index must be an int"),
    ("smoothing-negative", lambda: softmax_cross_entropy(S, Y, label_smoothing=-0.1), ValueError,
     r"label_smoothing must be in \[0, 1\], got -0.1"),
    ("smoothing-above-one", lambda: softmax_cross_entropy(S, Y, label_smoothing=1.5), ValueError, r"got 1.5"),
    ("smoothing-str", lambda: softmax_cross_entropy(S, Y, label_smoothing="0.1"), TypeError,
     r"label_smoothing must be a real number"),
    ("reduction", lambda: softmax_cross_entropy(S, Y, reduction="avg"), ValueError,
     r"reduction must be one of \('mean', 'sum', 'none'\), got 'avg'"),
    ("none-dloss-shape", lambda: softmax_cross_entropy(S, Y, reduction="none", dloss=np.ones(3)), ValueError,
     r"dloss must have shape \(2,\) for reduction='none', got shape \(3,\)"),
    ("mean-dloss-array", lambda: softmax_cross_entropy(S, Y, dloss=np.ones(2)), ValueError,
     r"dloss must be a real scalar for reduction='mean'"),
]


@pytest.mark.parametrize("call,exc,message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_arguments_raise_clear_errors(call, exc, message):
    with pytest.raises(exc, match=message):
        call()
