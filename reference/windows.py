"""Window arithmetic, written once: output size, padding, the windows themselves.

Both implementations of every spatial layer take their windows from here: the
``loop`` kernels walk :func:`window_slices` one window at a time, the ``im2col``
kernels take every window at once from :func:`sliding_windows` (a strided view,
no copy) and scatter gradients back with :func:`add_windows` (one strided
accumulation per kernel offset, never a loop over windows).

Spatial axes are given explicitly (``axes``) so the same code serves channels-
first ``(N, C, H, W)`` and channels-last ``(N, H, W, C)`` buffers.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Pair = tuple[int, int]


def effective_kernel(kernel: Pair, dilation: Pair) -> Pair:
    """Extent of a dilated kernel: ``d * (k - 1) + 1`` per axis."""
    return (dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1)


def output_size(
    size: Pair, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, where: str
) -> Pair:
    """Output ``(H', W')`` of a window op: ``(H + 2p - d(k-1) - 1) // s + 1`` per axis.

    Raises ValueError when the (dilated) kernel does not fit in the padded input.
    """
    ek = effective_kernel(kernel, dilation)
    out = []
    for axis, n, k, s, p in zip(("height", "width"), size, ek, stride, padding):
        if n + 2 * p < k:
            raise ValueError(
                f"{where}: kernel {axis} (effective size {k}) is larger than the padded input "
                f"{axis} {n + 2 * p} (input {n} + 2*padding {p})"
            )
        out.append((n + 2 * p - k) // s + 1)
    return (out[0], out[1])


def pad_spatial(x: np.ndarray, padding: Pair, axes: Pair = (2, 3), value: float = 0.0) -> np.ndarray:
    """Pad only the two spatial ``axes`` of ``x`` (never batch or channel) with ``value``.

    Returns a new C-contiguous array; ``x`` itself when no padding is asked for.
    """
    if padding == (0, 0):
        return x
    widths = [(0, 0)] * x.ndim
    widths[axes[0]] = (padding[0], padding[0])
    widths[axes[1]] = (padding[1], padding[1])
    return np.pad(x, widths, mode="constant", constant_values=value)


def unpad_spatial(xp: np.ndarray, padding: Pair, axes: Pair = (2, 3)) -> np.ndarray:
    """Inverse of :func:`pad_spatial`: a view of ``xp`` without the border."""
    index = [slice(None)] * xp.ndim
    index[axes[0]] = slice(padding[0], xp.shape[axes[0]] - padding[0])
    index[axes[1]] = slice(padding[1], xp.shape[axes[1]] - padding[1])
    return xp[tuple(index)]


def window_slices(
    out_size: Pair, kernel: Pair, stride: Pair, dilation: Pair
) -> Iterator[tuple[int, int, slice, slice]]:
    """Yield ``(i, j, rows, cols)`` for every output position, as the tutorial's ``iterate_regions``.

    ``x_pad[..., rows, cols]`` is the ``(kh, kw)`` window under output ``(i, j)``.
    """
    ekh, ekw = effective_kernel(kernel, dilation)
    for i in range(out_size[0]):
        for j in range(out_size[1]):
            top, left = i * stride[0], j * stride[1]
            yield i, j, slice(top, top + ekh, dilation[0]), slice(left, left + ekw, dilation[1])


def _offset_slice(offset: int, step: int, count: int) -> slice:
    """The ``count`` positions ``offset, offset + step, ...`` as a slice."""
    return slice(offset, offset + step * (count - 1) + 1, step)


def sliding_windows(
    xp: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair, axes: Pair = (2, 3)
) -> np.ndarray:
    """Every window of the padded ``xp`` at once, as a read-only strided view (no copy).

    The two spatial ``axes`` become the output size ``(H', W')`` in place and the
    window offsets ``(kh, kw)`` are appended: ``(N, C, Hp, Wp) -> (N, C, H', W', kh, kw)``.
    """
    ek = effective_kernel(kernel, dilation)
    view = sliding_window_view(xp, ek, axis=axes)
    index = [slice(None)] * view.ndim
    index[axes[0]] = slice(None, None, stride[0])
    index[axes[1]] = slice(None, None, stride[1])
    index[-2] = slice(None, None, dilation[0])
    index[-1] = slice(None, None, dilation[1])
    return view[tuple(index)]


def add_windows(
    dxp: np.ndarray, dwin: np.ndarray, stride: Pair, dilation: Pair, axes: Pair = (2, 3)
) -> np.ndarray:
    """col2im: accumulate window gradients ``dwin`` into the padded gradient ``dxp`` in place.

    ``dwin`` has the shape :func:`sliding_windows` returns for ``dxp``. Overlapping
    windows add up. One strided ``+=`` per kernel offset ``(a, b)``; returns ``dxp``.
    """
    kh, kw = dwin.shape[-2:]
    out_h, out_w = dwin.shape[axes[0]], dwin.shape[axes[1]]
    index = [slice(None)] * dxp.ndim
    for a in range(kh):
        index[axes[0]] = _offset_slice(a * dilation[0], stride[0], out_h)
        for b in range(kw):
            index[axes[1]] = _offset_slice(b * dilation[1], stride[1], out_w)
            dxp[tuple(index)] += dwin[..., a, b]
    return dxp
