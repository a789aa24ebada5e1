"""comparisons.port.layers: output shapes of the neutral layers, and the option differences a report shows."""

from __future__ import annotations

import pytest

from comparisons.port.layers import PortLayer, add_pads, same_function_options, shapes, symmetric


def test_shapes_follow_each_kind():
    layers = [PortLayer("zeropad", {"pads": ((0, 1), (2, 0))}),
              PortLayer("conv", {"out_channels": 4, "kernel_size": (3, 3), "stride": (2, 2), "pads": ((1, 1), (0, 0)),
                                 "dilation": (1, 1)}),
              PortLayer("maxpool", {"kernel_size": (2, 2), "stride": (2, 2), "pads": ((0, 0), (0, 0)),
                                    "dilation": (1, 1), "ceil_mode": True}),
              PortLayer("relu"), PortLayer("flatten"), PortLayer("linear", {"out_features": 7})]
    # (3, 9, 10) -> pad (3, 10, 12) -> conv (4, (10+2-3)//2+1, (12-3)//2+1) = (4, 5, 5) -> ceil pool (4, 3, 3)
    assert shapes(layers, (3, 9, 10)) == [(3, 9, 10), (3, 10, 12), (4, 5, 5), (4, 3, 3), (4, 3, 3), (36,), (7,)]


def test_a_spatial_layer_on_flat_features_is_refused():
    with pytest.raises(ValueError, match=r"needs a \(C, H, W\) input, got shape \(8,\)"):
        shapes([PortLayer("maxpool", {"kernel_size": (2, 2), "stride": (2, 2), "pads": ((0, 0), (0, 0))},
                          name="3", type="MaxPool2d")], (8,))


def test_pads_helpers():
    assert symmetric(((1, 1), (2, 2))) == (1, 2) and symmetric(((0, 1), (1, 1))) is None
    assert add_pads(((0, 1), (2, 0)), ((1, 1), (0, 3))) == ((1, 2), (2, 3))


def test_option_differences_read_as_a_vs_b():
    a = PortLayer("batchnorm", {"eps": 1e-5, "momentum": 0.1})
    b = PortLayer("batchnorm", {"eps": 1e-3, "momentum": 0.1})
    assert same_function_options(a, b) == ["eps 1e-05 vs 0.001"] and same_function_options(a, a) == []
