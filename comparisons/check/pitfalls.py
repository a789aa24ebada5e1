"""Known pitfalls, recognised by planting them in the reference and comparing.

Each :class:`Pitfall` computes, for a configuration, what a layer with that mistake would give (the reference
run with the mistake planted: a flipped kernel, the padding on one side, a stride-1 window in backward, ...).
When the target's failing quantity equals the planted one (within the harness's tolerance) on the
configurations it failed, :func:`hints` names the mistake and how to fix it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .. import harness
from ..cases import Case, spec
from .matrix import Config
from .run import reference_run

Planted = dict[str, np.ndarray]  # reference keys ("forward", "dx", "0.weight", ...) -> what the mistake gives


@dataclass(frozen=True)
class Pitfall:
    """``name``, ``hint`` (what is wrong and the fix), ``families`` it concerns, ``plant(config, dtype)`` ->
    :data:`Planted`, or None where the mistake makes no difference in that configuration."""

    name: str
    hint: str
    families: tuple[str, ...]
    plant: Callable[[Config, str], Planted | None]


def _run_layer(layer, x, params: dict, dout) -> Planted:
    """``layer`` (a reference layer) on ``x`` with ``params``, back-propagating ``dout``."""
    for key, value in params.items():
        layer.params[key.split(".", 1)[1]] = value
    out = layer.forward(x)
    out = out[0] if isinstance(out, tuple) else out
    dx = layer.backward(dout)
    return {"forward": out, "dx": dx, **{f"0.{k}": v for k, v in layer.grads.items()}}


def _with(config: Config, **changes) -> Case:
    kw = {**config.kwargs, **changes}
    case = config.case
    return dataclasses.replace(case, specs=(spec(config.kind, **kw),))


def _build(case: Case, dtype: str):
    return harness.build_reference(case, "im2col", np.dtype(dtype)).layers[0]


def _flipped_kernel(config: Config, dtype: str) -> Planted | None:
    k = config.kwargs["kernel_size"]
    if k in (1, (1, 1)):
        return None
    run = reference_run(config, dtype)
    w = run.params["0.weight"]
    params = {**run.params, "0.weight": w[:, :, ::-1, ::-1].copy()}
    planted = _run_layer(_build(config.case, dtype), run.x, params, run.dout)
    planted["0.weight"] = planted["0.weight"][:, :, ::-1, ::-1]
    return planted


def _bias(transform) -> Callable[[Config, str], Planted | None]:
    def plant(config: Config, dtype: str) -> Planted | None:
        if not config.kwargs.get("bias", True):
            return None
        run = reference_run(config, dtype)
        dout = run.dout if run.dout.ndim in (2, 4) else run.dout[np.newaxis]
        return {"0.bias": transform(run.results["0.bias"], dout)}
    return plant


def _one_side(side: int) -> Callable[[Config, str], Planted | None]:
    def plant(config: Config, dtype: str) -> Planted | None:
        p = config.kwargs.get("padding", 0)
        if isinstance(p, str) or not isinstance(p, (int, tuple)):
            return None
        ph, pw = (p, p) if isinstance(p, int) else p
        if not (isinstance(ph, int) and isinstance(pw, int)) or ph + pw == 0:
            return None
        padding = ((2 * ph, 0), (2 * pw, 0)) if side == 0 else ((0, 2 * ph), (0, 2 * pw))
        run = reference_run(config, dtype)
        try:
            layer = _build(_with(config, padding=padding), dtype)
            return _run_layer(layer, run.x, run.params, run.dout)
        except ValueError:  # the shifted windows fall outside what the reference allows
            return None
    return plant


def _stride_in_backward(config: Config, dtype: str) -> Planted | None:
    """Backward as if the stride were 1: output (i, j)'s gradient goes to window (i, j); the forward is right."""
    k = config.kwargs.get("kernel_size", 1)
    s = config.kwargs.get("stride", 1)
    s = k if s is None else s
    if s in (1, (1, 1)):
        return None
    run = reference_run(config, dtype)
    layer = _build(_with(config, stride=1), dtype)
    x = run.x if run.x.ndim == 4 else run.x[np.newaxis]
    dout = run.dout if run.dout.ndim == 4 else run.dout[np.newaxis]
    out1 = layer.forward(x)
    out1 = out1[0] if isinstance(out1, tuple) else out1
    embedded = np.zeros_like(out1)
    ho, wo = min(dout.shape[2], out1.shape[2]), min(dout.shape[3], out1.shape[3])
    embedded[:, :, :ho, :wo] = dout[:, :, :ho, :wo]
    planted = _run_layer(layer, x, run.params, embedded)
    planted["forward"] = run.results["forward"]
    if run.x.ndim == 3:
        planted["dx"] = planted["dx"][0]
    return planted


