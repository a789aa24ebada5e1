"""PyTorch in the comparisons: the case's model as ``torch.nn`` modules, with the reference's parameters.

Conventions bridged here: ``nn.Linear.weight`` is ``(out, in)`` (the reference's is
``(in, out)``); everything else is already channels-first and OIHW. Batch norm is PyTorch's
convention in the reference (momentum, eps, unbiased running variance), so it maps one to one.
Dropout in training mode applies the reference's keep-mask with torch ops (``x * mask / (1 - p)``,
what ``nn.Dropout`` computes with its own random mask); in evaluation mode it is ``nn.Dropout`` itself.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from comparisons.cases import Case, LayerSpec, spec
from comparisons.frameworks.protocol import RunInputs

from ..layouts import linear_from_torch, linear_to_torch


class MaskedDropout(nn.Module):
    """Inverted dropout with a given keep-mask ``(N, ...)``: ``x * mask / (1 - p)``."""

    def __init__(self, p: float, mask: torch.Tensor) -> None:
        super().__init__()
        self.p, self.mask = p, mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask / (1 - self.p)


class ExplicitlyPaddedConv2d(nn.Conv2d):
    """``nn.Conv2d`` after ``F.pad(x, (left, right, top, bottom), mode)``: the asymmetric padding
    ``((top, bottom), (left, right))`` that ``nn.Conv2d`` takes only through ``padding="same"``
    (it is what ``nn.Conv2d`` itself does for ``"same"`` or a ``padding_mode`` other than zeros)."""

    def __init__(self, *args, pads, padding_mode: str = "zeros", **kwargs) -> None:
        super().__init__(*args, padding=0, **kwargs)
        (top, bottom), (left, right) = pads
        self.pad_widths, self.pad_mode = (left, right, top, bottom), padding_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mode = "constant" if self.pad_mode == "zeros" else self.pad_mode
        return self._conv_forward(F.pad(x, self.pad_widths, mode=mode), self.weight, self.bias)


def _is_pads(padding) -> bool:
    """True for ``((top, bottom), (left, right))``, False for an int, ``(ph, pw)`` or a string."""
    return isinstance(padding, tuple) and all(isinstance(p, tuple) for p in padding)


def _conv(kw: dict, dtype: torch.dtype, mask: np.ndarray | None) -> nn.Module:
    """``nn.Conv2d``, or :class:`ExplicitlyPaddedConv2d` for ``((top, bottom), (left, right))`` padding."""
    args = (kw["in_channels"], kw["out_channels"], kw["kernel_size"])
    options = {"stride": kw["stride"], "dilation": kw["dilation"], "bias": kw["bias"],
               "groups": kw.get("groups", 1), "padding_mode": kw.get("padding_mode", "zeros"), "dtype": dtype}
    if _is_pads(kw["padding"]):
        return ExplicitlyPaddedConv2d(*args, pads=kw["padding"], **options)
    return nn.Conv2d(*args, padding=kw["padding"], **options)


def _batchnorm(kw: dict, dtype: torch.dtype, mask: np.ndarray | None) -> nn.Module:
    return nn.BatchNorm2d(kw["num_features"], eps=kw["eps"], momentum=kw["momentum"], dtype=dtype)


def _dropout(kw: dict, dtype: torch.dtype, mask: np.ndarray | None) -> nn.Module:
    """``nn.Dropout``, or :class:`MaskedDropout` applying the reference's keep-mask when there is one."""
    return nn.Dropout(kw["p"]) if mask is None else MaskedDropout(kw["p"], torch.from_numpy(mask).to(dtype))


def _linear(kw: dict, dtype: torch.dtype, mask: np.ndarray | None) -> nn.Module:
    return nn.Linear(kw["in_features"], kw["out_features"], bias=kw["bias"], dtype=dtype)


