"""``cnnref port``: a saved PyTorch model to Keras and back, the pickle warning, exit codes."""

from __future__ import annotations

import pytest

from comparisons.port import compare_models, framework_port

from .helpers import TORCH_CNN_INPUT, batch, run_cli, torch_cnn

pytestmark = [pytest.mark.torch, pytest.mark.keras]


@pytest.fixture
def saved_torch(tmp_path):
    import torch

    model = torch_cnn("float64")
    path = tmp_path / "model.pt"
    torch.save(model, path)
    return model, path


def test_port_torch_to_keras_and_back(tmp_path, capsys, saved_torch):
    model, path = saved_torch
    keras_path, back_path = tmp_path / "model.keras", tmp_path / "back.pt"
    code, out, err = run_cli(capsys, "port", "--torch", path, "--to", "keras", "--out", keras_path,
                             "--input-shape", "3,10,10", "--trust-pickle")
    assert (code, err) == (0, "") and str(keras_path) in out
    keras_model = framework_port("keras").load(keras_path)
    assert compare_models(model, keras_model, batch(TORCH_CNN_INPUT)).agree
    code, out, err = run_cli(capsys, "port", "--keras", keras_path, "--to", "torch", "--out", back_path)
    assert (code, err) == (0, "")
    back = framework_port("torch").load(back_path)
    assert compare_models(model, back, batch(TORCH_CNN_INPUT), grads=True).agree


def test_port_refuses_a_torch_pickle_without_trust_pickle(tmp_path, capsys, saved_torch):
    _, path = saved_torch
    code, out, err = run_cli(capsys, "port", "--torch", path, "--to", "keras", "--out", tmp_path / "m.keras",
                             "--input-shape", "3,10,10")
    assert code == 2 and "runs code stored in the file" in err and "--trust-pickle" in err
    assert not (tmp_path / "m.keras").exists()


@pytest.mark.parametrize("flags,message", [
    (["--to", "keras", "--out", "m.keras"], "give exactly one of --torch FILE, --keras FILE"),
    (["--torch", "MODEL", "--to", "keras", "--out", "m.h5", "--input-shape", "3,10,10", "--trust-pickle"],
     "--out must end in .keras"),
    (["--torch", "MODEL", "--to", "keras", "--out", "m.keras", "--trust-pickle"], "--input-shape C,H,W is needed"),
    (["--torch", "MODEL", "--to", "torch", "--out", "m.pt"], "already a torch model"),
    (["--keras", "absent.keras", "--to", "torch", "--out", "m.pt"], "no such file"),
])
def test_port_bad_flags_exit_2(tmp_path, capsys, saved_torch, flags, message):
    _, path = saved_torch
    argv = [str(path) if f == "MODEL" else (str(tmp_path / f) if f.startswith(("m.", "absent")) else f) for f in flags]
    code, _, err = run_cli(capsys, "port", *argv)
    assert code == 2 and message in err, err


def test_port_bad_input_shape_is_an_argparse_error(tmp_path, capsys, saved_torch):
    _, path = saved_torch
    code, _, err = run_cli(capsys, "port", "--torch", path, "--to", "keras", "--out", tmp_path / "m.keras",
                           "--input-shape", "3,10")
    assert code == 2 and "expected C,H,W" in err


def test_port_of_an_unportable_layer_names_it_and_exits_2(tmp_path, capsys):
    import torch
    from torch import nn

    path = tmp_path / "model.pt"
    torch.save(nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2, dilation=2)), path)
    code, _, err = run_cli(capsys, "port", "--torch", path, "--to", "keras", "--out", tmp_path / "m.keras",
                           "--input-shape", "1,9,9", "--trust-pickle")
    assert code == 2 and "layer 1 '1' (MaxPool2d)" in err and "dilated max pool" in err
