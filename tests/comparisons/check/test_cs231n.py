"""The CS231n function-pair style: which configurations it expresses."""

import pytest

from comparisons.check import cs231n, styles
from tests.comparisons.check.helpers import functions


def test_configurations_outside_the_functions_are_not_covered():
    style = cs231n.FunctionsStyle(functions("conv_forward_naive", "conv_backward_naive"))
    style.build("Conv2d", {"in_channels": 1, "out_channels": 1, "kernel_size": 3, "stride": 2, "padding": 1})
    for kwargs in ({"dilation": 2}, {"stride": (1, 2)}, {"padding": ((0, 1), (1, 0))}, {"groups": 2}):
        with pytest.raises(styles.NotCovered):
            style.build("Conv2d", {"in_channels": 2, "out_channels": 2, "kernel_size": 3, **kwargs})
    with pytest.raises(styles.NotCovered, match="no function pair for Tanh"):
        style.build("Tanh", {})


def test_the_pair_must_be_two_functions():
    with pytest.raises(ValueError, match="expected 'module:forward_fn,module:backward_fn'"):
        cs231n.FunctionsStyle("a:b")
