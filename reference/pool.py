"""Max and average pooling, two ways, sharing one window/padding path.

Shapes: ``x (N, C, H, W)`` -> ``(N, C, H', W')`` (or one ``(C, H, W)`` image).
``stride`` defaults to ``kernel_size``; padding is symmetric and at most half the
kernel (PyTorch's rule). Max pooling pads with ``-inf``, so padding never wins the
max; its gradient goes to the first maximum of each window in row-major order, and
overlapping windows accumulate. Average pooling divides by ``kh*kw`` by default
(``count_include_pad=True``: padded zeros count).

The options follow ``torch.nn.MaxPool2d`` / ``AvgPool2d`` and are keyword-only here:
``dilation`` and ``return_indices`` (max), ``ceil_mode`` (both), ``count_include_pad`` and
``divisor_override`` (average). Under ``ceil_mode`` the last window may reach past the
right padding (it must start on the input or the left padding, see ``output_size``); the
input is padded further there (``-inf`` / zeros), and an average window counts only the
cells it covers (``pool_divisors``). A window whose taps all lie in the padding (possible with
dilation) is refused with a ValueError: PyTorch returns ``-inf`` there and its backward may crash.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from .conv import IMPLS
from .layer import SpatialLayer
from .validation import all_finite, as_pair, check_bool, check_choice
from .windows import (
    check_windows_touch_input,
    inside_taps,
    offset_views,
    output_size,
    overhang,
    pad_spatial,
    pool_divisors,
    sliding_windows,
    unpad_spatial,
    window_slices,
)


class PoolGeometry(NamedTuple):
    """What pooling inputs of one spatial size share: ``out_hw``; ``extra``, the ``ceil_mode`` overhang
    (:func:`overhang`); ``divisors`` ``(H', W')`` in the input's dtype (average pooling) or None;
    ``inside``, the taps that read the input (:func:`inside_taps`) or None; ``tiled``: the windows tile
    the padded input (stride = kernel, no dilation), so a backward writes every cell of its gradient."""

    out_hw: tuple[int, int]
    extra: tuple[int, int]
    divisors: np.ndarray | None
    inside: tuple[np.ndarray, np.ndarray] | None
    tiled: bool


class _Pool2d(SpatialLayer):
    """What max and average pooling share: arguments, padding, output size, dispatch."""

    pad_value = 0.0

    def __init__(self, kernel_size, stride=None, padding=0, impl: str = "im2col", dilation=1,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        where = self.name
        self.kernel_size = as_pair(kernel_size, where, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else as_pair(stride, where, "stride", 1)
        self.padding = as_pair(padding, where, "padding", 0)
        self.dilation = as_pair(dilation, where, "dilation", 1)
        self.ceil_mode = check_bool(ceil_mode, where, "ceil_mode")
        self.impl = check_choice(impl, IMPLS, where, "impl")
        self._geometry_key: tuple | None = None
        self._geometry_value: PoolGeometry | None = None
        for p, k in zip(self.padding, self.kernel_size, strict=True):
            if p > k // 2:
                raise ValueError(
                    f"{where}: padding must be at most half the kernel size, got padding="
                    f"{self.padding} for kernel_size={self.kernel_size}"
                )

    def _options(self) -> str:
        """The non-default options, for ``repr``."""
        return ", ceil_mode=True" if self.ceil_mode else ""

    def __repr__(self) -> str:
        return (
            f"{self.name}(kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}{self._options()}, impl={self.impl!r})"
        )

    def _divisors(self, size, out_hw) -> np.ndarray | None:
        """What each output is divided by (average pooling), or None."""
        return None

    def _settings(self) -> tuple:
        """Everything the output size and the divisors depend on, besides the input."""
        return self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode

    def _geometry(self, hw, dtype) -> PoolGeometry:
        """The :class:`PoolGeometry` of inputs of spatial size ``hw`` in ``dtype``: checked and computed on the
        first call with that size and these settings, then reused, since the checks cost more than pooling a
        small image."""
        key = (hw, dtype, self._settings())
        if self._geometry_key != key:
            geometry = (self.kernel_size, self.stride, self.padding, self.dilation)
            out_hw = output_size(hw, *geometry, f"{self.name}.forward", self.ceil_mode)
            check_windows_touch_input(hw, *geometry, out_hw, f"{self.name}.forward")
            divisors = self._divisors(hw, out_hw)
            extra = overhang(hw, *geometry, out_hw)
            tiled = all(s == k and d == 1 and o * s == n + 2 * p + e for n, k, s, p, d, o, e in
                        zip(hw, *geometry, out_hw, extra, strict=True))
            self._geometry_value = PoolGeometry(out_hw, extra, None if divisors is None else divisors.astype(dtype),
                                                inside_taps(hw, *geometry, out_hw), tiled)
            self._geometry_key = key
        return self._geometry_value

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``(C, H, W)`` or ``(N, C, H, W)`` -> ``(C, H', W')`` or ``(N, C, H', W')``."""
        x, single = self._batch(self._input(x))
        geometry = self._geometry(x.shape[2:], x.dtype)
        (oh, ow) = geometry.out_hw
        xp = pad_spatial(x, self.padding, value=self.pad_value, extra=geometry.extra)
        if self.impl == "loop":
            out, cache = self._loop_forward(xp, geometry.out_hw)
        else:
            win = sliding_windows(xp, self.kernel_size, self.stride, self.dilation)
            out, cache = self._windows_forward(win[:, :, :oh, :ow])
        if geometry.divisors is not None:
            out /= geometry.divisors
        self._cache = (xp.shape, cache, single, geometry)
        return self._finish_forward(out, single)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dout`` shaped like the output -> ``dx`` shaped like the input."""
        dout = self._upstream(dout)
        xp_shape, cache, single, geometry = self._cache
        inside = geometry.inside
        d = dout[np.newaxis] if single else dout
        if geometry.divisors is not None:
            d = d / geometry.divisors
        # the im2col backward writes every cell of windows that tile the padded input: no zeros needed first
        tiled = geometry.tiled and self.impl != "loop"
        dxp = (np.empty if tiled else np.zeros)(xp_shape, dtype=d.dtype)
        if self.impl == "loop":
            for i, j, rows, cols in window_slices(d.shape[2:], self.kernel_size, self.stride, self.dilation):
                taps = None if inside is None else inside[0][i][:, None] & inside[1][j][None, :]
                dxp[:, :, rows, cols] += self._loop_window_grad(cache[:, :, rows, cols], d[:, :, i, j], taps)
        else:
            self._windows_backward(dxp, cache, d, inside)
        dx = unpad_spatial(dxp, self.padding, extra=geometry.extra)
        return dx[0] if single else dx

    def _offset_views(self, dxp, d):
        """``(a, b, view)`` per kernel offset (see :func:`offset_views`) and whether the windows
        are disjoint (stride >= dilated kernel), in which case each element of ``dxp`` is in one view at most."""
        disjoint = all(s >= d * (k - 1) + 1 for s, k, d in zip(self.stride, self.kernel_size, self.dilation,
                                                                strict=True))
        return offset_views(dxp, d.shape[2:], self.kernel_size, self.stride, self.dilation), disjoint

    def _loop_forward(self, xp, out_hw):
        out = np.empty((*xp.shape[:2], *out_hw), dtype=xp.dtype)
        for i, j, rows, cols in window_slices(out_hw, self.kernel_size, self.stride, self.dilation):
            region = xp[:, :, rows, cols]
            out[:, :, i, j] = self._reduce(region.reshape(*region.shape[:2], region.shape[2] * region.shape[3]))
        return out, xp


class MaxPool2d(_Pool2d):
    """``MaxPool2d(kernel_size, stride=None, padding=0, impl="im2col", *, dilation=1, return_indices=False,
    ceil_mode=False)``; ``MaxPool2d(2)`` is the tutorial's ``MaxPool2x2``.

    With ``return_indices=True`` ``forward`` returns ``(out, indices)``: ``indices`` (int64, shaped
    like ``out``) is the flat position ``h * W + w`` in its input plane of each window's first
    maximum (PyTorch's convention, for ``MaxUnpool2d``); the last forward's are also in ``self.indices``.
    """

    pad_value = -np.inf

    def __init__(self, kernel_size, stride=None, padding=0, impl: str = "im2col", *, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, padding, impl, dilation, ceil_mode)
        self.return_indices = check_bool(return_indices, self.name, "return_indices")
        self.indices: np.ndarray | None = None

    def _options(self) -> str:
        dilation = f", dilation={self.dilation}" if self.dilation != (1, 1) else ""
        indices = ", return_indices=True" if self.return_indices else ""
        return dilation + indices + super()._options()

    def forward(self, x: np.ndarray):
        """``(C, H, W)`` or ``(N, C, H, W)`` -> ``out`` ``(C, H', W')`` or ``(N, C, H', W')`` [, ``indices``]."""
        out = super().forward(x)
        if not self.return_indices:
            return out
        xp_shape, cache, single, geometry = self._cache
        offsets = self._first_max_offsets(cache, out[np.newaxis] if single else out, geometry.inside)
        self.indices = self._flat_indices(offsets, xp_shape, geometry.extra)
        self.indices = self.indices[0] if single else self.indices
        return out, self.indices

    def _first_max_offsets(self, cache, out, inside) -> np.ndarray:
        """``(N, C, H', W')`` int64: ``a * kw + b`` for the offset ``(a, b)`` of each window's first maximum."""
        kw = self.kernel_size[1]
        if self.impl == "loop":
            offsets = np.empty(out.shape, dtype=np.int64)
            for i, j, rows, cols in window_slices(out.shape[2:], self.kernel_size, self.stride, self.dilation):
                taps = None if inside is None else inside[0][i][:, None] & inside[1][j][None, :]
                offsets[:, :, i, j] = self._first_max(cache[:, :, rows, cols], taps)
            return offsets
        offsets = np.zeros(out.shape, dtype=np.int64)
        for a, b, hit in self._first_hits(*cache, inside):
            offsets[hit] = a * kw + b
        return offsets

    def _flat_indices(self, offsets, xp_shape, extra) -> np.ndarray:
        """Window offsets -> flat positions ``h * W + w`` in the unpadded input plane."""
        kw, (sh, sw), (ph, pw), (dh, dw) = self.kernel_size[1], self.stride, self.padding, self.dilation
        width = xp_shape[3] - 2 * pw - extra[1]
        a, b = np.divmod(offsets, kw)
        rows = np.arange(offsets.shape[2])[:, None] * sh + a * dh - ph
        cols = np.arange(offsets.shape[3])[None, :] * sw + b * dw - pw
        return rows * width + cols

    @staticmethod
    def _reduce(flat_windows):
        return flat_windows.max(axis=-1)

    @staticmethod
    def _first_max(region, taps) -> np.ndarray:
        """``(N, C)`` int64: ``a * kw + b`` of the first maximum of ``region (N, C, kh, kw)`` in row-major order
        (a NaN is the maximum, as ``argmax``), among the taps inside the input when ``taps (kh, kw)`` is given:
        a padded ``-inf`` never wins, not even a tie with an input ``-inf``."""
        flat = region.reshape(*region.shape[:2], region.shape[2] * region.shape[3])
        if taps is None:
            return flat.argmax(axis=-1)
        candidates = (flat == flat.max(axis=-1, keepdims=True)) | np.isnan(flat)
        return (candidates & taps.reshape(-1)).argmax(axis=-1)

    @classmethod
    def _loop_window_grad(cls, region, g, taps):
        """``region (N, C, kh, kw)`` gets ``g (N, C)`` at its first maximum (:meth:`_first_max`) and 0 elsewhere (a
        selection: ``g`` times 0 would be NaN for an infinite or NaN ``g``, where PyTorch's gradient is 0)."""
        onehot = np.arange(region.shape[2] * region.shape[3]) == cls._first_max(region, taps)[..., None]
        return np.where(onehot.reshape(region.shape), g[..., None, None], 0)

    def _windows_forward(self, win):
        # a running maximum over the kh*kw offsets: one pass over (N, C, H', W') per offset,
        # no copy of the windows
        kh, kw = win.shape[-2:]
        out = win[..., 0, 0].copy()
        for a in range(kh):
            for b in range(kw):
                if a or b:
                    np.maximum(out, win[..., a, b], out=out)
        # the backward finds each window's maximum by equality with a private copy of out: the caller
        # may change the returned array in place (y *= 2, a ReLU with out=y) without losing gradients
        return out, (win, out.copy())

    @staticmethod
    def _first_hits(win, out, inside):
        """Yield ``(a, b, hit)`` per offset in row-major order; ``hit`` marks the windows whose first
        maximum is at offset ``(a, b)``: the first offset equal to the window's max, or the first NaN
        (as ``argmax``; a NaN in a window makes its max NaN, so without one in ``out`` there is none),
        among the offsets that read the input (``inside``, see :func:`inside_taps`): a padded ``-inf``
        never wins, not even a tie with an input ``-inf``."""
        nan = bool(np.isnan(out).any())
        free = None  # windows whose maximum is not found yet; None while that is all of them
        last = (win.shape[-2] - 1, win.shape[-1] - 1)
        for a in range(win.shape[-2]):
            for b in range(win.shape[-1]):
                hit = np.equal(win[..., a, b], out)
                if nan:
                    hit |= np.isnan(win[..., a, b])
                if inside is not None:
                    hit &= inside[0][:, a, None] & inside[1][None, :, b]
                if free is None:
                    if (a, b) != last:
                        free = ~hit
                else:
                    hit &= free
                    if (a, b) != last:
                        free ^= hit
                yield a, b, hit

    def _windows_backward(self, dxp, cache, d, inside):
        """Each window's gradient goes to its first maximum (:meth:`_first_hits`), and only there: ``d`` times the
        0/1 mask of the hits, or, when ``d`` is not all finite (:func:`~reference.validation.all_finite`), ``d``
        copied or added where the mask holds (the product would put NaN at the other offsets, where PyTorch's
        gradient is 0; the masked copy is several times slower). ``dxp`` holds zeros first when the windows do not
        tile it or ``d`` is not all finite."""
        views, disjoint = self._offset_views(dxp, d)
        finite = all_finite(d)
        if not finite:
            dxp.fill(0)
        for (_, _, view), (_, _, hit) in zip(views, self._first_hits(*cache, inside), strict=True):
            if finite and disjoint:
                np.multiply(hit, d, out=view)
            elif finite:
                view += hit * d
            elif disjoint:
                np.copyto(view, d, where=hit)
            else:
                np.add(view, d, out=view, where=hit)


class AvgPool2d(_Pool2d):
    """``AvgPool2d(kernel_size, stride=None, padding=0, impl="im2col", *, ceil_mode=False,
    count_include_pad=True, divisor_override=None)``.

    Each window's sum is divided by ``divisor_override`` when given, else by its cells inside
    the padded input (``count_include_pad=True``: ``kh*kw`` except for a ``ceil_mode`` window
    reaching past the right padding) or inside the input (``False``), as PyTorch.
    """

    def __init__(self, kernel_size, stride=None, padding=0, impl: str = "im2col", *, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None) -> None:
        super().__init__(kernel_size, stride, padding, impl, 1, ceil_mode)
        self.count_include_pad = check_bool(count_include_pad, self.name, "count_include_pad")
        if divisor_override is not None:
            if isinstance(divisor_override, bool) or not isinstance(divisor_override, numbers.Integral):
                raise TypeError(f"{self.name}: divisor_override must be an int or None, got {divisor_override!r}")
            if divisor_override == 0:
                raise ValueError(f"{self.name}: divisor_override must not be zero")
        self.divisor_override = divisor_override

    def _settings(self) -> tuple:
        return (*super()._settings(), self.count_include_pad, self.divisor_override)

    def _options(self) -> str:
        include = "" if self.count_include_pad else ", count_include_pad=False"
        override = "" if self.divisor_override is None else f", divisor_override={self.divisor_override}"
        return super()._options() + include + override

    def _divisors(self, size, out_hw) -> np.ndarray:
        if self.divisor_override is not None:
            return np.full(out_hw, self.divisor_override)
        return pool_divisors(size, self.kernel_size, self.stride, self.padding, out_hw, self.count_include_pad)

    @staticmethod
    def _reduce(flat_windows):
        return flat_windows.sum(axis=-1)

    @staticmethod
    def _loop_window_grad(region, g, taps):
        """Every element of ``region (N, C, kh, kw)`` gets ``g`` (already divided by the window's divisor;
        ``taps`` does not matter: padding cells are cut off afterwards)."""
        return np.broadcast_to(g[..., None, None], region.shape)

    def _windows_forward(self, win):
        # sum the kh*kw offsets one (N, C, H', W') pass at a time (the caller divides)
        kh, kw = win.shape[-2:]
        out = win[..., 0, 0].copy()
        for a in range(kh):
            for b in range(kw):
                if a or b:
                    out += win[..., a, b]
        return out, win.shape

    def _windows_backward(self, dxp, win_shape, d, inside):
        views, disjoint = self._offset_views(dxp, d)
        for _, _, view in views:
            if disjoint:
                np.copyto(view, d)
            else:
                view += d
