"""Max and average pooling, two ways, sharing one window/padding path.

Shapes: ``x (N, C, H, W)`` -> ``(N, C, H', W')`` (or one ``(C, H, W)`` image).
``stride`` defaults to ``kernel_size``; padding is symmetric and at most half the
kernel (PyTorch's rule). Max pooling pads with ``-inf``, so padding never wins the
max; its gradient goes to the first maximum of each window in row-major order, and
overlapping windows accumulate. Average pooling divides by ``kh*kw`` always
(``count_include_pad=True``: padded zeros count).
"""

from __future__ import annotations

import numpy as np

from .conv import IMPLS
from .layer import SpatialLayer
from .validation import as_pair, check_choice
from .windows import offset_views, output_size, pad_spatial, sliding_windows, unpad_spatial, window_slices


class _Pool2d(SpatialLayer):
    """What max and average pooling share: arguments, padding, output size, dispatch."""

    pad_value = 0.0

    def __init__(self, kernel_size, stride=None, padding=0, impl: str = "im2col") -> None:
        super().__init__()
        where = self.name
        self.kernel_size = as_pair(kernel_size, where, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else as_pair(stride, where, "stride", 1)
        self.padding = as_pair(padding, where, "padding", 0)
        self.dilation = (1, 1)
        self.impl = check_choice(impl, IMPLS, where, "impl")
        for p, k in zip(self.padding, self.kernel_size, strict=True):
            if p > k // 2:
                raise ValueError(
                    f"{where}: padding must be at most half the kernel size, got padding="
                    f"{self.padding} for kernel_size={self.kernel_size}"
                )

    def __repr__(self) -> str:
        return (
            f"{self.name}(kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, impl={self.impl!r})"
        )

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``(C, H, W)`` or ``(N, C, H, W)`` -> ``(C, H', W')`` or ``(N, C, H', W')``."""
        x, single = self._batch(self._input(x))
        out_hw = output_size(x.shape[2:], self.kernel_size, self.stride, self.padding, self.dilation,
                             f"{self.name}.forward")
        xp = pad_spatial(x, self.padding, value=self.pad_value)
        if self.impl == "loop":
            out, cache = self._loop_forward(xp, out_hw)
        else:
            out, cache = self._windows_forward(sliding_windows(xp, self.kernel_size, self.stride, self.dilation))
        self._cache = (xp.shape, cache, single)
        return self._finish_forward(out, single)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dout`` shaped like the output -> ``dx`` shaped like the input."""
        dout = self._upstream(dout)
        xp_shape, cache, single = self._cache
        d = dout[np.newaxis] if single else dout
        dxp = np.zeros(xp_shape, dtype=d.dtype)
        if self.impl == "loop":
            for i, j, rows, cols in window_slices(d.shape[2:], self.kernel_size, self.stride, self.dilation):
                dxp[:, :, rows, cols] += self._loop_window_grad(cache[:, :, rows, cols], d[:, :, i, j])
        else:
            self._windows_backward(dxp, cache, d)
        dx = unpad_spatial(dxp, self.padding)
        return dx[0] if single else dx

    def _offset_views(self, dxp, d):
        """``(a, b, view)`` per kernel offset (see :func:`offset_views`) and whether the windows
        are disjoint (stride >= kernel), in which case each element of ``dxp`` is in one view at most."""
        disjoint = all(s >= k for s, k in zip(self.stride, self.kernel_size, strict=True))
        return offset_views(dxp, d.shape[2:], self.kernel_size, self.stride, self.dilation), disjoint

    def _loop_forward(self, xp, out_hw):
        out = np.empty((*xp.shape[:2], *out_hw), dtype=xp.dtype)
        for i, j, rows, cols in window_slices(out_hw, self.kernel_size, self.stride, self.dilation):
            out[:, :, i, j] = self._reduce(xp[:, :, rows, cols].reshape(*xp.shape[:2], -1))
        return out, xp


class MaxPool2d(_Pool2d):
    """``MaxPool2d(kernel_size, stride=None, padding=0, impl="im2col")``; ``MaxPool2d(2)`` is
    the tutorial's ``MaxPool2x2``."""

    pad_value = -np.inf

    @staticmethod
    def _reduce(flat_windows):
        return flat_windows.max(axis=-1)

    @staticmethod
    def _loop_window_grad(region, g):
        """``region (N, C, kh, kw)`` gets ``g (N, C)`` at its first maximum (row-major)."""
        first_max = region.reshape(*region.shape[:2], -1).argmax(axis=-1)
        onehot = np.arange(region.shape[2] * region.shape[3]) == first_max[..., None]
        return onehot.reshape(region.shape) * g[..., None, None]

    def _windows_forward(self, win):
        # a running maximum over the kh*kw offsets: one pass over (N, C, H', W') per offset,
        # no copy of the windows
        kh, kw = win.shape[-2:]
        out = win[..., 0, 0].copy()
        for a in range(kh):
            for b in range(kw):
                if a or b:
                    np.maximum(out, win[..., a, b], out=out)
        return out, (win, out)

    def _windows_backward(self, dxp, cache, d):
        """Offsets in row-major order; each window's gradient goes to the first offset equal to its max."""
        win, out = cache
        free = np.ones(out.shape, dtype=bool)  # windows whose maximum is not found yet
        views, disjoint = self._offset_views(dxp, d)
        for a, b, view in views:
            hit = np.equal(win[..., a, b], out)
            hit |= np.isnan(win[..., a, b])  # as argmax (and the loop): a NaN is the maximum
            hit &= free
            free ^= hit
            if disjoint:
                np.multiply(hit, d, out=view)
            else:
                view += hit * d


class AvgPool2d(_Pool2d):
    """``AvgPool2d(kernel_size, stride=None, padding=0, impl="im2col")``, dividing by
    ``kh*kw`` (PyTorch's ``count_include_pad=True``)."""

    @staticmethod
    def _reduce(flat_windows):
        return flat_windows.mean(axis=-1)

    @staticmethod
    def _loop_window_grad(region, g):
        """Every element of ``region (N, C, kh, kw)`` gets ``g / (kh*kw)``."""
        return np.broadcast_to(g[..., None, None] / (region.shape[2] * region.shape[3]), region.shape)

    def _windows_forward(self, win):
        # sum the kh*kw offsets one (N, C, H', W') pass at a time, then divide, as ``mean`` does
        kh, kw = win.shape[-2:]
        out = win[..., 0, 0].copy()
        for a in range(kh):
            for b in range(kw):
                if a or b:
                    out += win[..., a, b]
        out /= kh * kw
        return out, win.shape

    def _windows_backward(self, dxp, win_shape, d):
        g = d / (self.kernel_size[0] * self.kernel_size[1])
        views, disjoint = self._offset_views(dxp, d)
        for _, _, view in views:
            if disjoint:
                np.copyto(view, g)
            else:
                view += g
