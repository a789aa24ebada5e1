"""Adaptive average and max pooling (PyTorch's window rule) and global max pooling.

Shapes: ``x (N, C, H, W)`` -> ``(N, C, oh, ow)`` (or one ``(C, H, W)`` image); ``GlobalMaxPool2d``
gives ``(N, C)``. Output cell ``(i, j)`` pools rows ``[floor(i*H/oh), ceil((i+1)*H/oh))`` and
columns ``[floor(j*W/ow), ceil((j+1)*W/ow))``: windows vary in size and may overlap (their
gradients add up), and an output larger than the input repeats input cells.

One implementation each, no loop/im2col pair: the windows are not a strided view. Average
pooling is separable, ``out = A_h @ x @ A_w.T`` with averaging matrices ``A[i, h] = 1/len(I_i)``
on window ``I_i``, and its gradient is ``A_h.T @ dout @ A_w``; the matrices' zeros would turn an infinite or NaN
cell into NaN in every output (or input gradient) it is not part of, so a result that is not finite is computed
again window by window (:func:`window_means`, :func:`window_spread`), as PyTorch computes it. Max pooling walks
the ``oh*ow`` windows (each vectorized over ``N, C``), takes the first maximum in row-major order (as
``MaxPool2d``), and scatters its gradient with one ``np.add.at`` on those indices.
"""

from __future__ import annotations

import numpy as np

from .layer import SpatialLayer
from .validation import all_finite, check_bool, check_int


