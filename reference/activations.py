"""Element-wise activations."""

from __future__ import annotations

import numpy as np

from .layer import Layer


class ReLU(Layer):
    """``max(x, 0)``, any shape. The gradient at exactly 0 is 0 (as PyTorch and TensorFlow)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._input(x)
        self._cache = x > 0
        self._out_shape = x.shape
        return np.maximum(x, 0)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dout = self._upstream(dout)
        return dout * self._cache
