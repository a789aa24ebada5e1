"""check_layer / assert_layer_conforms: correct layers pass in every style, planted bugs fail with the quantity,
the smallest configuration and the hint."""

import pytest

from comparisons.check import assert_layer_conforms, check_layer
from tests.comparisons.check.helpers import ATTRS, REF_ONLY, F, functions

CORRECT = [
    ("class", F + "class_layers:Conv2d", "Conv2d", {}),
    ("class", F + "class_layers:MaxPool2d", "MaxPool2d", {}),
    ("class", F + "class_layers:AvgPool2d", "AvgPool2d", {}),
    ("class", F + "class_layers:Linear", "Linear", {}),
    ("class", F + "class_layers:ReLU", "ReLU", {}),
    ("attributes", F + "attr_layers:Conv2d", "Conv2d", ATTRS),
    ("attributes", F + "attr_layers:Linear", "Linear", ATTRS),
    ("functions", None, "Conv2d", {"functions": functions("conv_forward_naive", "conv_backward_naive")}),
    ("functions", None, "MaxPool2d", {"functions": functions("max_pool_forward_naive", "max_pool_backward_naive")}),
    ("functions", None, "AvgPool2d", {"functions": functions("avg_pool_forward_naive", "avg_pool_backward_naive")}),
    ("functions", None, "Linear", {"functions": functions("affine_forward", "affine_backward")}),
    ("functions", None, "ReLU", {"functions": functions("relu_forward", "relu_backward")}),
    ("tutorial", F + "tutorial_layers:Conv", "Conv2d", {"tutorial": True}),
    ("tutorial", F + "tutorial_layers:MaxPool2x2", "MaxPool2d", {"tutorial": True}),
    ("tutorial", F + "tutorial_layers:Linear", "Linear", {"tutorial": True}),
]


@pytest.mark.parametrize("style, target, kind, options", CORRECT, ids=[f"{c[0]}-{c[2]}" for c in CORRECT])
def test_correct_layer_passes(style, target, kind, options):
    report = check_layer(target, kind, frameworks=REF_ONLY, **options)
    assert report.passed, report.text()
    assert report.style == style
    covered = len(report.outcomes) - report.count("not covered")
    assert covered >= 2 and report.count("passed") == covered


BUGS = [  # target, kind, options, the failing quantities, the hint's name
    (F + "buggy:ConvBiasSign", "Conv2d", {}, {"bias"}, "bias-gradient sign"),
    (F + "buggy:ConvFlipped", "Conv2d", {}, {"forward", "dx", "weight"}, "flipped kernel"),
    (F + "buggy:ConvStrideBackward", "Conv2d", {}, {"dx", "weight"}, "stride not applied in backward"),
    (F + "buggy:MaxPoolAllTies", "MaxPool2d", {}, {"dx"}, "tied maxima"),
    (None, "Conv2d", {"functions": f"{F}cs231n_layers:conv_forward_naive,{F}buggy:conv_backward_bias_sign"},
     {"bias"}, "bias-gradient sign"),
    (F + "buggy:TutorialMaxPoolAllTies", "MaxPool2d", {"tutorial": True}, {"dx"}, "tied maxima"),
]


@pytest.mark.parametrize("target, kind, options, quantities, hint", BUGS, ids=[b[4] + "-" + str(i)
                                                                                for i, b in enumerate(BUGS)])
def test_planted_bug_is_named(target, kind, options, quantities, hint):
    report = check_layer(target, kind, frameworks=REF_ONLY, **options)
    assert not report.passed
    assert {f.quantity for f in report.failures} == quantities
    for failure in report.failures:
        assert [p.name for p in failure.hints] == [hint], failure.lines()
        assert failure.smallest.case.input_shape[-1] <= 3, failure.smallest.describe  # shrunk to a few cells
        text = "\n".join(failure.lines())
        assert f"{failure.quantity} differs" in text and "smallest failing" in text and "hint: " in text


@pytest.mark.torch  # skips without torch, fails under CNNREF_REQUIRE_FRAMEWORKS=1 (conftest.pytest_runtest_setup)
def test_report_against_torch_too():
    report = check_layer(F + "class_layers:Conv2d", "Conv2d", max_cases=8)
    assert report.passed, report.text()
    assert {r.framework for r in report.records} == {"reference", "torch"}


def test_covering_nothing_fails():
    report = check_layer(F + "tutorial_layers:MaxPool2x2", "AvgPool2d", tutorial=True, frameworks=REF_ONLY)
    assert not report.passed and "covers none" in report.problems[0]


def test_default_configuration_must_be_covered():
    report = check_layer(F + "tutorial_layers:MaxPool2x2", "MaxPool2d", tutorial=True, frameworks=REF_ONLY,
                         max_cases=3)
    assert report.count("passed") >= 1  # kernel 2 is the default: covered
    report = check_layer(F + "class_layers:Conv2d", "Conv2d", frameworks=REF_ONLY, max_cases=1)
    assert report.passed and report.outcomes[0].config.id == "conv-default"


def test_assert_layer_conforms_raises_with_the_report():
    assert_layer_conforms(F + "class_layers:ReLU", "ReLU", frameworks=REF_ONLY)
    with pytest.raises(AssertionError, match="hint: bias-gradient sign"):
        assert_layer_conforms(F + "buggy:ConvBiasSign", "Conv2d", frameworks=REF_ONLY, max_cases=5)


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="dtype must be one of"):
        check_layer(F + "class_layers:ReLU", "ReLU", dtype="float16")
    with pytest.raises(ValueError, match="layer kind must be one of"):
        check_layer(F + "class_layers:ReLU", "Conv3d")
    with pytest.raises(ValueError, match="no TARGET with --functions"):
        check_layer(F + "class_layers:ReLU", "ReLU", functions=functions("relu_forward", "relu_backward"))


class _OnlyOneByOne:
    """Refuses every kernel but 1x1 (so the default 3x3 configuration is not covered)."""

    def __new__(cls, **kwargs):
        from tests.comparisons.check.fixtures.class_layers import Conv2d

        if kwargs["kernel_size"] not in (1, (1, 1)):
            raise NotImplementedError("only 1x1 kernels")
        return Conv2d(**kwargs)


def test_missing_default_configuration_fails():
    report = check_layer(_OnlyOneByOne, "Conv2d", frameworks=REF_ONLY)
    assert report.count("passed") > 0 and not report.failures
    assert not report.passed and "does not cover Conv2d's default configuration" in report.problems[0]
