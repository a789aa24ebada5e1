"""The tutorial style: the configurations the tutorial's classes have."""

import pytest

from comparisons.check import styles, tutorial


def test_arguments_of_the_tutorial_classes():
    assert tutorial.arguments("Conv2d", {"in_channels": 1, "out_channels": 8, "kernel_size": (3, 3), "stride": 2,
                                         "padding": 1}) == ((1, 8, 3), {"pad": 1, "stride": 2})
    assert tutorial.arguments("MaxPool2d", {"kernel_size": 2, "stride": None, "padding": 0}) == ((), {})


def test_the_tutorial_has_no_relu_and_one_pool():
    with pytest.raises(styles.NotCovered, match="no class for ReLU"):
        tutorial.arguments("ReLU", {})
    with pytest.raises(styles.NotCovered, match="kernel_size=3"):
        tutorial.arguments("MaxPool2d", {"kernel_size": 3})
