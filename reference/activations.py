"""Element-wise activations: any shape in, the same shape out."""

from __future__ import annotations

import numbers

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


class LeakyReLU(Layer):
    """``x`` where ``x > 0``, ``negative_slope * x`` elsewhere; any shape.

    ``negative_slope`` defaults to 0.01 as ``torch.nn.LeakyReLU`` (Keras' ``LeakyReLU`` defaults to
    0.3: pass it explicitly when porting). The gradient at exactly 0 is ``negative_slope`` (as PyTorch).
    """

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, numbers.Real):
            raise TypeError(f"LeakyReLU: negative_slope must be a real number, got {negative_slope!r}")
        if not np.isfinite(negative_slope):
            raise ValueError(f"LeakyReLU: negative_slope must be finite, got {negative_slope!r}")
        self.negative_slope = float(negative_slope)

    def __repr__(self) -> str:
        return f"LeakyReLU(negative_slope={self.negative_slope})"

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._input(x)
        self._cache = np.where(x > 0, x.dtype.type(1), x.dtype.type(self.negative_slope))
        self._out_shape = x.shape
        return x * self._cache

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return self._upstream(dout) * self._cache


class Sigmoid(Layer):
    """``1 / (1 + exp(-x))``, any shape, without overflow for large ``|x|``; ``dx = dout * y * (1 - y)``."""

    def __repr__(self) -> str:
        return "Sigmoid()"

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._input(x)
        e = np.exp(-np.abs(x))  # in (0, 1]: never overflows
        y = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
        self._cache = y * (1 - y)  # the derivative, not y: the caller may change y in place
        self._out_shape = x.shape
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return self._upstream(dout) * self._cache


class Tanh(Layer):
    """``tanh(x)``, any shape; ``dx = dout * (1 - y**2)``."""

    def __repr__(self) -> str:
        return "Tanh()"

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._input(x)
        y = np.tanh(x)
        self._cache = 1 - y * y  # the derivative, not y: the caller may change y in place
        self._out_shape = x.shape
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return self._upstream(dout) * self._cache
