"""comparisons.frameworks.keras3.port: a Keras-native model (fused activations, "same" padding at a stride,
depthwise and grouped convolutions, "same" pooling, Keras' batch-norm defaults, a nested Sequential) read, ported to
PyTorch and compared layer by layer; what Keras models cannot be ported is refused naming the layer."""

from __future__ import annotations

import pytest

from comparisons import layouts
from comparisons.port import compare_models, framework_port, keras_to_reference, keras_to_torch
from tests.comparisons.port.helpers import batch

pytestmark = [pytest.mark.torch, pytest.mark.keras]


@pytest.fixture(scope="module")
def keras():
    return framework_port("keras").keras


def keras_cnn(keras, dtype: str):
    f = {"dtype": dtype}
    layers = keras.layers
    return keras.Sequential([
        keras.Input((9, 8, 2), **f),
        layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", **f),  # pads (0, 1), (0, 1)
        layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", **f),
        layers.Conv2D(4, 1, groups=2, **f),
        keras.Sequential([layers.BatchNormalization(**f), layers.MaxPooling2D(3, strides=1, padding="same", **f)]),
        layers.AveragePooling2D(3, strides=1, padding="same", **f),
        layers.Flatten(**f), layers.Dense(6, activation="tanh", **f), layers.Dense(3, activation="softmax", **f)])


def randomise_batch_norm(model) -> None:
    import numpy as np

    rng = np.random.default_rng(3)
    bn = model.layers[3].layers[0]
    bn.set_weights([rng.uniform(0.5, 1.5, 4), rng.standard_normal(4), rng.standard_normal(4) * 0.5,
                    rng.uniform(0.5, 2.0, 4)])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_keras_cnn_ports_to_torch_and_the_reference(keras, dtype):
    model = keras_cnn(keras, dtype)
    randomise_batch_norm(model)
    x = batch((2, 9, 8))
    torch_model = keras_to_torch(model)
    for other in (torch_model, keras_to_reference(model)):
        for grads in (False, True):
            report = compare_models(model, other, x, grads=grads)
            assert report.agree, report.to_markdown()
    types = [type(m).__name__ for m in torch_model]
    assert types[:3] == ["ZeroPad2d", "Conv2d", "ReLU"]
    # "same" at stride 2: height 9 pads (1, 1), width 8 only (0, 1), as (left, right, top, bottom) for PyTorch
    assert layouts.keras_same_padding((9, 8), 3, 2) == ((1, 1), (0, 1))
    assert torch_model[1].padding == (0, 0) and torch_model[0].padding == (0, 1, 1, 1)
    depthwise, grouped = torch_model[3], torch_model[4]
    assert (depthwise.groups, depthwise.out_channels, depthwise.padding) == (4, 8, (1, 1)) and grouped.groups == 2
    bn = torch_model[5]
    assert (bn.eps, bn.momentum) == (1e-3, 0.01)  # Keras' defaults: epsilon 1e-3, momentum 0.99
    pool = torch_model[7]
    assert type(pool).__name__ == "AvgPool2d" and (pool.padding, pool.count_include_pad) == ((1, 1), False)
    assert types[-4:] == ["Linear", "Tanh", "Linear", "Softmax"]


def test_fused_activations_are_rows_of_their_own(keras):
    model = keras_cnn(keras, "float64")
    report = compare_models(model, keras_to_torch(model), batch((2, 9, 8)))
    assert [row.type for row in report.rows][:2] == ["Conv2D", "Conv2D.activation"]
    assert [row.other for row in report.rows][:2] == ["ZeroPad2d+Conv2d", "ReLU"]
    assert report.rows[-1].type == "Dense.activation" and report.rows[-1].other == "Softmax"
    assert model.layers[0].activation.__name__ == "relu"  # the model's own activation is back in place


def test_the_running_variance_convention_is_stated(keras):
    model = keras_cnn(keras, "float64")
    report = compare_models(keras_to_torch(model), model, batch((2, 9, 8)), grads=True)
    assert report.agree
    assert any("torch updates the running variance with the unbiased batch variance, keras with the biased one"
               in note for note in report.notes)


@pytest.mark.parametrize("make,message", [
    (lambda k: k.layers.MaxPooling2D(2, strides=1, padding="same"), r"layer 1 '\w+' \(MaxPool"),
    (lambda k: k.layers.Dense(3), r"layer 1 \(Dense\): a Dense layer on a \(4, 6, 6\) map"),
    (lambda k: k.layers.Conv2D(2, 3, activation="elu"), r"layer 1 \(Conv2D\): activation='elu'"),
    (lambda k: k.layers.Dropout(0.5, noise_shape=(None, 1, 1, 4)), r"layer 1 \(Dropout\): noise_shape"),
    (lambda k: k.layers.GlobalAveragePooling2D(), r"layer 1 \(GlobalAveragePooling2D\): no port"),
])
def test_unportable_keras_layers_are_refused_naming_them(keras, make, message):
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3), make(keras)])
    with pytest.raises(ValueError, match=message):
        keras_to_torch(model)


def test_a_model_without_an_input_shape_is_refused(keras):
    with pytest.raises(ValueError, match=r"start it with keras.Input\(\(H, W, C\)\)"):
        keras_to_torch(keras.Sequential([keras.layers.Conv2D(2, 3)]))
