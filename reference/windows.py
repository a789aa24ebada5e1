"""Window arithmetic, written once: output size, padding, the windows themselves.

Both implementations of every spatial layer take their windows from here: the
``loop`` kernels walk :func:`window_slices` one window at a time, the ``im2col``
kernels take every window at once from :func:`sliding_windows` (a strided view,
no copy) and scatter gradients back with :func:`add_windows` (one strided
accumulation per kernel offset, never a loop over windows). The fast convolution
reads its windows from a flat padded buffer instead (:func:`flat_windows`), so
that every copy and accumulation runs over whole rows.

Spatial axes are given explicitly (``axes``) so the same code serves channels-
first ``(N, C, H, W)`` and channels-last ``(N, H, W, C)`` buffers.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.lib.stride_tricks import as_strided

Pair = tuple[int, int]
Pads = tuple[Pair, Pair]
PAD_MODES = ("zeros", "reflect", "replicate", "circular")
"""PyTorch's ``padding_mode`` values (``np.pad``'s ``constant``, ``reflect``, ``edge``, ``wrap``)."""


def as_pads(padding) -> Pads:
    """``(ph, pw)`` (symmetric) or ``((top, bottom), (left, right))`` -> ``((top, bottom), (left, right))``."""
    h, w = padding
    if type(h) is tuple and type(w) is tuple:  # already pads: the fast path (every call of the conv kernels)
        return padding
    return tuple((p, p) if isinstance(p, (int, np.integer)) else (int(p[0]), int(p[1])) for p in padding)


def effective_kernel(kernel: Pair, dilation: Pair) -> Pair:
    """Extent of a dilated kernel: ``d * (k - 1) + 1`` per axis."""
    return (dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1)


def output_size(
    size: Pair, kernel: Pair, stride: Pair, padding, dilation: Pair, where: str, ceil_mode: bool = False
) -> Pair:
    """Output ``(H', W')`` of a window op: ``(H + top + bottom - d(k-1) - 1) // s + 1`` per axis.

    ``padding`` is ``(ph, pw)`` (symmetric) or ``((top, bottom), (left, right))``.
    ``ceil_mode`` (pooling) rounds the division up, then drops the last window if it would
    start past the input and the left padding, ``(H' - 1) * s >= H + p`` (PyTorch's rule): the
    last window may reach past the right padding but always starts on the input or the left
    padding. Raises ValueError when the (dilated) kernel does not fit in the padded input.
    """
    ek = effective_kernel(kernel, dilation)
    out = []
    for axis, n, k, s, (lo, hi) in zip(("height", "width"), size, ek, stride, as_pads(padding), strict=True):
        if n + lo + hi < k:
            raise ValueError(
                f"{where}: kernel {axis} (effective size {k}) is larger than the padded input "
                f"{axis} {n + lo + hi} (input {n} + padding {lo} + {hi})"
            )
        o = -(-(n + lo + hi - k) // s) + 1 if ceil_mode else (n + lo + hi - k) // s + 1
        out.append(o - 1 if ceil_mode and (o - 1) * s >= n + lo else o)
    return (out[0], out[1])


def inside_taps(size: Pair, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair,
                out_size: Pair) -> tuple[np.ndarray, np.ndarray] | None:
    """Per axis, ``(out, k)`` bool: whether tap ``k`` of window ``i`` reads the input rather than the padding
    (``0 <= i * s - p + k * d < n``); None when every tap of every window does."""
    masks = []
    for n, k, s, p, d, o in zip(size, kernel, stride, padding, dilation, out_size, strict=True):
        taps = np.arange(o)[:, None] * s - p + np.arange(k)[None, :] * d
        masks.append((taps >= 0) & (taps < n))
    return None if all(m.all() for m in masks) else (masks[0], masks[1])


def check_windows_touch_input(size: Pair, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair,
                              out_size: Pair, where: str) -> None:
    """Raise ValueError when some window's taps all lie in the padding (a dilated or ``ceil_mode``
    window can step over the whole input): its max would be ``-inf`` and its count 0. (PyTorch
    returns ``-inf`` there with an out-of-range index, and its backward can crash.)"""
    masks = inside_taps(size, kernel, stride, padding, dilation, out_size)
    if masks is None:
        return
    for axis, inside, n, k, s, p, d in zip(("height", "width"), masks, size, kernel, stride, padding, dilation,
                                           strict=True):
        empty = ~inside.any(axis=1)
        if empty.any():
            i = int(np.argmax(empty))
            taps = (i * s - p + np.arange(k) * d).tolist()
            raise ValueError(
                f"{where}: window {i} along the {axis} lies entirely in the padding (taps at "
                f"{taps}, input {axis} {n}, kernel {k}, stride {s}, padding {p}, dilation {d}); "
                f"use less padding or dilation, or ceil_mode=False"
            )


def overhang(size: Pair, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, out_size: Pair) -> Pair:
    """Cells the last window reaches past the right (bottom) padding, per axis: 0 unless ``ceil_mode``."""
    ek = effective_kernel(kernel, dilation)
    h, w = (max(0, (o - 1) * s + k - (n + 2 * p)) for n, k, s, p, o in zip(size, ek, stride, padding, out_size,
                                                                            strict=True))
    return (h, w)


def pool_divisors(size: Pair, kernel: Pair, stride: Pair, padding: Pair, out_size: Pair,
                  count_include_pad: bool) -> np.ndarray:
    """``(H', W')`` divisors of average pooling (PyTorch's rule), the product of per-axis counts:
    each window's cells inside the padded input (``count_include_pad``) or inside the input itself.
    A ``ceil_mode`` window reaching past the right padding counts only what it covers."""
    counts = []
    for n, k, s, p, o in zip(size, kernel, stride, padding, out_size, strict=True):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, n + p)
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, n)
        counts.append(end - start)
    return np.outer(counts[0], counts[1])


def pad_spatial(x: np.ndarray, padding, axes: Pair = (2, 3), value: float = 0.0,
                extra: Pair = (0, 0)) -> np.ndarray:
    """Pad only the two spatial ``axes`` of ``x`` (never batch or channel) with ``value``:
    ``padding`` ``(ph, pw)`` on both sides or ``((top, bottom), (left, right))``, plus ``extra``
    more at the bottom / right (see :func:`overhang`).

    Returns a new C-contiguous array; ``x`` itself when no padding is asked for.
    """
    (top, bottom), (left, right) = as_pads(padding)
    if top == bottom == left == right == 0 and extra == (0, 0):
        return x
    widths = [(0, 0)] * x.ndim
    widths[axes[0]] = (top, bottom + extra[0])
    widths[axes[1]] = (left, right + extra[1])
    return np.pad(x, widths, mode="constant", constant_values=value)


def unpad_spatial(xp: np.ndarray, padding, axes: Pair = (2, 3), extra: Pair = (0, 0)) -> np.ndarray:
    """Inverse of :func:`pad_spatial`: a view of ``xp`` without the border."""
    (top, bottom), (left, right) = as_pads(padding)
    index = [slice(None)] * xp.ndim
    index[axes[0]] = slice(top, xp.shape[axes[0]] - bottom - extra[0])
    index[axes[1]] = slice(left, xp.shape[axes[1]] - right - extra[1])
    return xp[tuple(index)]


_PAD_LIMITS = {"reflect": 0, "circular": 1}  # padding must stay below the input size + this


def check_pad_mode(size: Pair, pads: Pads, mode: str, where: str) -> None:
    """PyTorch's limits: ``reflect`` pads less than the input size, ``circular`` at most the input size
    (it wraps around once), per side; ``zeros`` and ``replicate`` pad any amount."""
    if mode not in _PAD_LIMITS:
        return
    limit = _PAD_LIMITS[mode]
    for axis, n, (lo, hi) in zip(("height", "width"), size, pads, strict=True):
        if max(lo, hi) >= n + limit:
            bound = "less than" if mode == "reflect" else "at most"
            raise ValueError(f"{where}: padding_mode={mode!r} needs padding {bound} the input {axis} {n}, "
                             f"got padding ({lo}, {hi}) along the {axis}")


def _source(i: int, n: int, mode: str) -> int:
    """The input position padded position ``i`` (``< 0`` or ``>= n``, relative to the input) copies."""
    if mode == "reflect":
        return -i if i < 0 else 2 * (n - 1) - i
    if mode == "replicate":
        return min(max(i, 0), n - 1)
    return i % n  # circular


def _border_moves(n: int, lo: int, hi: int, mode: str) -> list[tuple[int, int]]:
    """``(padded index, padded index of its source)`` for every border cell of one axis."""
    border = [*range(-lo, 0), *range(n, n + hi)]
    return [(i + lo, _source(i, n, mode) + lo) for i in border]


def fill_border(xp: np.ndarray, pads: Pads, mode: str) -> np.ndarray:
    """Fill the border of ``xp (N, C, Hp, Wp)``, whose interior holds the input, by ``mode``
    (:data:`PAD_MODES`; ``"zeros"`` leaves the border as it is), in place: columns first (on the
    interior rows), then whole rows, which also fills the corners. Returns ``xp``."""
    if mode == "zeros":
        return xp
    (top, bottom), (left, right) = pads
    h, w = xp.shape[2] - top - bottom, xp.shape[3] - left - right
    rows = slice(top, top + h)
    for dst, src in _border_moves(w, left, right, mode):
        xp[:, :, rows, dst] = xp[:, :, rows, src]
    for dst, src in _border_moves(h, top, bottom, mode):
        xp[:, :, dst, :] = xp[:, :, src, :]
    return xp


def fold_border(dxp: np.ndarray, pads: Pads, mode: str) -> np.ndarray:
    """Adjoint of :func:`fill_border`, in place: each border cell's gradient is added onto the input
    cell it copied (rows first, then columns, the reverse order), so that the interior of ``dxp``
    is the input's gradient. Returns ``dxp``."""
    if mode == "zeros":
        return dxp
    (top, bottom), (left, right) = pads
    h, w = dxp.shape[2] - top - bottom, dxp.shape[3] - left - right
    for dst, src in reversed(_border_moves(h, top, bottom, mode)):
        dxp[:, :, src, :] += dxp[:, :, dst, :]
    rows = slice(top, top + h)
    for dst, src in reversed(_border_moves(w, left, right, mode)):
        dxp[:, :, rows, src] += dxp[:, :, rows, dst]
    return dxp


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
    (``sliding_window_view`` and a strided slice give the same view; its argument checks cost
    three times as much as a small pool, so the strides are written here.)
    """
    shape, strides = list(xp.shape), list(xp.strides)
    for axis, s, ek in zip(axes, stride, effective_kernel(kernel, dilation), strict=True):
        if xp.shape[axis] < ek:
            raise ValueError(f"sliding_windows: axis {axis} has {xp.shape[axis]} cells, fewer than the "
                             f"(dilated) kernel's {ek}")
        shape[axis] = (xp.shape[axis] - ek) // s + 1
        strides[axis] = xp.strides[axis] * s
    window_strides = [xp.strides[axis] * d for axis, d in zip(axes, dilation, strict=True)]
    return as_strided(xp, (*shape, *kernel), (*strides, *window_strides), writeable=False)


def offset_views(
    dxp: np.ndarray, out_size: Pair, kernel: Pair, stride: Pair, dilation: Pair, axes: Pair = (2, 3)
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(a, b, view)`` per kernel offset: ``view`` (writeable, shaped like the output on the
    spatial ``axes``) holds the elements of ``dxp`` that offset ``(a, b)`` of every window covers."""
    index = [slice(None)] * dxp.ndim
    for a in range(kernel[0]):
        index[axes[0]] = _offset_slice(a * dilation[0], stride[0], out_size[0])
        for b in range(kernel[1]):
            index[axes[1]] = _offset_slice(b * dilation[1], stride[1], out_size[1])
            yield a, b, dxp[tuple(index)]


def add_windows(
    dxp: np.ndarray, dwin: np.ndarray, stride: Pair, dilation: Pair, axes: Pair = (2, 3)
) -> np.ndarray:
    """col2im: accumulate window gradients ``dwin`` into the padded gradient ``dxp`` in place.

    ``dwin`` has the shape :func:`sliding_windows` returns for ``dxp``. Overlapping
    windows add up. One strided ``+=`` per kernel offset ``(a, b)``; returns ``dxp``.
    """
    out_size = (dwin.shape[axes[0]], dwin.shape[axes[1]])
    for a, b, view in offset_views(dxp, out_size, dwin.shape[-2:], stride, dilation, axes):
        view += dwin[..., a, b]
    return dxp


# -- windows of a flat padded buffer (the fast im2col convolution) -------------------
def row_pitch(out_w: int, padded_w: int, stride_w: int) -> int:
    """Column positions kept per output row by :func:`flat_windows`.

    With stride 1 along the width a row of windows is read over the whole padded width
    ``Wp`` (``W'`` real positions, then ``Wp - W'`` past the row end that callers drop),
    so each window offset reads one contiguous run per row, and with stride 1 along
    the height one run per image and channel. Otherwise exactly ``W'``.
    """
    return padded_w if stride_w == 1 else out_w


def flat_slack(kernel: Pair, dilation: Pair) -> int:
    """Extra elements a flat padded buffer needs after its last row for :func:`flat_windows`."""
    return dilation[1] * (kernel[1] - 1)


def flat_windows(
    buf: np.ndarray, padded_hw: Pair, kernel: Pair, stride: Pair, dilation: Pair, out_h: int, pitch: int
) -> np.ndarray:
    """Every window of a padded batch stored flat, as one writeable strided view (no copy).

    ``buf (N, C, Hp*Wp + flat_slack)`` C-contiguous holds ``xp (N, C, Hp, Wp)`` row by row;
    the view is ``(N, C, kh, kw, H', pitch)`` with ``[n, c, a, b, i, j] = xp[n, c, i*sh + a*dh,
    j*sw + b*dw]`` for ``j < W'`` (positions ``j >= W'`` lie past the row end). For a fixed
    ``(a, b)`` the view never overlaps itself, so ``view[:, :, a, b] += g`` is a valid col2im step.
    """
    n, c = buf.shape[:2]
    it, wp = buf.itemsize, padded_hw[1]
    strides = (buf.strides[0], buf.strides[1], dilation[0] * wp * it, dilation[1] * it, stride[0] * wp * it,
               stride[1] * it)
    if not buf.flags.c_contiguous:
        raise ValueError(f"flat_windows: buf must be C-contiguous, got strides {buf.strides}")
    # the ndarray constructor is as_strided without its per-call overhead (a few microseconds)
    return np.ndarray((n, c, *kernel, out_h, pitch), buf.dtype, buffer=buf, strides=strides)


def add_flat_windows(buf: np.ndarray, dwin: np.ndarray, padded_hw: Pair, stride: Pair, dilation: Pair) -> np.ndarray:
    """col2im for :func:`flat_windows`: accumulate ``dwin (N, C, kh, kw, H', pitch)`` into ``buf`` in place.

    Entries of ``dwin`` at positions past a row end (``j >= W'``) must be zero. One
    ``+=`` per kernel offset, each over whole rows; returns ``buf``.
    """
    kh, kw, out_h, pitch = dwin.shape[2:]
    view = flat_windows(buf, padded_hw, (kh, kw), stride, dilation, out_h, pitch)
    for a in range(kh):
        for b in range(kw):
            view[:, :, a, b] += dwin[:, :, a, b]
    return buf


def shifted_windows(buf: np.ndarray, n: int, padded_hw: Pair, kernel: Pair, dilation: Pair) -> np.ndarray:
    """col2im for stride 1 as one reduction: a read-only view whose sum over its last two axes is ``dxp``.

    ``buf`` (C-contiguous, ``C*kh*kw*N*R*Wp`` elements) holds window gradients laid out
    ``(C, kh, kw, N, R, Wp)`` with ``R = Hp + dh*(kh-1)``: output row ``i`` is stored at row
    ``i + dh*(kh-1)``, every other row and every column ``j >= W'`` is zero. The view is
    ``(C, N, Hp*Wp, kh, kw)``, ``[c, n, y*Wp + x, a, b]`` = the gradient window offset ``(a, b)``
    sends to padded position ``(y, x)``, i.e. stored row ``y - a*dh + dh*(kh-1)``, column
    ``x - b*dw`` (a negative column reads the zero tail of the row before).
    """
    hp, wp = padded_hw
    kh, kw = kernel
    rows = hp + dilation[0] * (kh - 1)
    block = n * rows * wp  # elements per (c, a, b)
    c = buf.size // (kh * kw * block)
    it = buf.itemsize
    strides = (kh * kw * block * it, rows * wp * it, it, (kw * block - dilation[0] * wp) * it,
               (block - dilation[1]) * it)
    offset = dilation[0] * (kh - 1) * wp * it
    view = np.ndarray((c, n, hp * wp, kh, kw), buf.dtype, buffer=buf, offset=offset, strides=strides)
    view.flags.writeable = False
    return view


class ShiftedWindowGrads:
    """Stride-1 window gradients stored so that col2im is a sum along one axis of uniform stride.

    col2im at stride 1 adds, for every kernel offset ``(a, b)``, that offset's window gradients shifted by
    ``a*dh`` rows and ``b*dw`` columns. Here the row of window gradients of channel ``c`` (within its group)
    and offset ``(a, b)`` starts its shift, ``a*dh*Wp + b*dw`` elements, after ``c*Q + k*S`` (``k = a*kw +
    b``), so that the gradient each offset sends to padded position ``p`` lies at ``c*Q + k*S + p``: one
    axis of stride ``S``, which a BLAS matrix-vector product with ones sums (:meth:`windows`). numpy's
    reduction over the two shifted axes of a plain layout took twice as long or more (one thread, the
    window gradients of two images of the benchmarks' ``mid``, 16x30x30 padded: 112 us against 34 us). With
    ``S = Cg*Q - dw`` the rows ``(b, c)`` of one ``a`` are ``Q`` apart, so one GEMM per group, ``a`` and image
    writes them (:meth:`gemm_out`).

    Each image takes ``R = H' + 2*dh*(kh-1)`` rows of ``Wp`` elements in every row of the buffer: its ``H'``
    output rows, whose columns ``j >= W'`` the GEMM writes as zeros (``dout`` is zero there), between
    ``dh*(kh-1)`` zero rows above and below, never written. A shifted read outside an image's output rows
    lands on zeros: those rows (its own or the image before's), or, for kernel columns ``b > 0``, which
    read up to ``dw*(kw-1)`` elements before their row, the end of the row before in the same ``a``'s
    rows (its last image's zero rows, or with ``kh = 1`` its last output row's columns ``j >= W'``).

    ``images``: the images a buffer holds (the views take the first ``n``); ``groups``; ``channels`` per
    group; ``padded_hw (Hp, Wp)``; ``out_h`` (``H'``); ``kernel``, ``dilation`` and ``dtype`` as the
    convolution's.
    """

    def __init__(self, images: int, groups: int, channels: int, padded_hw: Pair, out_h: int, kernel: Pair,
                 dilation: Pair, dtype) -> None:
        (kh, kw), (dh, dw), wp = kernel, dilation, padded_hw[1]
        self.groups, self.channels, self.padded_hw, self.out_h, self.kernel = groups, channels, padded_hw, out_h, kernel
        self.top = dh * (kh - 1)
        self.image_size = (out_h + 2 * self.top) * wp  # R*Wp
        length = images * self.image_size
        gap = dh * wp - kw * dw  # between the rows of consecutive a (negative: the rows must leave room)
        self.row = length + max(0, -gap)  # Q
        self.step = channels * self.row - dw  # S
        self.block = kw * channels * self.row + gap  # from one a's rows to the next's
        self.group = kh * self.block
        self.buf = np.zeros(groups * self.group, dtype=dtype)  # the zeros are never written

    def _view(self, shape, strides) -> np.ndarray:
        it = self.buf.itemsize
        return np.ndarray(shape, self.buf.dtype, buffer=self.buf, offset=self.top * self.padded_hw[1] * it,
                          strides=tuple(s * it for s in strides))

    def gemm_out(self, n: int) -> np.ndarray:
        """What the GEMM writes for the first ``n`` images: ``(g, kh, n, kw*Cg, H'*Wp)``, rows ``(b, c)``."""
        kh, kw = self.kernel
        return self._view((self.groups, kh, n, kw * self.channels, self.out_h * self.padded_hw[1]),
                          (self.group, self.block, self.image_size, self.row, 1))

    def windows(self, n: int) -> np.ndarray:
        """Read-only ``(g, Cg, n, Hp*Wp, kh*kw)``: ``[.., p, k]`` the gradient kernel offset ``k`` sends to
        padded position ``p``; its sum over the last axis is col2im's result."""
        hp, wp = self.padded_hw
        view = self._view((self.groups, self.channels, n, hp * wp, self.kernel[0] * self.kernel[1]),
                          (self.group, self.row, self.image_size, 1, self.step))
        view.flags.writeable = False
        return view