# kind -> builder(kwargs, dtype, keep-mask or None) of its module; the reference's argument names are PyTorch's
BUILDERS: dict[str, Callable[[dict, torch.dtype, np.ndarray | None], nn.Module]] = {
    "conv": _conv,
    # the reference's names and weight layout (C, F/groups, kh, kw) are PyTorch's
    "convtranspose": lambda kw, dtype, mask: nn.ConvTranspose2d(**kw, dtype=dtype),
    "layernorm": lambda kw, dtype, mask: nn.LayerNorm(**kw, dtype=dtype),
    # size, scale_factor, mode, align_corners, recompute_scale_factor: the reference's names and defaults
    "upsample": lambda kw, dtype, mask: nn.Upsample(**kw),
    "groupnorm": lambda kw, dtype, mask: nn.GroupNorm(**kw, dtype=dtype),
    "gelu": lambda kw, dtype, mask: nn.GELU(**kw),
    "softmax": lambda kw, dtype, mask: nn.Softmax(**kw),
    # float32_slope: the reference's switch for PyTorch's own backward
    "hardsigmoid": lambda kw, dtype, mask: nn.Hardsigmoid(),
    # kernel_size, stride, padding and the options, as the reference spells them
    "maxpool": lambda kw, dtype, mask: nn.MaxPool2d(**kw),
    "avgpool": lambda kw, dtype, mask: nn.AvgPool2d(**{"count_include_pad": True, **kw}),
    "globalavgpool": lambda kw, dtype, mask: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
    "adaptiveavgpool": lambda kw, dtype, mask: nn.AdaptiveAvgPool2d(**kw),
    "adaptivemaxpool": lambda kw, dtype, mask: nn.AdaptiveMaxPool2d(**kw),
    # not x.amax(dim=(2, 3)): amax splits a tied maximum's gradient evenly
    "globalmaxpool": lambda kw, dtype, mask: nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten()),
    "batchnorm": _batchnorm,
    "dropout": _dropout,
    "relu": lambda kw, dtype, mask: nn.ReLU(),
    "leakyrelu": lambda kw, dtype, mask: nn.LeakyReLU(kw["negative_slope"]),
    "sigmoid": lambda kw, dtype, mask: nn.Sigmoid(),
    "tanh": lambda kw, dtype, mask: nn.Tanh(),
    "flatten": lambda kw, dtype, mask: nn.Flatten(),
    "linear": _linear,
}


def layer_module(s: LayerSpec, dtype: torch.dtype, mask: np.ndarray | None = None) -> nn.Module:
    """The module of spec ``s`` (its kind's builder in :data:`BUILDERS`), ``mask`` the keep-mask of a dropout."""
    builder = BUILDERS.get(s.kind)
    if builder is None:
        raise ValueError(f"frameworks.pytorch: unknown layer kind {s.kind!r}")
    return builder(s.kwargs, dtype, mask)


def _to_torch(key: str, value: np.ndarray, module: nn.Module) -> np.ndarray:
    return linear_to_torch(value) if isinstance(module, nn.Linear) and key == "weight" else value


def _from_torch(key: str, value: np.ndarray, module: nn.Module) -> np.ndarray:
    return linear_from_torch(value) if isinstance(module, nn.Linear) and key == "weight" else value


def build(case: Case, params: dict[str, np.ndarray], dtype: str, buffers: dict[str, np.ndarray] | None = None,
          masks: dict[int, np.ndarray] | None = None) -> nn.Sequential:
    """``nn.Sequential`` of the case's layers carrying the reference's ``params`` and ``buffers`` (running
    statistics), in the case's mode; dropout layers listed in ``masks`` apply that keep-mask."""
    tdtype, masks = getattr(torch, dtype), masks or {}
    model = nn.Sequential(*(layer_module(s, tdtype, masks.get(i)) for i, s in enumerate(case.specs)))
    with torch.no_grad():
        for key, value in {**params, **(buffers or {})}.items():
            index, pname = key.split(".", 1)
            module = model[int(index)]
            getattr(module, pname).copy_(torch.from_numpy(_to_torch(pname, value, module)))
    return model.train(not case.eval_mode)


