"""BatchNorm2d: the formulas in both modes, the running statistics, gradients, errors."""

from __future__ import annotations

import numpy as np
import pytest

from reference import BatchNorm2d, Sequential, max_rel_error
from tests.reference.helpers import assert_gradients_match


def random_bn(c: int, rng: np.random.Generator, **kwargs) -> BatchNorm2d:
    bn = BatchNorm2d(c, **kwargs)
    bn.params["weight"] = rng.uniform(0.5, 1.5, c)
    bn.params["bias"] = rng.standard_normal(c)
    bn.buffers["running_mean"] = rng.standard_normal(c)
    bn.buffers["running_var"] = rng.uniform(0.5, 2.0, c)
    return bn


@pytest.mark.parametrize("shape", [(3, 4, 5, 2), (4, 3, 3), (5, 2, 1, 1)], ids=["batch", "single", "1x1"])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_gradients(shape, mode):
    rng = np.random.default_rng(0)
    c = shape[1] if len(shape) == 4 else shape[0]
    bn = random_bn(c, rng)
    bn.train(mode == "train")
    assert_gradients_match(bn, 3.0 + 2.0 * rng.standard_normal(shape), rng)


def test_training_forward_normalises_each_channel_with_batch_statistics():
    rng = np.random.default_rng(1)
    x = 4.0 + 3.0 * rng.standard_normal((6, 3, 4, 5))
    bn = random_bn(3, rng, eps=1e-3)
    out = bn.forward(x)
    for ch in range(3):
        xc = x[:, ch]
        expected = (xc - xc.mean()) / np.sqrt(xc.var() + 1e-3) * bn.params["weight"][ch] + bn.params["bias"][ch]
        assert max_rel_error(out[:, ch], expected) < 1e-14


@pytest.mark.parametrize("unbiased", [True, False])
def test_running_statistics_update(unbiased):
    """PyTorch's rule by default (unbiased variance folded in); Keras' biased variance on request."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 4, 4)) * 2 + 1
    bn = random_bn(3, rng, momentum=0.3, unbiased_running_var=unbiased)
    mean0, var0 = bn.buffers["running_mean"].copy(), bn.buffers["running_var"].copy()
    bn.forward(x)
    per_channel = x.transpose(1, 0, 2, 3).reshape(3, -1)
    batch_var = per_channel.var(axis=1, ddof=1 if unbiased else 0)
    assert max_rel_error(bn.buffers["running_mean"], 0.7 * mean0 + 0.3 * per_channel.mean(axis=1)) < 1e-15
    assert max_rel_error(bn.buffers["running_var"], 0.7 * var0 + 0.3 * batch_var) < 1e-15


def test_eval_uses_running_statistics_and_updates_nothing():
    rng = np.random.default_rng(3)
    bn = random_bn(2, rng).eval()
    before = {k: v.copy() for k, v in bn.buffers.items()}
    x = rng.standard_normal((3, 2, 4, 4))
    out = bn.forward(x)
    scale = bn.params["weight"] / np.sqrt(before["running_var"] + bn.eps)
    expected = (x - before["running_mean"][:, None, None]) * scale[:, None, None] + bn.params["bias"][:, None, None]
    assert max_rel_error(out, expected) < 1e-14
    for key, value in before.items():
        np.testing.assert_array_equal(bn.buffers[key], value, err_msg=key)


def test_float32_computes_in_float32():
    bn = BatchNorm2d(3, dtype=np.float32)
    out = bn.forward(np.random.default_rng(4).standard_normal((2, 3, 4, 4)))
    assert out.dtype == np.float32 and bn.buffers["running_var"].dtype == np.float32
    assert bn.backward(np.ones_like(out)).dtype == np.float32


def test_sequential_buffers_are_live():
    rng = np.random.default_rng(5)
    model = Sequential([BatchNorm2d(2), BatchNorm2d(2)])
    assert list(model.buffers) == ["0.running_mean", "0.running_var", "1.running_mean", "1.running_var"]
    assert model.buffers["1.running_var"] is model.layers[1].buffers["running_var"]
    model.forward(rng.standard_normal((3, 2, 2, 2)) + 5)
    assert np.all(model.buffers["0.running_mean"] > 0.4)  # moved towards the batch mean ~5 (momentum 0.1)
    model.buffers["0.running_mean"] = np.zeros(2)
    assert np.array_equal(model.layers[0].buffers["running_mean"], np.zeros(2))
    with pytest.raises(KeyError, match="no buffer"):
        model.buffers["0.num_batches_tracked"] = np.zeros(())
    assert "0.running_mean" not in model.params


@pytest.mark.parametrize("call,error,match", [
    (lambda: BatchNorm2d(0), ValueError, "num_features must be positive, got 0"),
    (lambda: BatchNorm2d(3, eps=0.0), ValueError, r"eps must be a finite number > 0.0, got 0.0"),
    (lambda: BatchNorm2d(3, momentum=1.5), ValueError, r"momentum must be in \[0, 1\], got 1.5"),
    (lambda: BatchNorm2d(3, momentum="0.1"), TypeError, "momentum must be a real number"),
    (lambda: BatchNorm2d(3).forward(np.zeros((2, 4, 3, 3))), ValueError, r"num_features=3 channels.*\(2, 4, 3, 3\)"),
    (lambda: BatchNorm2d(3).forward(np.zeros((3, 5))), ValueError, r"3 or 4 dims .* got shape \(3, 5\)"),
    (lambda: BatchNorm2d(3).forward(np.zeros((1, 3, 1, 1))), ValueError, r"more than 1 value per channel"),
    (lambda: BatchNorm2d(3).backward(np.zeros((1, 3, 2, 2))), RuntimeError, "backward called before forward"),
])
def test_bad_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_bad_buffer_shape_is_named():
    bn = BatchNorm2d(3)
    bn.buffers["running_var"] = np.ones(4)
    with pytest.raises(ValueError, match=r"buffers\['running_var'\] must be an array of shape \(3,\), got \(4,\)"):
        bn.eval().forward(np.zeros((2, 3, 2, 2)))


def test_defaults_are_pytorchs():
    """torch.nn.BatchNorm2d's documented defaults: eps=1e-5, momentum=0.1, affine weight 1 and bias 0,
    running mean 0 and variance 1, the unbiased variance in running_var (written here, not read from code)."""
    bn = BatchNorm2d(3)
    assert bn.eps == 1e-5 and bn.momentum == 0.1 and bn.unbiased_running_var is True
    assert bn.params["weight"].tolist() == [1.0] * 3 and bn.params["bias"].tolist() == [0.0] * 3
    assert bn.buffers["running_mean"].tolist() == [0.0] * 3 and bn.buffers["running_var"].tolist() == [1.0] * 3
