"""CS231n function pairs as a target: ``--functions module:conv_forward_naive,module:conv_backward_naive``.

The pairs, per layer family (batches only: a single ``(C, H, W)`` image gets a batch axis of 1):

- ``Conv2d``: ``conv_forward_naive(x (N, C, H, W), w (F, C, HH, WW), b (F,), {"stride": s, "pad": p})
  -> (out, cache)``, ``conv_backward_naive(dout, cache) -> (dx, dw, db)``: one stride and one zero padding
  for both axes, no dilation or groups; without bias, ``b`` is zeros and ``db`` is not compared.
- ``MaxPool2d``, ``AvgPool2d``: ``max_pool_forward_naive(x, {"pool_height", "pool_width", "stride"}) ->
  (out, cache)``, ``max_pool_backward_naive(dout, cache) -> dx``: no padding.
- ``Linear``: ``affine_forward(x (N, D), w (D, M), b (M,)) -> (out, cache)``, ``affine_backward(dout, cache)
  -> (dx, dw, db)``; ``w`` is the reference's layout.
- ``ReLU``: ``relu_forward(x) -> (out, cache)``, ``relu_backward(dout, cache) -> dx``.
"""

from __future__ import annotations

import numpy as np

from .styles import NotCovered, Subject, require, single
from .targets import TargetError, load

FAMILIES = ("Conv2d", "MaxPool2d", "AvgPool2d", "Linear", "ReLU")
STYLE = "CS231n functions"


def parse(spec: str) -> tuple[str, str]:
    """``"m:fwd,m:bwd"`` -> the two target strings; TargetError when it is not two of them."""
    parts = [p.strip() for p in str(spec).split(",")]
    if len(parts) != 2 or not all(parts):
        raise TargetError(f"--functions: expected 'module:forward_fn,module:backward_fn', got {spec!r}")
    return parts[0], parts[1]


def _options(family: str, kwargs: dict) -> dict:
    """The functions' extra arguments for a configuration, or :class:`NotCovered`."""
    if family == "Conv2d":
        for name, allowed in (("dilation", (1, (1, 1))), ("groups", (1,)), ("padding_mode", ("zeros",))):
            require(kwargs, name, allowed, STYLE)
        pad = single(kwargs.get("padding", 0), "padding", STYLE)
        if not isinstance(pad, int):
            raise NotCovered(f"{STYLE}: padding={pad!r} (conv_param['pad'] is one integer)")
        return {"stride": single(kwargs.get("stride", 1), "stride", STYLE), "pad": pad}
    if family in ("MaxPool2d", "AvgPool2d"):
        for name, allowed in (("padding", (0, (0, 0))), ("dilation", (1, (1, 1))), ("ceil_mode", (False,)),
                              ("return_indices", (False,)), ("divisor_override", (None,))):
            require(kwargs, name, allowed, STYLE)
        k = kwargs["kernel_size"]
        kh, kw = (k, k) if isinstance(k, int) else k
        stride = kwargs.get("stride")
        return {"pool_height": kh, "pool_width": kw,
                "stride": single(stride if stride is not None else (kh, kw), "stride", STYLE)}
    if family in ("Linear", "ReLU"):
        return {}
    raise NotCovered(f"{STYLE}: no function pair for {family} (the style has {list(FAMILIES)})")


class _FunctionSubject(Subject):
    """One configuration run through a forward/backward function pair."""

    def __init__(self, family: str, forward_fn, backward_fn, options: dict, bias: bool) -> None:
        super().__init__()
        self.family, self.fwd, self.bwd, self.options, self.bias = family, forward_fn, backward_fn, options, bias
        self._single = False

    def _weights(self, dtype):
        w = np.array(self.params["weight"])
        b = np.array(self.params["bias"]) if self.bias else np.zeros(w.shape[0 if self.family == "Conv2d" else 1],
                                                                      dtype)
        return w, b

    def forward(self, x):
        self._single = self.family != "Linear" and x.ndim == 3
        xb = x[np.newaxis] if self._single else x
        if self.family in ("Conv2d", "Linear"):
            w, b = self._weights(x.dtype)
            args = (xb, w, b) + ((dict(self.options),) if self.family == "Conv2d" else ())
        elif self.family == "ReLU":
            args = (xb,)
        else:
            args = (xb, dict(self.options))
        out, self._cache = self.fwd(*args)
        return out[0] if self._single else out

    def backward(self, dout):
        result = self.bwd(dout[np.newaxis] if self._single else dout, self._cache)
        if self.family in ("Conv2d", "Linear"):
            dx, dw, db = result
            self.grads = {"weight": dw, **({"bias": db} if self.bias else {})}
        else:
            dx = result
        return dx[0] if self._single else dx


class FunctionsStyle:
    """A forward/backward function pair for one layer family (see the module docstring)."""

    name = "functions"

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.forward_spec, self.backward_spec = parse(spec)
        self.fwd, self.bwd = load(self.forward_spec, "--functions"), load(self.backward_spec, "--functions")

    def build(self, family: str, kwargs: dict) -> Subject:
        options = _options(family, kwargs)
        return _FunctionSubject(family, self.fwd, self.bwd, options, kwargs.get("bias", True))

    def reproducer(self, family: str, kwargs: dict) -> list[str]:
        options = _options(family, kwargs)
        lines = ["from comparisons.check.targets import load",
                 f"forward_fn, backward_fn = load({self.forward_spec!r}), load({self.backward_spec!r})"]
        if family in ("Conv2d", "Linear"):
            bias = "params['bias']" if kwargs.get("bias", True) else \
                f"np.zeros(params['weight'].shape[{0 if family == 'Conv2d' else 1}])"
            extra = f", {options!r}" if family == "Conv2d" else ""
            lines += [f"out, cache = forward_fn(x, params['weight'], {bias}{extra})",
                      "dx, dw, db = backward_fn(dout, cache)",
                      "grads = {'weight': dw" + (", 'bias': db}" if kwargs.get("bias", True) else "}")]
        else:
            args = "x" if family == "ReLU" else f"x, {options!r}"
            lines += [f"out, cache = forward_fn({args})", "dx = backward_fn(dout, cache)", "grads = {}"]
        return lines
