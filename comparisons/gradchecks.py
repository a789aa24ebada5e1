"""Finite-difference gradient checks of the reference layers and losses, as report rows (no framework needed)."""

from __future__ import annotations

import numpy as np

from reference import (
    Dropout,
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    gradient_errors,
    max_rel_error,
    numerical_gradient,
    softmax_cross_entropy,
)

from .cases import (
    Case,
    activation_cases,
    batchnorm_cases,
    build_reference,
    conv_cases,
    conv_padding_cases,
    conv_padding_mode_cases,
    conv_transpose_cases,
    dense_cases,
    dropout_cases,
    global_pool_cases,
    group_conv_cases,
    more_activation_cases,
    pool_cases,
    pool_option_cases,
    sample_norm_cases,
    spec,
    upsample_cases,
    vgg_specs,
)
from .cases_options import (
    BINARY_CROSS_ENTROPY_OPTIONS,
    CROSS_ENTROPY_OPTIONS,
    bce_probabilities,
    bce_targets,
    ce_arrays,
)

# Central differences at h=1e-5 in float64 are good to ~1e-10; 1e-8 leaves room and still catches any
# wrong gradient (a wrong index or a missing term gives errors of order 1).
TOL = 1e-8


def _without_indices(cases: list[Case]) -> list[Case]:
    """Cases whose output is one array (``return_indices`` adds an integer output: nothing to differentiate)."""
    return [c for c in cases if not any(s.kwargs.get("return_indices") for s in c.specs)]


def representative_cases() -> list[Case]:
    """A handful per layer: enough to show every layer and parameter, quick enough for a report."""
    # the tutorial's architecture on a 10x10 image: 13,610 parameters at 28x28 would take minutes
    small_cnn = Case("TutorialCNN", "tutorial-cnn-10x10", (
        spec("conv", in_channels=1, out_channels=8, kernel_size=3, stride=1, padding=0, dilation=1, bias=True),
        spec("relu"), spec("maxpool", kernel_size=2, stride=None, padding=0), spec("flatten"),
        spec("linear", in_features=4 * 4 * 8, out_features=10, bias=True)), (1, 10, 10), seed=7,
        tags=frozenset({"single"}))
    # the VGG-style CNN in training mode on a batch of 2 (~1,100 parameters, ~2 s per impl); evaluation
    # mode is covered layer by layer by the batch-norm and dropout cases
    small_vgg = [Case("VGGStyleCNN", "vgg-cnn-train-batch2", vgg_specs(), (2, 3, 8, 8), seed=11)]
    return (conv_cases()[::23] + group_conv_cases()[::3] + pool_cases()[::9] + dense_cases() + [small_cnn]
            + batchnorm_cases()[::2] + dropout_cases()[::2] + activation_cases() + global_pool_cases()[:2] + small_vgg
            + conv_padding_cases()[::2] + conv_padding_mode_cases()[::3] + _without_indices(pool_option_cases())[::4]
            + conv_transpose_cases() + sample_norm_cases() + more_activation_cases()[::2] + upsample_cases()[::3])


def smooth_input(case: Case, rng: np.random.Generator) -> np.ndarray:
    """Distinct, well-separated values, so no max-pool window or ReLU sits at a kink."""
    size = int(np.prod(case.input_shape))
    return (rng.permutation(size) + rng.uniform(0.1, 0.9, size)).reshape(case.input_shape) / size - 0.5


def gradient_check_rows() -> list[dict]:
    """One row per case, impl and quantity: the normwise error of backward against central differences; then the
    losses' rows (:func:`loss_check_rows`)."""
    rows = []
    for case in representative_cases():
        for impl in case.impls:
            model = build_reference(case, impl, np.float64)
            rng = np.random.default_rng(case.seed)
            x = smooth_input(case, rng)
            dout = rng.standard_normal(model.forward(x).shape)
            for layer in model.layers:  # finite differences need the same dropout mask in every forward
                if isinstance(layer, Dropout):
                    layer.set_mask(layer.mask if layer.training else None)
            for quantity, err in gradient_errors(model, x, dout).items():
                rows.append({"layer": case.layer, "case": case.id, "impl": impl, "quantity": quantity,
                             "max_rel_err": err, "tol": TOL, "passed": err <= TOL})
    return rows + loss_check_rows()


def _loss_row(layer: str, case_id: str, loss, x: np.ndarray, dout, quantity: str) -> dict:
    """The row of ``loss(x, dloss) -> (loss, dx)``: its ``dx`` against central differences of ``sum(loss * dout)``."""
    _, dx = loss(x, dout)
    numerical = numerical_gradient(lambda: np.asarray(loss(x, None)[0]), x, np.asarray(dout, dtype=np.float64))
    err = max_rel_error(dx, numerical)
    return {"layer": layer, "case": case_id, "impl": None, "quantity": quantity, "max_rel_err": err, "tol": TOL,
            "passed": err <= TOL}


def loss_check_rows() -> list[dict]:
    """The losses' input gradients against central differences, on the configurations of the case matrix
    (:mod:`comparisons.cases_options`): every softmax cross-entropy option, and every binary cross-entropy one
    whose probabilities lie inside ``(0, 1)`` (at exactly 0 or 1 the loss is clamped: no derivative there)."""
    rows = []
    for opt in CROSS_ENTROPY_OPTIONS:
        scores, target, weight, dloss = ce_arrays(opt)
        scores = np.clip(scores, -30.0, 30.0)  # logits of 1e4: a step of h changes the loss below its rounding
        rows.append(_loss_row("softmax_cross_entropy", opt.id, lambda x, d, o=opt, t=target, w=weight:
                              softmax_cross_entropy(x, t, **o.kwargs(w), dloss=d), scores, dloss, "scores"))
    for opt in BINARY_CROSS_ENTROPY_OPTIONS:
        if opt.edges or opt.scale > 1:  # clamped (probabilities 0 and 1) or saturated (logits of 40 and more)
            continue
        rng = np.random.default_rng(opt.seed)
        x = (rng.standard_normal(opt.scores_shape) if opt.logits
             else bce_probabilities(opt, opt.scores_shape, "float64", rng).clip(0.1, 0.9))  # log's third
        # derivative 2/p^3 sets central differences' error (h^2/6 of it): away from 0 it stays below 1e-8
        target, weight, pos_weight, dloss = bce_targets(opt, opt.scores_shape, "float64", rng)
        function = binary_cross_entropy_with_logits if opt.logits else binary_cross_entropy
        rows.append(_loss_row(opt.function, opt.id, lambda v, d, o=opt, f=function, t=target, w=weight, pw=pos_weight:
                              f(v, t, **o.kwargs(w, pw), dloss=d), x, dloss, "scores" if opt.logits else "probs"))
    return rows


def format_rows(rows: list[dict]) -> str:
    """A Markdown table of the rows."""
    lines = ["| layer | case | impl | quantity | max rel err | result |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['layer']} | {r['case']} | {r['impl'] or '-'} | {r['quantity']} | {r['max_rel_err']:.1e} | "
              f"{'PASS' if r['passed'] else 'FAIL'} |" for r in rows]
    return "\n".join(lines)
