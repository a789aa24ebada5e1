"""Softmax along one axis, as ``torch.nn.Softmax(dim)``.

``dim`` counts the axes of a batch: ``(N, C)`` or ``(N, C, H, W)`` (``dim=1``, the default, is the class or
channel axis). A single ``(C, H, W)`` image is a batch of one, as everywhere: ``dim`` still counts the batch
axis (``dim=1`` is the image's axis 0; ``dim=0`` is the batch axis of size 1, whose softmax is 1).
"""

from __future__ import annotations

import numpy as np

from .layer import Layer
from .validation import check_int, check_ndim


class Softmax(Layer):
    """``Softmax(dim=1)``: ``exp(x - max) / sum(exp(x - max))`` along ``dim`` of the batch, stable for any
    finite logits; ``x`` ``(N, C)``, ``(C, H, W)`` or ``(N, C, H, W)`` -> the same shape.
    ``dx = y * (dout - sum(dout * y, dim))``. Keras: ``Softmax(axis=...)`` with the axis moved for channels-last
    (``dim=1`` of ``(N, C, H, W)`` is ``axis=-1`` of ``(N, H, W, C)``)."""

    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = check_int(dim, "Softmax", "dim", -4, 3)

    def __repr__(self) -> str:
        return f"Softmax(dim={self.dim})"

    def _axis(self, batch_ndim: int, shape) -> int:
        if not -batch_ndim <= self.dim < batch_ndim:
            raise ValueError(f"Softmax.forward: dim={self.dim} is out of range for a batch of {batch_ndim} dims "
                             f"(x shape {shape}; a (C, H, W) image is a batch of one)")
        return self.dim % batch_ndim

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``(N, C)``, ``(C, H, W)`` or ``(N, C, H, W)`` -> the same shape, summing to 1 along ``dim``."""
        x = self._input(x)
        check_ndim(x, (2, 3, 4), "Softmax.forward", "x", "(N,C), (C,H,W) or (N,C,H,W)")
        single = x.ndim == 3
        xb = x[np.newaxis] if single else x
        axis = self._axis(xb.ndim, x.shape)
        e = np.exp(xb - xb.max(axis=axis, keepdims=True))
        y = e / e.sum(axis=axis, keepdims=True)
        self._cache = (y.copy(), axis, single)  # the caller may change the returned array in place
        self._out_shape = x.shape
        return y[0] if single else y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dout`` shaped like the output -> ``dx``."""
        dout = self._upstream(dout)
        y, axis, single = self._cache
        d = dout[np.newaxis] if single else dout
        dx = y * (d - (d * y).sum(axis=axis, keepdims=True))
        return dx[0] if single else dx