def _all_ties(config: Config, dtype: str) -> Planted | None:
    """Max pooling whose backward gives ``dout`` to every cell equal to its window's maximum."""
    kw = config.kwargs
    if not config.ties or any(kw.get(o, d) not in (d, (d, d)) for o, d in (("dilation", 1), ("ceil_mode", False))):
        return None
    run = reference_run(config, dtype)
    x = run.x if run.x.ndim == 4 else run.x[np.newaxis]
    dout = run.dout if run.dout.ndim == 4 else run.dout[np.newaxis]
    (kh, kw_), (ph, pw) = (_pair(kw["kernel_size"]), _pair(kw.get("padding", 0)))
    sh, sw = _pair(kw.get("stride") or kw["kernel_size"])
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    dxp = np.zeros_like(xp)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            win = xp[:, :, i * sh: i * sh + kh, j * sw: j * sw + kw_]
            mask = win == win.max(axis=(2, 3), keepdims=True)
            dxp[:, :, i * sh: i * sh + kh, j * sw: j * sw + kw_] += mask * dout[:, :, i, j][..., None, None]
    dx = dxp[:, :, ph: ph + x.shape[2], pw: pw + x.shape[3]]
    return {"dx": dx if run.x.ndim == 4 else dx[0]}


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def _flatten_hwc(config: Config, dtype: str) -> Planted | None:
    run = reference_run(config, dtype)
    x = run.x if run.x.ndim == 4 else run.x[np.newaxis]
    n, c, h, w = x.shape
    out = x.transpose(0, 2, 3, 1).reshape(n, -1)
    dout = run.dout.reshape(n, -1)
    dx = dout.reshape(n, h, w, c).transpose(0, 3, 1, 2)
    return {"forward": out if run.x.ndim == 4 else out[0], "dx": dx if run.x.ndim == 4 else dx[0]}



PITFALLS: tuple[Pitfall, ...] = (
    Pitfall("tied maxima", "tied maxima: in a window whose maximum occurs several times, your backward gives the "
            "gradient to every tied cell; the reference and PyTorch give it to the first maximum only (as "
            "np.argmax over the flattened window), so that each window passes on dout exactly once",
            ("MaxPool2d",), _all_ties),
    Pitfall("flipped kernel", "flipped kernel: your layer computes a convolution (the kernel flipped in both "
            "spatial axes, as scipy.signal.convolve2d does); CNN layers compute cross-correlation, "
            "out[n, f, i, j] = sum over c, p, q of x[n, c, i*s + p, j*s + q] * w[f, c, p, q], with no flip",
            ("Conv2d",), _flipped_kernel),
    Pitfall("bias-gradient sign", "bias-gradient sign: your db is the negative of the right one; db = "
            "+dout summed over every axis but the channel axis (conv: axis=(0, 2, 3); linear: axis=0)",
            ("Conv2d", "Linear"), _bias(lambda db, dout: -db)),
    Pitfall("bias-gradient axis (one sample)", "bias-gradient sum axis: your db sums dout of the first sample "
            "only; sum over the batch axis too (conv: axis=(0, 2, 3); linear: axis=0)", ("Conv2d", "Linear"),
            _bias(lambda db, dout: dout[0].sum(axis=tuple(range(1, dout.ndim - 1)) or None) if dout.ndim == 4
                  else dout[0])),
    Pitfall("bias-gradient axis (mean)", "bias-gradient reduction: your db averages dout over the batch; the "
            "gradient of a sum is the sum (db = dout.sum over the batch and positions)", ("Conv2d", "Linear"),
            _bias(lambda db, dout: db / dout.shape[0])),
    Pitfall("padding on one side (top/left)", "padding on the wrong side: your layer pads 2*p rows and columns on "
            "the top and left only; padding p goes on both sides: np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))",
            ("Conv2d",), _one_side(0)),
    Pitfall("padding on one side (bottom/right)", "padding on the wrong side: your layer pads 2*p rows and columns "
            "on the bottom and right only; padding p goes on both sides: np.pad(x, ((0, 0), (0, 0), (p, p), "
            "(p, p)))", ("Conv2d",), _one_side(1)),
    Pitfall("stride not applied in backward", "stride not applied in backward: your backward sends output (i, j)'s "
            "gradient to the window starting at (i, j); with stride s it starts at (i*s, j*s), as in the forward",
            ("Conv2d", "MaxPool2d", "AvgPool2d"), _stride_in_backward),
    Pitfall("flatten order", "flatten order: your features are in H, W, C order (channels last, Keras'); the "
            "reference and PyTorch flatten (C, H, W) in C, H, W order: x.reshape(N, -1) on channels-first input",
            ("Flatten",), _flatten_hwc),
)


def matches(theirs: dict, planted: Planted, key: str, config: Config, dtype: str) -> bool:
    """Whether the target's ``key`` equals the planted one within the harness's tolerance (an exact match is
    the point: the reduction length of the configuration, at least 4)."""
    if key not in planted or theirs.get(key) is None:
        return False
    a, b = np.asarray(theirs[key], dtype=np.float64), np.asarray(planted[key], dtype=np.float64)
    if a.shape != b.shape:
        return False
    _, rel = harness.errors(a, b)
    run = reference_run(config, dtype)
    return rel <= harness.tolerance(dtype, run.reduction_length)


def hints(family: str, key: str, observed: list[tuple[Config, dict]], dtype: str) -> list[Pitfall]:
    """The pitfalls that explain the failing quantity ``key`` on every ``(config, target results)`` observed
    where the pitfall makes a difference (and on at least one)."""
    found = []
    for pitfall in PITFALLS:
        if family not in pitfall.families:
            continue
        seen = False
        for config, theirs in observed:
            try:
                planted = pitfall.plant(config, dtype)
            except (ValueError, TypeError, KeyError):
                planted = None
            if planted is None or key not in planted:
                continue
            if matches(reference_run(config, dtype).results, planted, key, config, dtype):
                continue  # the mistake changes nothing of this quantity here
            if not matches(theirs, planted, key, config, dtype):
                break
            seen = True
        else:
            if seen:
                found.append(pitfall)
    return found
