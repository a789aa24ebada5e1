"""Upsampling (``torch.nn.Upsample``): nearest, nearest-exact and bilinear resizing of ``(N, C, H, W)`` maps.

Shapes: ``x (N, C, H, W)`` (or one ``(C, H, W)`` image) -> ``(N, C, OH, OW)``, with ``OH = size`` or
``floor(H * scale_factor)`` (in float64), per axis.

The resize is separable: per axis, output position ``o`` reads input positions ``i0[o]`` (nearest modes) or
``i0[o]``, ``i1[o]`` with weights ``l0[o]``, ``l1[o]`` (bilinear). :func:`axis_plan` computes these once per input
shape and dtype, with PyTorch's CPU arithmetic, measured on torch 2.13 (``tests/reference/test_upsample.py``
checks it bit for bit):

- the *scale* of an axis is ``1 / scale_factor`` (computed in float64) when a scale factor is given and
  ``recompute_scale_factor`` is not True, else ``in / out``; bilinear with ``align_corners=True`` uses
  ``(in - 1) / (out - 1)`` (0 when ``out == 1``) whatever was given;
- ``"nearest"``: the scale rounded to float32, ``i0 = min(floor(float32(o) * scale), in - 1)`` in float32, except
  that an axis with ``out == in`` copies (``i0 = o``) and one with ``out == 2 * in`` takes ``o >> 1``: with a scale
  factor that is not exactly 1 or 2 (``scale_factor=1.1`` on 5 cells gives 5 cells) these differ from the formula;
- ``"nearest-exact"``: the same float32 scale, ``i0 = min(floor(float32((o + 0.5) * scale)), in - 1)`` (the
  product in float64), without the two special cases;
- ``"bilinear"``: in the input's dtype, ``src = scale * o`` (``align_corners``) or
  ``max(fma(scale, o + 0.5, -0.5), 0)`` (PyTorch's kernel is compiled with a fused multiply-add here: the
  difference is one rounding), ``i0 = min(floor(float32(src)), in - 1)``, ``l1 = clip(src - i0, 0, 1)``,
  ``l0 = 1 - l1``, ``i1 = min(i0 + 1, in - 1)``; an axis with ``out == in`` copies (``l0 = 1``, ``l1 = 0``).

The forward gathers along the width, then along the height (PyTorch's order: ``wh0 * (ww0 * x[h0, w0] +
ww1 * x[h0, w1]) + wh1 * (...)``); the backward is its transpose, each output's gradient added to the input cells
it read, times their weights. ``impl="loop"`` walks the output cells one at a time (vectorized over N and C);
``impl="im2col"`` gathers whole axes with ``np.take`` in the forward and multiplies by one ``(out, in)``
interpolation matrix per axis in the backward, ``dx = A_h.T @ dout @ A_w``; when that gradient is not finite, the
matrices' zeros may have met an infinite or NaN ``dout``, and the backward adds each output's gradient to the cells
it read instead (``np.add.at``), so its infinities and NaNs are the loop's and PyTorch's. Both read the same
:func:`axis_plan`.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import NamedTuple

import numpy as np

from .conv import IMPLS
from .layer import SpatialLayer
from .validation import (
    MAX_INT,
    all_finite,
    as_pair,
    as_real_pair,
    check_choice,
    check_exactly_one,
    check_optional_bool,
)

MODES = ("nearest", "nearest-exact", "bilinear")


class AxisPlan(NamedTuple):
    """Where each output position of one axis reads: ``i0`` (int64, ``(out,)``); bilinear also ``i1`` and the
    weights ``l0``, ``l1`` (in the input's dtype), None for the nearest modes."""

    i0: np.ndarray
    i1: np.ndarray | None = None
    l0: np.ndarray | None = None
    l1: np.ndarray | None = None

    def terms(self, o: int) -> list[tuple[int, float | None]]:
        """``[(input index, weight), ...]`` read by output position ``o`` (weight None: a copy)."""
        if self.l0 is None:
            return [(int(self.i0[o]), None)]
        return [(int(self.i0[o]), self.l0[o]), (int(self.i1[o]), self.l1[o])]

    def matrix(self, size: int, dtype) -> np.ndarray:
        """``A (out, in)``: ``out = A @ x`` along this axis (repeated indices add up)."""
        a = np.zeros((len(self.i0), size), dtype=dtype)
        rows = np.arange(len(self.i0))
        if self.l0 is None:
            np.add.at(a, (rows, self.i0), 1)
        else:
            np.add.at(a, (rows, self.i0), self.l0)
            np.add.at(a, (rows, self.i1), self.l1)
        return a

    def longest_sum(self) -> int:
        """The most output positions any input position receives a gradient from along this axis."""
        hits = self.i0 if self.i1 is None else np.concatenate([self.i0, self.i1])
        return int(np.bincount(hits).max()) if hits.size else 1


def _fused(scale, o: int, dtype) -> np.floating:
    """``fma(scale, o + 0.5, -0.5)`` rounded once to ``dtype`` (exact rational arithmetic)."""
    exact = Fraction(float(scale)) * Fraction(2 * o + 1, 2) - Fraction(1, 2)
    return dtype.type(float(exact))


def axis_plan(size: int, out: int, mode: str, align_corners: bool, scale_factor: float | None, dtype) -> AxisPlan:
    """The :class:`AxisPlan` of one axis from ``size`` to ``out`` cells (see the module docstring);
    ``scale_factor`` is None when the scale is ``size / out`` (an explicit size, or recomputed)."""
    dtype = np.dtype(dtype)
    o = np.arange(out)
    if mode != "bilinear":
        scale = np.float32(1.0 / scale_factor) if scale_factor is not None else np.float32(size) / np.float32(out)
        if mode == "nearest-exact":
            src = np.floor(((o + 0.5) * np.float64(scale)).astype(np.float32))
        elif out == size:
            src = o
        elif out == 2 * size:
            src = o >> 1
        else:
            src = np.floor(o.astype(np.float32) * scale)
        return AxisPlan(np.minimum(src.astype(np.int64), size - 1))
    if out == size:
        return AxisPlan(o, o, np.ones(out, dtype), np.zeros(out, dtype))
    ft = dtype.type
    if align_corners:
        scale = ft(size - 1) / ft(out - 1) if out > 1 else ft(0)
        src = scale * o.astype(dtype)
    else:
        scale = ft(1.0 / scale_factor) if scale_factor is not None else ft(size) / ft(out)
        src = np.maximum(np.array([_fused(scale, k, dtype) for k in range(out)], dtype=dtype), ft(0))
    i0 = np.minimum(np.floor(src.astype(np.float32)).astype(np.int64), size - 1)
    l1 = np.clip(src - i0.astype(dtype), ft(0), ft(1)).astype(dtype)
    return AxisPlan(i0, np.minimum(i0 + 1, size - 1), (ft(1) - l1).astype(dtype), l1)


def _gather(x: np.ndarray, plan: AxisPlan, axis: int) -> np.ndarray:
    """``x`` resized along ``axis`` (-1 or -2) by ``plan``: ``x[i0] * l0 + x[i1] * l1``, or ``x[i0]``."""
    first = np.take(x, plan.i0, axis=axis)
    if plan.l0 is None:
        return first
    shape = (-1,) if axis == -1 else (-1, 1)
    return first * plan.l0.reshape(shape) + np.take(x, plan.i1, axis=axis) * plan.l1.reshape(shape)


def _scatter(d: np.ndarray, plan: AxisPlan, size: int, axis: int) -> np.ndarray:
    """Adjoint of :func:`_gather` along ``axis`` (-1 or -2), to ``size`` cells: each output position's gradient
    added to the input cells it read, times their weights (``np.add.at``: only the terms there are)."""
    moved = np.moveaxis(d, axis, 0)
    out = np.zeros((size, *moved.shape[1:]), dtype=d.dtype)
    if plan.l0 is None:
        np.add.at(out, plan.i0, moved)
    else:
        weights = (-1,) + (1,) * (moved.ndim - 1)
        np.add.at(out, plan.i0, moved * plan.l0.reshape(weights))
        np.add.at(out, plan.i1, moved * plan.l1.reshape(weights))
    return np.moveaxis(out, 0, axis)


class Upsample(SpatialLayer):
    """``Upsample(size=None, scale_factor=None, mode="nearest", align_corners=None, recompute_scale_factor=None,
    impl="im2col")``, as ``torch.nn.Upsample`` on 4-d inputs (and on one ``(C, H, W)`` image as a batch of one).

    Exactly one of ``size`` (an int or ``(OH, OW)``) and ``scale_factor`` (a positive number or a pair) is given.
    ``mode``: ``"nearest"``, ``"nearest-exact"`` or ``"bilinear"``. ``align_corners`` (bilinear only, as
    PyTorch raises otherwise; None means False) maps the corner cells' centres onto each other.
    ``recompute_scale_factor=True`` (with ``scale_factor`` only) interpolates with ``in / out`` instead of
    ``1 / scale_factor``. No parameters; computes in the input's dtype.
    """

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners: bool | None = None,
                 recompute_scale_factor: bool | None = None, impl: str = "im2col") -> None:
        super().__init__()
        where = "Upsample"
        check_exactly_one(where, size=size, scale_factor=scale_factor)
        self.size = None if size is None else as_pair(size, where, "size", 1)
        self.scale_factor = None if scale_factor is None else as_real_pair(
            scale_factor, where, "scale_factor", minimum=0.0, min_inclusive=False)
        self.mode = check_choice(mode, MODES, where, "mode")
        self.align_corners = check_optional_bool(align_corners, where, "align_corners")
        if self.align_corners is not None and self.mode != "bilinear":
            raise ValueError(f"{where}: align_corners can only be set with mode='bilinear' (PyTorch's interpolating "
                             f"modes), got align_corners={align_corners!r} with mode={mode!r}")
        self.recompute_scale_factor = check_optional_bool(recompute_scale_factor, where, "recompute_scale_factor")
        if self.recompute_scale_factor and self.size is not None:
            raise ValueError(f"{where}: recompute_scale_factor=True is not meaningful with an explicit size "
                             f"(size={size!r}); give scale_factor instead")
        self.impl = check_choice(impl, IMPLS, where, "impl")
        self._plans: tuple | None = None

    def __repr__(self) -> str:
        return (f"Upsample(size={self.size}, scale_factor={self.scale_factor}, mode={self.mode!r}, "
                f"align_corners={self.align_corners}, recompute_scale_factor={self.recompute_scale_factor}, "
                f"impl={self.impl!r})")

    def output_hw(self, hw) -> tuple[int, int]:
        """``(OH, OW)`` for an input ``(H, W)``; ValueError when it is empty or too large."""
        if self.size is not None:
            out = self.size
        else:
            out = tuple(math.floor(float(n) * s) for n, s in zip(hw, self.scale_factor, strict=True))
        if min(hw) < 1 or min(out) < 1 or max(out) > MAX_INT:
            raise ValueError(f"Upsample.forward: input and output sizes must be positive (and at most {MAX_INT}), "
                             f"got input {tuple(hw)} and output {tuple(out)} (size={self.size}, "
                             f"scale_factor={self.scale_factor})")
        return out

    def plans(self, hw, dtype) -> tuple[AxisPlan, AxisPlan]:
        """The :class:`AxisPlan` of the height and of the width for an input ``(H, W)`` in ``dtype`` (kept per
        shape)."""
        key = (tuple(hw), np.dtype(dtype))
        if self._plans is None or self._plans[0] != key:
            out = self.output_hw(hw)
            scales = (None, None) if self.size is not None or self.recompute_scale_factor else self.scale_factor
            plans = tuple(axis_plan(n, o, self.mode, bool(self.align_corners), s, dtype)
                          for n, o, s in zip(hw, out, scales, strict=True))
            self._plans = (key, plans, None)
        return self._plans[1]

    def _matrices(self, hw, dtype) -> tuple[np.ndarray, np.ndarray]:
        """``(A_h, A_w)`` of the current plans (built at the first backward of a shape)."""
        key, plans, mats = self._plans
        if mats is None:
            mats = tuple(p.matrix(n, dtype) for p, n in zip(plans, hw, strict=True))
            self._plans = (key, plans, mats)
        return mats

    def longest_sum(self, hw, dtype=np.float64) -> int:
        """The longest sum behind any output (4 bilinear terms, 1 nearest) or input gradient."""
        ph, pw = self.plans(hw, dtype)
        return max(1 if self.mode != "bilinear" else 4, ph.longest_sum() * pw.longest_sum())

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``(C, H, W)`` or ``(N, C, H, W)`` -> ``(C, OH, OW)`` or ``(N, C, OH, OW)``."""
        x, single = self._batch(self._input(x))
        ph, pw = self.plans(x.shape[2:], x.dtype)
        if self.impl == "loop":
            out = np.empty((*x.shape[:2], len(ph.i0), len(pw.i0)), dtype=x.dtype)
            for oh in range(out.shape[2]):
                for ow in range(out.shape[3]):
                    out[:, :, oh, ow] = self._interpolate(x, ph.terms(oh), pw.terms(ow))
        else:
            out = _gather(_gather(x, pw, -1), ph, -2)
        self._cache = (x.shape, x.dtype, single)
        return self._finish_forward(np.ascontiguousarray(out), single)

    @staticmethod
    def _interpolate(x, h_terms, w_terms) -> np.ndarray:
        """One output cell: ``sum_h wh * (sum_w x[h, w] * ww)`` (weight None: the cell itself)."""
        total = None
        for h, wh in h_terms:
            row = None
            for w, ww in w_terms:
                term = x[:, :, h, w] if ww is None else x[:, :, h, w] * ww
                row = term if row is None else row + term
            row = row if wh is None else row * wh
            total = row if total is None else total + row
        return total

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dout`` shaped like the output -> ``dx`` shaped like the input."""
        dout = self._upstream(dout)
        x_shape, dtype, single = self._cache
        d = (dout[np.newaxis] if single else dout).astype(dtype, copy=False)
        hw = x_shape[2:]
        ph, pw = self.plans(hw, dtype)
        if self.impl == "loop":
            dx = np.zeros(x_shape, dtype=dtype)
            for oh in range(d.shape[2]):
                for ow in range(d.shape[3]):
                    g = d[:, :, oh, ow]
                    for h, wh in ph.terms(oh):
                        gh = g if wh is None else g * wh
                        for w, ww in pw.terms(ow):
                            dx[:, :, h, w] += gh if ww is None else gh * ww
        else:
            a_h, a_w = self._matrices(hw, dtype)
            dx = np.ascontiguousarray(a_h.T @ (d @ a_w))
            if not all_finite(dx):
                # the matrices' zeros times a non-finite dout are NaN in cells that output never read: add each
                # output's gradient to the cells it read only, as the loop does
                dx = np.ascontiguousarray(_scatter(_scatter(d, ph, hw[0], -2), pw, hw[1], -1))
        return dx[0] if single else dx