def adaptive_bounds(size: int, out: int) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` of the ``out`` windows over ``size`` cells: ``floor(i*size/out)``,
    ``ceil((i+1)*size/out)`` (PyTorch's ``start_index`` / ``end_index``)."""
    return [((i * size) // out, -((-(i + 1) * size) // out)) for i in range(out)]


def averaging_matrix(size: int, out: int, dtype) -> np.ndarray:
    """``A (out, size)``: row ``i`` is ``1/len`` on window ``i`` and 0 elsewhere."""
    a = np.zeros((out, size), dtype=dtype)
    for i, (start, end) in enumerate(adaptive_bounds(size, out)):
        a[i, start:end] = 1.0 / (end - start)
    return a


def window_means(x: np.ndarray, bounds: list[tuple[int, int]], axis: int) -> np.ndarray:
    """Each window's mean along ``axis`` (``bounds`` from :func:`adaptive_bounds`): the averaging matrix's product
    without its zeros."""
    cells = np.moveaxis(x, axis, 0)
    return np.moveaxis(np.stack([cells[start:end].sum(axis=0) / (end - start) for start, end in bounds]), 0, axis)


def window_spread(d: np.ndarray, bounds: list[tuple[int, int]], size: int, axis: int) -> np.ndarray:
    """The adjoint of :func:`window_means` over ``size`` cells: each window's gradient over its length, added to its
    cells only."""
    grads = np.moveaxis(d, axis, 0)
    out = np.zeros((size, *grads.shape[1:]), dtype=d.dtype)
    for i, (start, end) in enumerate(bounds):
        out[start:end] += grads[i] / (end - start)
    return np.moveaxis(out, 0, axis)


def _output_size(value, where: str) -> tuple[int | None, int | None]:
    """An int, or a pair of ints / None (None keeps that input size), each positive."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{where}: output_size must be an int or a pair, got {value!r}")
        return tuple(None if v is None else check_int(v, where, "output_size", 1) for v in value)
    v = check_int(value, where, "output_size", 1)
    return (v, v)


class _AdaptivePool2d(SpatialLayer):
    """What both adaptive pools share: ``output_size`` and the per-input window geometry."""

    def __init__(self, output_size) -> None:
        super().__init__()
        self.output_size = _output_size(output_size, self.name)

    def __repr__(self) -> str:
        return f"{self.name}(output_size={self.output_size})"

    def _out_hw(self, hw: tuple[int, int]) -> tuple[int, int]:
        """``output_size`` with None replaced by the input size ``hw`` (which must be non-empty)."""
        if min(hw) < 1:
            raise ValueError(f"{self.name}.forward: x must have non-empty height and width, got {hw}")
        oh, ow = (s if o is None else o for o, s in zip(self.output_size, hw, strict=True))
        return oh, ow


class AdaptiveAvgPool2d(_AdaptivePool2d):
    """``AdaptiveAvgPool2d(output_size)``, as ``torch.nn.AdaptiveAvgPool2d``: each output cell is
    the mean of its window (windows of ``adaptive_bounds``)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``(C, H, W)`` or ``(N, C, H, W)`` -> ``(C, oh, ow)`` or ``(N, C, oh, ow)``."""
        x, single = self._batch(self._input(x))
        (h, w), (oh, ow) = x.shape[2:], self._out_hw(x.shape[2:])
        a_h, a_w = averaging_matrix(h, oh, x.dtype), averaging_matrix(w, ow, x.dtype)
        bounds = (adaptive_bounds(h, oh), adaptive_bounds(w, ow))
        self._cache = (a_h, a_w, bounds, (h, w))
        out = a_h @ x @ a_w.T
        if not all_finite(out):  # see the module docstring
            out = np.ascontiguousarray(window_means(window_means(x, bounds[1], -1), bounds[0], -2))
        return self._finish_forward(out, single)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dout`` shaped like the output -> ``dx`` shaped like the input."""
        dout = self._upstream(dout)
        a_h, a_w, bounds, (h, w) = self._cache
        dx = a_h.T @ dout @ a_w
        if not all_finite(dx):
            dx = np.ascontiguousarray(window_spread(window_spread(dout, bounds[0], h, -2), bounds[1], w, -1))
        return dx


class AdaptiveMaxPool2d(_AdaptivePool2d):
    """``AdaptiveMaxPool2d(output_size, return_indices=False)``, as ``torch.nn.AdaptiveMaxPool2d``.

    ``forward`` returns ``out``, or ``(out, indices)`` with ``return_indices=True``:
    ``indices`` (int64, shaped like ``out``) is the flat position ``h * W + w`` of each window's
    first maximum (row-major) in its ``(H, W)`` plane, PyTorch's convention; the last
    forward's indices are also kept in ``self.indices``. The gradient goes to that position.
    """

    def __init__(self, output_size, return_indices: bool = False) -> None:
        super().__init__(output_size)
        check_bool(return_indices, self.name, "return_indices")
        self.return_indices = return_indices
        self.indices: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"{self.name}(output_size={self.output_size}, return_indices={self.return_indices})"

    def forward(self, x: np.ndarray):
        """``(C, H, W)`` or ``(N, C, H, W)`` -> ``out (C, oh, ow)`` or ``(N, C, oh, ow)`` [, ``indices``]."""
        x, single = self._batch(self._input(x))
        n, c, h, w = x.shape
        (oh, ow) = self._out_hw((h, w))
        out = np.empty((n, c, oh, ow), dtype=x.dtype)
        indices = np.empty((n, c, oh, ow), dtype=np.int64)
        for i, (r0, r1) in enumerate(adaptive_bounds(h, oh)):
            for j, (c0, c1) in enumerate(adaptive_bounds(w, ow)):
                region = x[:, :, r0:r1, c0:c1].reshape(n, c, (r1 - r0) * (c1 - c0))
                k = region.argmax(axis=-1)
                out[:, :, i, j] = np.take_along_axis(region, k[..., None], axis=-1)[..., 0]
                a, b = np.divmod(k, c1 - c0)
                indices[:, :, i, j] = (r0 + a) * w + (c0 + b)
        self._cache = (x.shape, indices, single)
        # the caller's copy: changing the returned indices in place must not move the gradient
        self.indices = (indices[0] if single else indices).copy()
        out = self._finish_forward(out, single)
        return (out, self.indices) if self.return_indices else out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dout`` shaped like the output -> ``dx`` shaped like the input; overlapping windows add up.

        (Reshaped per plane, so ``GlobalMaxPool2d``'s ``(N, C)`` gradient goes through unchanged.)
        """
        dout = self._upstream(dout)
        x_shape, indices, single = self._cache
        n, c, h, w = x_shape
        dx = np.zeros((n * c, h * w), dtype=dout.dtype)
        rows = np.arange(n * c)[:, None]
        cells = indices.size // max(n * c, 1)  # output cells per plane (explicit: n * c may be 0)
        np.add.at(dx, (rows, indices.reshape(n * c, cells)), dout.reshape(n * c, cells))
        dx = dx.reshape(x_shape)
        return dx[0] if single else dx


class GlobalMaxPool2d(AdaptiveMaxPool2d):
    """``GlobalMaxPool2d()``: the maximum of each channel's plane, ``(N, C, H, W)`` -> ``(N, C)``
    (``(C, H, W)`` -> ``(C,)``); Keras' ``GlobalMaxPooling2D``, PyTorch's ``x.amax(dim=(2, 3))``.

    It is ``AdaptiveMaxPool2d(1)`` without the two unit axes, so its gradient goes to the first
    maximum in row-major order. (``amax`` and TensorFlow's ``reduce_max`` split it evenly among
    tied maxima instead; they agree whenever the maximum is unique.)
    """

    def __init__(self) -> None:
        super().__init__(1)

    def __repr__(self) -> str:
        return f"{self.name}()"

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``(C, H, W)`` or ``(N, C, H, W)`` -> ``(C,)`` or ``(N, C)``."""
        out = super().forward(x)[..., 0, 0]
        self.indices = self.indices[..., 0, 0]
        self._out_shape = out.shape
        return out
