"""``cnnref diff``: the per-layer table, the first divergence, exit 0 when the models agree and 1 when not."""

from __future__ import annotations

import json

import pytest

from comparisons.port import framework_port, torch_to_keras

from .helpers import TORCH_CNN_INPUT, torch_cnn
from .test_command import run_cli

pytestmark = [pytest.mark.torch, pytest.mark.keras]


@pytest.fixture
def saved_pair(tmp_path):
    """A PyTorch model and its Keras port, saved."""
    import torch

    model = torch_cnn("float64")
    torch_path, keras_path = tmp_path / "model.pt", tmp_path / "model.keras"
    torch.save(model, torch_path)
    torch_to_keras(model, TORCH_CNN_INPUT).save(keras_path)
    return torch_path, keras_path


def test_diff_of_a_port_agrees_and_exits_0(tmp_path, capsys, saved_pair):
    torch_path, keras_path = saved_pair
    markdown, report = tmp_path / "diff.md", tmp_path / "diff.json"
    code, out, err = run_cli(capsys, "diff", "--torch", torch_path, "--keras", keras_path, "--trust-pickle",
                             "--grads", "--markdown", markdown, "--json", report)
    assert (code, err) == (0, "")
    assert "| 0 | `1` | ZeroPad2d+Conv2d | ZeroPadding2D+Conv2D | 2x4x5x5 |" in out
    assert "first divergence: none" in out and markdown.read_text() == out
    found = json.loads(report.read_text())
    assert found["agree"] and found["grads"] and found["input_shape"] == [2, 3, 10, 10]


def test_diff_locates_a_planted_mistake_and_exits_1(tmp_path, capsys, saved_pair):
    torch_path, keras_path = saved_pair
    keras_port = framework_port("keras")
    model = keras_port.load(keras_path)
    next(layer for layer in model.layers if type(layer).__name__ == "BatchNormalization").epsilon = 1e-3
    model.save(keras_path)
    code, out, err = run_cli(capsys, "diff", "--torch", torch_path, "--keras", keras_path, "--trust-pickle",
                             "--input-shape", "3,10,10", "--batch", "3")
    assert code == 1 and err == ""
    assert "first divergence: layer 1 '2' (BatchNorm2d) (audit finding: batchnorm-momentum-epsilon)" in out
    assert "| 1 | `2` | BatchNorm2d | BatchNormalization | 3x4x5x5 |" in out and "eps 1e-05 vs 0.001" in out


def test_diff_refuses_a_torch_pickle_without_trust_pickle(capsys, saved_pair):
    torch_path, keras_path = saved_pair
    code, out, err = run_cli(capsys, "diff", "--torch", torch_path, "--keras", keras_path)
    assert code == 2 and "--trust-pickle" in err and out == ""


@pytest.mark.parametrize("flags,message", [
    (["--keras", "KERAS"], "give both --torch FILE and --keras FILE"),
    (["--torch", "TORCH", "--keras", "KERAS", "--trust-pickle", "--batch", "0"], "--batch must be at least 1"),
    (["--torch", "TORCH", "--keras", "KERAS", "--trust-pickle", "--input-shape", "3,9,9"],
     "x must be (N, C, H, W) = (N, 3, 10, 10), the Keras model's input"),
])
def test_diff_bad_input_exits_2(capsys, saved_pair, flags, message):
    torch_path, keras_path = saved_pair
    argv = [{"TORCH": str(torch_path), "KERAS": str(keras_path)}.get(f, f) for f in flags]
    code, _, err = run_cli(capsys, "diff", *argv)
    assert code == 2 and message in err, err
