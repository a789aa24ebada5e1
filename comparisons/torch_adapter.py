"""PyTorch side of the harness: the case's model as ``torch.nn`` modules, same parameters.

Conventions bridged here: ``nn.Linear.weight`` is ``(out, in)`` (the reference's is
``(in, out)``); everything else is already channels-first and OIHW.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .cases import Case, LayerSpec
from .layouts import linear_from_torch, linear_to_torch

name = "torch"
version = torch.__version__


def _module(s: LayerSpec, dtype: torch.dtype) -> nn.Module:
    kw = s.kwargs
    if s.kind == "conv":
        return nn.Conv2d(kw["in_channels"], kw["out_channels"], kw["kernel_size"], stride=kw["stride"],
                         padding=kw["padding"], dilation=kw["dilation"], bias=kw["bias"], dtype=dtype)
    if s.kind == "maxpool":
        return nn.MaxPool2d(kw["kernel_size"], stride=kw["stride"], padding=kw["padding"])
    if s.kind == "avgpool":
        return nn.AvgPool2d(kw["kernel_size"], stride=kw["stride"], padding=kw["padding"], count_include_pad=True)
    if s.kind == "relu":
        return nn.ReLU()
    if s.kind == "flatten":
        return nn.Flatten()
    if s.kind == "linear":
        return nn.Linear(kw["in_features"], kw["out_features"], bias=kw["bias"], dtype=dtype)
    raise ValueError(f"torch_adapter: unknown layer kind {s.kind!r}")


def _to_torch(key: str, value: np.ndarray, module: nn.Module) -> np.ndarray:
    return linear_to_torch(value) if isinstance(module, nn.Linear) and key == "weight" else value


def _from_torch(key: str, value: np.ndarray, module: nn.Module) -> np.ndarray:
    return linear_from_torch(value) if isinstance(module, nn.Linear) and key == "weight" else value


def build(case: Case, params: dict[str, np.ndarray], dtype: str) -> nn.Sequential:
    """``nn.Sequential`` of the case's layers carrying the reference's ``params``."""
    tdtype = getattr(torch, dtype)
    model = nn.Sequential(*(_module(s, tdtype) for s in case.specs))
    with torch.no_grad():
        for key, value in params.items():
            index, pname = key.split(".", 1)
            module = model[int(index)]
            getattr(module, pname).copy_(torch.from_numpy(_to_torch(pname, value, module)))
    return model


def unsupported(case: Case) -> str | None:
    return None


def run(case: Case, params: dict[str, np.ndarray], x: np.ndarray, dtype: str,
        dout: np.ndarray | None, labels: np.ndarray | None) -> dict[str, np.ndarray]:
    """See :class:`comparisons.harness.Adapter`."""
    model = build(case, params, dtype)
    xt = torch.from_numpy(x).requires_grad_(True)
    out = model(xt)
    results = {"forward": out.detach().numpy()}
    if labels is not None:
        loss = F.cross_entropy(out, torch.from_numpy(labels))
        results["loss"] = loss.detach().numpy()
        loss.backward()
    else:
        out.backward(torch.from_numpy(dout))
    results["dx"] = xt.grad.numpy()
    for key in params:
        index, pname = key.split(".", 1)
        module = model[int(index)]
        results[key] = _from_torch(pname, getattr(module, pname).grad.numpy(), module)
    return results
