"""A case's PyTorch model as an ONNX graph: :func:`..pytorch.model.build` (the reference's parameters, buffers and
dropout masks, in the case's mode), wrapped with the loss, exported by ``torch.onnx.export(dynamo=False)``.

The graph's inputs are ``x`` ``(N, C, H, W)`` or ``(N, F)`` and, for a case with a loss, ``labels`` (int64,
``(N,)`` or ``(N, d1, ...)``; a binary cross-entropy's targets: floats shaped like ``x``); its outputs are the
model's output, then each max pooling's indices (``(N, C, H', W')`` int64, PyTorch's flat per-plane indices) in
layer order, then the loss (``()`` or ``(N, d1, ...)`` for ``reduction="none"``). Parameters, buffers, masks,
class weights and ``pos_weight`` are constants of the graph. Exporting costs 0.01-0.3 s, so graphs are kept per
(case, dtype, values) in the process (:func:`exported`).
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from comparisons.cases import Case

from ..pytorch import model as torch_model
from . import OPSET

CACHE_SIZE = 64  # graphs kept; verify runs a case's implementations one after the other


class WithLoss(nn.Module):
    """The case's ``nn.Sequential`` returning ``(out, *indices, loss?)``: see the module docstring."""

    def __init__(self, model: nn.Sequential, case: Case, weight: np.ndarray | None,
                 pos_weight: np.ndarray | None = None) -> None:
        super().__init__()
        self.model, self.option, self.binary = model, case.loss_option, case.binary_loss
        self.weight = None if weight is None else torch.from_numpy(weight)
        self.pos_weight = None if pos_weight is None else torch.from_numpy(pos_weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        h, indices = x, []
        for module in self.model:
            h = module(h)
            if isinstance(h, tuple):  # return_indices=True: (out, indices)
                h, idx = h
                indices.append(idx)
        if labels is None:
            return (h, *indices)
        if self.binary is not None:
            fn = F.binary_cross_entropy_with_logits if self.binary.logits else F.binary_cross_entropy
            return (h, *indices, fn(h, labels, **self.binary.kwargs(self.weight, self.pos_weight)))
        options = self.option.kwargs(self.weight) if self.option else {}
        return (h, *indices, F.cross_entropy(h, labels, **options))


def _digest(*groups) -> str:
    """A digest of every array the graph bakes in (parameters, buffers, masks, class weights)."""
    h = hashlib.sha256()
    for group in groups:
        for key, value in sorted((group or {}).items(), key=lambda kv: str(kv[0])):
            if value is None:
                continue
            a = np.ascontiguousarray(value)
            h.update(f"{key}:{a.dtype}:{a.shape}".encode())
            h.update(a.tobytes())
    return h.hexdigest()


def export(case: Case, params: dict[str, np.ndarray], x: np.ndarray, dtype: str, labels: np.ndarray | None,
           buffers: dict[str, np.ndarray] | None = None, masks: dict[int, np.ndarray] | None = None,
           weight: np.ndarray | None = None, pos_weight: np.ndarray | None = None) -> bytes:
    """The serialized ONNX model of ``case`` (``x`` and ``labels`` fix the traced shapes)."""
    module = WithLoss(torch_model.build(case, params, dtype, buffers, masks), case, weight, pos_weight)
    module.train(not case.eval_mode)
    args = (torch.from_numpy(x),) + (() if labels is None else (torch.from_numpy(labels),))
    names = ["x"] + ([] if labels is None else ["labels"])
    mode = torch.onnx.TrainingMode.EVAL if case.eval_mode else torch.onnx.TrainingMode.PRESERVE
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # tracer and exporter notes, not numerical ones
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, buffer, dynamo=False, opset_version=OPSET, input_names=names,
                          training=mode, do_constant_folding=False)
    return buffer.getvalue()


_graphs: OrderedDict[tuple, bytes] = OrderedDict()


def exported(case: Case, params, x, dtype, labels, buffers=None, masks=None, weight=None,
             pos_weight=None) -> tuple[tuple, bytes]:
    """``(key, model bytes)``: :func:`export`, kept per (case, dtype, input shape, values baked in)."""
    key = (case, dtype, x.shape, None if labels is None else labels.shape,
           _digest(params, buffers, masks, {"weight": weight, "pos_weight": pos_weight}))
    if key in _graphs:
        _graphs.move_to_end(key)
    else:
        _graphs[key] = export(case, params, x, dtype, labels, buffers, masks, weight, pos_weight)
        while len(_graphs) > CACHE_SIZE:
            _graphs.popitem(last=False)
    return key, _graphs[key]
