"""Planted pitfalls: each one is recognised in the layer that has it and in no correct layer."""

import numpy as np

from comparisons.check import matrix, pitfalls, run, styles
from tests.comparisons.check.fixtures import buggy, class_layers


def _observed(cls, family, pick):
    config = next(c for c in matrix.configurations(family) if pick(c))
    outcome = run.run_config(styles.ClassStyle(cls), family, config, "float64")
    return [(config, outcome.results)]


def test_each_bug_gets_its_hint_and_correct_layers_none():
    cases = [(buggy.ConvBiasSign, "Conv2d", lambda c: c.kwargs.get("bias"), "0.bias", "bias-gradient sign"),
             (buggy.ConvFlipped, "Conv2d", lambda c: c.kwargs.get("kernel_size") == 3, "forward", "flipped kernel"),
             (buggy.ConvStrideBackward, "Conv2d", lambda c: c.kwargs.get("stride") == 2, "dx",
              "stride not applied in backward"),
             (buggy.MaxPoolAllTies, "MaxPool2d", lambda c: c.ties, "dx", "tied maxima")]
    for cls, family, pick, key, name in cases:
        assert [p.name for p in pitfalls.hints(family, key, _observed(cls, family, pick), "float64")] == [name]
        correct = getattr(class_layers, family)
        assert pitfalls.hints(family, key, _observed(correct, family, pick), "float64") == []


def test_flatten_order_and_padding_side_are_planted():
    config = matrix.configurations("Flatten")[0]
    planted = pitfalls._flatten_hwc(config, "float64")
    x = run.reference_run(config, "float64").x
    assert np.array_equal(planted["forward"], x.transpose(0, 2, 3, 1).reshape(x.shape[0], -1))
    padded = next(c for c in matrix.configurations("Conv2d") if c.kwargs.get("padding") == 1)
    assert pitfalls._one_side(0)(padded, "float64")["forward"].shape == run.reference_run(
        padded, "float64").results["forward"].shape
