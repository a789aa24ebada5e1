"""Global average pooling: the mean of each channel's feature map.

Shapes: ``x (N, C, H, W)`` -> ``(N, C)``; one image ``(C, H, W)`` -> ``(C,)``. It is average
pooling with one window covering the whole map, so it reuses :class:`AvgPool2d`'s loop and
im2col kernels (built per input size) instead of writing the window arithmetic again.
"""

from __future__ import annotations

import numpy as np

from .conv import IMPLS
from .layer import SpatialLayer
from .pool import AvgPool2d
from .validation import check_choice


class GlobalAvgPool2d(SpatialLayer):
    """``GlobalAvgPool2d(impl="im2col")``: ``(N, C, H, W)`` -> ``(N, C)`` means over ``H, W`` (as
    ``torch.nn.AdaptiveAvgPool2d(1)`` + ``Flatten``, ``keras.layers.GlobalAveragePooling2D``)."""

    def __init__(self, impl: str = "im2col") -> None:
        super().__init__()
        self.impl = check_choice(impl, IMPLS, "GlobalAvgPool2d", "impl")

    def __repr__(self) -> str:
        return f"GlobalAvgPool2d(impl={self.impl!r})"

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``(N, C, H, W)`` or ``(C, H, W)`` -> ``(N, C)`` or ``(C,)``."""
        x = self._input(x)
        self._batch(x)  # validates the number of dims
        pool = AvgPool2d(x.shape[-2:], impl=self.impl)
        out = pool.forward(x)
        self._cache = (pool, out.shape)
        out = out.reshape(out.shape[:-2])
        self._out_shape = out.shape
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dout (N, C)`` or ``(C,)`` -> ``dx`` shaped like the input."""
        dout = self._upstream(dout)
        pool, pooled_shape = self._cache
        return pool.backward(dout.reshape(pooled_shape))