def unsupported(case: Case) -> str | None:
    """PyTorch expresses every case of the matrix, except the reference's non-PyTorch options (batch norm's
    ``unbiased_running_var=False``, the binary cross-entropy's ``clip_epsilon``)."""
    if case.binary_loss is not None and case.binary_loss.clip_epsilon is not None:
        return ("binary_cross_entropy: clip_epsilon is Keras' clipping of the probabilities; F.binary_cross_entropy "
                "clamps each log at -100")
    for i, s in enumerate(case.specs):
        if s.kind == "batchnorm" and not s.kwargs["unbiased_running_var"]:
            return (f"layer {i} (batchnorm): nn.BatchNorm2d always folds the unbiased batch variance into "
                    f"running_var; unbiased_running_var=False is Keras' convention")
    return None


def reference_case(case: Case) -> Case:
    """The reference's defaults are PyTorch's conventions, except Hardsigmoid's gradient: PyTorch's CPU backward
    multiplies by ``1/6`` rounded to float32 in every dtype (``Hardsigmoid(float32_slope=True)``)."""
    if not any(s.kind == "hardsigmoid" for s in case.specs):
        return case
    specs = tuple(spec("hardsigmoid", float32_slope=True) if s.kind == "hardsigmoid" else s for s in case.specs)
    return dataclasses.replace(case, specs=specs)


def binary_cross_entropy(option, out: torch.Tensor, target: np.ndarray, loss_args: dict) -> torch.Tensor:
    """``F.binary_cross_entropy`` or ``F.binary_cross_entropy_with_logits`` of ``out`` for the
    :class:`~comparisons.cases_options.BinaryCrossEntropyOption` ``option`` (weight, pos_weight, reduction from
    ``loss_args``)."""
    weights = {k: None if loss_args[k] is None else torch.from_numpy(loss_args[k]) for k in ("weight", "pos_weight")}
    fn = F.binary_cross_entropy_with_logits if option.logits else F.binary_cross_entropy
    return fn(out, torch.from_numpy(target), **option.kwargs(weights["weight"], weights["pos_weight"]))


def run(case: Case, inputs: RunInputs) -> dict[str, np.ndarray]:
    """See :class:`comparisons.frameworks.protocol.Framework`."""
    params, buffers, labels, loss_args = inputs.params, inputs.buffers, inputs.labels, inputs.loss_args
    model = build(case, params, inputs.dtype, buffers, inputs.masks)
    xt = torch.from_numpy(inputs.x).requires_grad_(True)
    h, indices = xt, {}
    for i, module in enumerate(model):
        with warnings.catch_warnings():  # a performance note, not a numerical one
            warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")
            h = module(h)
        if isinstance(h, tuple):  # return_indices=True: (out, indices)
            h, idx = h
            indices[f"{i}.indices"] = idx.numpy()
    out = h
    results = {"forward": out.detach().numpy(), **indices}
    if case.binary_loss is not None:
        loss = binary_cross_entropy(case.binary_loss, out, labels, loss_args)
        results["loss"] = loss.detach().numpy()
        loss.backward(torch.as_tensor(loss_args["dloss"], dtype=loss.dtype))
    elif labels is not None:
        option = case.loss_option
        weight = loss_args.get("weight")
        options = option.kwargs(None if weight is None else torch.from_numpy(weight)) if option else {}
        loss = F.cross_entropy(out, torch.from_numpy(labels), **options)
        results["loss"] = loss.detach().numpy()
        loss.backward(torch.as_tensor(loss_args.get("dloss", 1.0), dtype=loss.dtype))
    else:
        out.backward(torch.from_numpy(inputs.dout))
    results["dx"] = xt.grad.numpy()
    for key in params:
        index, pname = key.split(".", 1)
        module = model[int(index)]
        results[key] = _from_torch(pname, getattr(module, pname).grad.numpy(), module)
    for key in buffers:
        index, pname = key.split(".", 1)
        results[key] = getattr(model[int(index)], pname).numpy().copy()
    return results
