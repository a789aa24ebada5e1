"""The gradient-check report's rows (:mod:`comparisons.gradchecks`): the losses' rows cover every loss function of
the matrix and pass, and a wrong gradient fails its row."""

from __future__ import annotations

import numpy as np

from comparisons import gradchecks


def test_loss_rows_cover_every_loss_and_pass():
    rows = gradchecks.loss_check_rows()
    assert {r["layer"] for r in rows} == {"softmax_cross_entropy", "binary_cross_entropy",
                                          "binary_cross_entropy_with_logits"}
    assert all(r["passed"] and r["max_rel_err"] <= gradchecks.TOL for r in rows), \
        [r for r in rows if not r["passed"]]


def test_a_loss_row_fails_a_wrong_gradient():
    x = np.random.default_rng(0).standard_normal((4, 3))

    def halved(v, d):  # the loss of sum(v**2), its gradient off by a factor of two
        return float(np.sum(v * v)), v * (1.0 if d is None else d)

    row = gradchecks._loss_row("square", "halved", halved, x, 1.0, "x")
    assert not row["passed"] and abs(row["max_rel_err"] - 0.5) < 1e-6  # 2v against v: |2v - v| / |2v|
