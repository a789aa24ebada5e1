"""comparisons.port.reference_models: the reference's Sequential read and built; a padding layer folded into the
convolution (or the zero-counting average pool) it serves, refused elsewhere."""

from __future__ import annotations

import numpy as np
import pytest

import reference as ref
from comparisons.port import reference_models
from comparisons.port.layers import PortLayer


def conv(pads=((0, 0), (0, 0)), mode="zeros") -> PortLayer:
    w = np.random.default_rng(0).standard_normal((2, 1, 3, 3))
    return PortLayer("conv", {"in_channels": 1, "out_channels": 2, "kernel_size": (3, 3), "stride": (1, 1),
                              "pads": pads, "dilation": (1, 1), "groups": 1, "bias": False, "padding_mode": mode},
                     {"weight": w})


def pad(pads) -> PortLayer:
    return PortLayer("zeropad", {"pads": pads}, name="p", type="ZeroPad2d")


def test_zero_padding_is_folded_into_the_convolution_after_it():
    model = reference_models.build([pad(((0, 1), (2, 0))), conv(((1, 1), (0, 0)))])
    (layer,) = model.layers
    assert isinstance(layer, ref.Conv2d) and layer.pads == ((1, 2), (2, 0))
    x = np.random.default_rng(1).standard_normal((1, 1, 5, 5))
    padded = np.pad(x, ((0, 0), (0, 0), (1, 2), (2, 0)))
    unpadded = reference_models.build([conv()])
    np.testing.assert_array_equal(model.forward(x), unpadded.forward(padded))


def test_zero_padding_is_folded_into_an_average_pool_that_counts_it():
    avg = PortLayer("avgpool", {"kernel_size": (2, 2), "stride": (2, 2), "pads": ((0, 0), (0, 0)), "ceil_mode": False,
                                "count_include_pad": True, "divisor_override": None})
    (layer,) = reference_models.build([pad(((1, 1), (1, 1))), avg]).layers
    assert isinstance(layer, ref.AvgPool2d) and layer.padding == (1, 1)


@pytest.mark.parametrize("after", [
    PortLayer("maxpool", {"kernel_size": (2, 2), "stride": (2, 2), "pads": ((0, 0), (0, 0)), "dilation": (1, 1),
                          "ceil_mode": False}, name="m", type="MaxPool2d"),
    conv(mode="reflect"),
])
def test_zero_padding_nothing_can_take_is_refused(after):
    with pytest.raises(ValueError, match=r"layer 0 'p' \(zeropad\): the reference has no padding layer"):
        reference_models.build([pad(((1, 1), (1, 1))), after])
    with pytest.raises(ValueError, match="no layer after it takes it"):
        reference_models.build([conv(), pad(((1, 1), (1, 1)))])


def test_read_names_a_layer_without_a_port():
    with pytest.raises(ValueError, match=r"layer 1 \(GELU\): no port for this layer type"):
        reference_models.read(ref.Sequential([ref.ReLU(), ref.GELU()]))


def test_read_then_build_is_the_same_model():
    model = ref.Sequential([ref.Conv2d(1, 2, 3, padding=((0, 1), (1, 0)), rng=0), ref.BatchNorm2d(2, eps=1e-3),
                            ref.Sequential([ref.ReLU(), ref.AvgPool2d(2, padding=1)]), ref.Flatten(),
                            ref.Linear(2 * 3 * 3, 3, rng=1)]).eval()  # 6x6 -> conv 5x5 -> pool 3x3
    rebuilt = reference_models.build(reference_models.read(model)).eval()
    x = np.random.default_rng(2).standard_normal((2, 1, 6, 6))
    np.testing.assert_array_equal(rebuilt.forward(x), model.forward(x))
    assert [layer.name for _, layer in reference_models.leaves(model)] == [type(la).__name__ for la in rebuilt.layers]


def test_trace_leaves_the_model_as_it_was():
    model = ref.Sequential([ref.Conv2d(1, 2, 3, rng=0), ref.BatchNorm2d(2)]).eval()
    before = {k: np.array(v) for k, v in model.buffers.items()}
    x = np.random.default_rng(2).standard_normal((2, 1, 5, 5))
    runs = reference_models.trace(model, x, training=True, dout=np.ones((2, 2, 3, 3)))
    assert set(runs[0].grads) == {"weight", "bias"} and runs[1].output.shape == (2, 2, 3, 3)
    assert not model.training and all(np.array_equal(before[k], v) for k, v in model.buffers.items())
