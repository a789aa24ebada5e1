"""The tutorial's classes as published (``../shared/tutorial.md``) as a target: ``--tutorial``.

- ``Conv(in_channels, out_channels, filter_size, pad=0, stride=1)``: square kernel, one stride and one zero
  padding for both axes; parameters in the attributes ``filters`` ``(F, C, k, k)`` and ``bias`` ``(F,)``;
  ``backward(dout) -> (dx, dw, db)``. Without bias the check sets ``bias`` to zeros and compares no ``db``.
- ``MaxPool2x2()``: 2x2 windows, stride 2, no padding; ``backward(dout) -> dx``.
- ``Linear(in_features, out_features)``: ``weights`` ``(D, M)`` (the reference's layout) and ``bias``;
  ``forward(x)`` flattens one sample to ``(1, D)`` and returns ``(1, M)``; ``backward(dout (1, M)) ->
  (dx, dw, db)``.

Every class takes one sample (a ``(C, H, W)`` image, one row for Linear): a batch runs sample by sample
(each backward right after its own forward) and the parameter gradients are summed over the batch.
"""

from __future__ import annotations

import numpy as np

from .styles import BUILD_REFUSALS, NotCovered, Subject, import_lines, require, single

STYLE = "tutorial"
ATTRIBUTES = {"Conv2d": {"weight": "filters", "bias": "bias"}, "Linear": {"weight": "weights", "bias": "bias"},
              "MaxPool2d": {}}


def arguments(family: str, kwargs: dict) -> tuple[tuple, dict]:
    """The tutorial constructor's arguments for a configuration, or :class:`NotCovered`."""
    if family == "Conv2d":
        for name, allowed in (("dilation", (1, (1, 1))), ("groups", (1,)), ("padding_mode", ("zeros",))):
            require(kwargs, name, allowed, STYLE)
        k = single(kwargs["kernel_size"], "kernel_size", STYLE)
        pad = single(kwargs.get("padding", 0), "padding", STYLE)
        if not isinstance(pad, int):
            raise NotCovered(f"{STYLE}: padding={pad!r} (Conv takes one integer pad)")
        return (kwargs["in_channels"], kwargs["out_channels"], k), {
            "pad": pad, "stride": single(kwargs.get("stride", 1), "stride", STYLE)}
    if family == "MaxPool2d":
        require(kwargs, "kernel_size", (2, (2, 2)), STYLE)
        require(kwargs, "stride", (None, 2, (2, 2)), STYLE)
        for name, allowed in (("padding", (0, (0, 0))), ("dilation", (1, (1, 1))), ("ceil_mode", (False,)),
                              ("return_indices", (False,))):
            require(kwargs, name, allowed, STYLE)
        return (), {}
    if family == "Linear":
        return (kwargs["in_features"], kwargs["out_features"]), {}
    raise NotCovered(f"{STYLE}: the tutorial has no class for {family} (it has Conv, MaxPool2x2, Linear)")


class _TutorialSubject(Subject):
    """A tutorial instance driven sample by sample."""

    def __init__(self, family: str, obj, bias: bool) -> None:
        super().__init__()
        self.family, self.obj, self.bias = family, obj, bias
        self._x = None

    def _put(self, dtype) -> None:
        names = ATTRIBUTES[self.family]
        for key, attr in names.items():
            if key in self.params:
                setattr(self.obj, attr, np.array(self.params[key]))
        if "bias" in names and not self.bias:
            self.obj.bias = np.zeros(np.shape(self.params["weight"])[0 if self.family == "Conv2d" else 1], dtype)

    def _samples(self, x):
        """The samples one call takes, and whether ``x`` is already one."""
        one = x.ndim == (1 if self.family == "Linear" else 3)
        return ([x] if one else list(x)), one

    def _forward_one(self, sample):
        out = self.obj.forward(sample)
        return np.asarray(out)[0] if self.family == "Linear" else out

    def forward(self, x):
        self._put(x.dtype)
        self._x = x
        samples, one = self._samples(x)
        outs = [self._forward_one(s) for s in samples]
        return outs[0] if one else np.stack(outs)

    def backward(self, dout):
        samples, one = self._samples(self._x)
        douts = [dout] if one else list(dout)
        dxs, sums = [], {}
        for sample, d in zip(samples, douts, strict=True):
            self._forward_one(sample)
            result = self.obj.backward(d[np.newaxis] if self.family == "Linear" else d)
            if isinstance(result, tuple):
                dx, *grads = result
                for key, g in zip(("weight", "bias"), grads, strict=False):
                    sums[key] = sums.get(key, 0) + np.asarray(g)
            else:
                dx = result
            dxs.append(np.asarray(dx).reshape(np.shape(sample)))
        self.grads = {key: value for key, value in sums.items() if key in self.params}
        return dxs[0] if one else np.stack(dxs)


class TutorialStyle:
    """The tutorial's class ``target`` for one layer family (see the module docstring)."""

    name = "tutorial"

    def __init__(self, target, spec: str | None = None) -> None:
        self.target, self.spec = target, spec

    def build(self, family: str, kwargs: dict) -> Subject:
        args, options = arguments(family, kwargs)
        try:
            obj = self.target(*args, **options)
        except BUILD_REFUSALS as exc:
            raise NotCovered(f"constructor raised {type(exc).__name__}: {exc}") from exc
        return _TutorialSubject(family, obj, kwargs.get("bias", True))

    def reproducer(self, family: str, kwargs: dict) -> list[str]:
        args, options = arguments(family, kwargs)
        name = getattr(self.target, "__name__", "target")
        call = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in options.items())])
        lines = [*import_lines(self.target, self.spec), f"layer = {name}({call})",
                 "from comparisons.check.tutorial import _TutorialSubject",
                 f"subject = _TutorialSubject({family!r}, layer, bias={kwargs.get('bias', True)!r})",
                 "subject.params.update(params)  # the attributes are set at each forward, one sample at a time",
                 "out = subject.forward(x)", "dx = subject.backward(dout)", "grads = dict(subject.grads)"]
        return lines
