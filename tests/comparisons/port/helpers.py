"""Models the port tests share: the tutorial CNN and the VGG-style CNN of the case matrix (reference models), and a
PyTorch CNN with every ported layer kind, each with random parameters and statistics so that no term is 0 or 1."""

from __future__ import annotations

import numpy as np

from comparisons import cases, cli

# (C, H, W) of one input image of each model
TORCH_CNN_INPUT = (3, 10, 10)
TUTORIAL_INPUT = (1, 28, 28)
VGG_INPUT = (3, 8, 8)


def torch_cnn(dtype: str, dropout: float = 0.0, seed: int = 0):
    """conv after an asymmetric ``ZeroPad2d`` at stride 2, batch norm, ReLU, conv with ``padding="same"``, max and
    average pooling (padded, counting the padding), dropout, flatten, two linear layers; the batch norm's running
    statistics and affine parameters random. Input ``(N, 3, 10, 10)``, output ``(N, 5)``."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(3, 4, 3, stride=2), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Sequential(nn.Conv2d(4, 6, 3, padding="same"), nn.MaxPool2d(2)),
        nn.AvgPool2d(2, padding=1), nn.Dropout(dropout), nn.Flatten(), nn.Linear(6 * 2 * 2, 8), nn.ReLU(),
        nn.Linear(8, 5)).to(getattr(torch, dtype))
    with torch.no_grad():
        bn = model[2]
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1.0, 1.0)
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    return model.eval()


def reference_cnn(name: str, dtype: str):
    """The case matrix's ``"tutorial"`` or ``"vgg"`` model in the reference (random BN statistics for the VGG), with
    the VGG's dropout set to p=0 so that training-mode gradients are deterministic."""
    case = {"tutorial": cases.tutorial_cases()[1], "vgg": cases.vgg_cases()[0]}[name]
    model = cases.build_reference(case, "im2col", np.dtype(dtype)).eval()
    for layer in model.layers:
        if hasattr(layer, "p"):
            layer.p = 0.0
    return model


def batch(shape, n: int = 2, seed: int = 1) -> np.ndarray:
    """A float64 standard-normal ``(n, *shape)`` input."""
    return np.random.default_rng(seed).standard_normal((n, *shape))


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``cnnref argv`` (argparse's own errors, SystemExit(2), included)."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err
