"""Element-wise activations: any shape in, the same shape out."""

from __future__ import annotations

import numpy as np

from .layer import Layer
from .validation import check_real


class Pointwise(Layer):
    """An element-wise function. ``forward`` keeps its derivative at ``x`` (not its output, which is the
    caller's and may be changed in place before ``backward``); ``backward`` multiplies ``dout`` by it."""

    def _value_and_slope(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - interface
        """``(f(x), f'(x))``, each shaped like ``x``."""
        raise NotImplementedError

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._input(x)
        y, self._cache = self._value_and_slope(x)
        self._out_shape = x.shape
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return self._upstream(dout) * self._cache


class ReLU(Pointwise):
    """``max(x, 0)``, any shape. The gradient at exactly 0 is 0 (as PyTorch and TensorFlow)."""

    def _value_and_slope(self, x):
        return np.maximum(x, 0), x > 0


class LeakyReLU(Pointwise):
    """``x`` where ``x > 0``, ``negative_slope * x`` elsewhere; any shape.

    ``negative_slope`` defaults to 0.01 as ``torch.nn.LeakyReLU`` (Keras' ``LeakyReLU`` defaults to
    0.3: pass it explicitly when porting). The gradient at exactly 0 is ``negative_slope`` (as PyTorch).
    """

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = check_real(negative_slope, "LeakyReLU", "negative_slope")

    def __repr__(self) -> str:
        return f"LeakyReLU(negative_slope={self.negative_slope})"

    def _value_and_slope(self, x):
        slope = np.where(x > 0, x.dtype.type(1), x.dtype.type(self.negative_slope))
        return x * slope, slope


class Sigmoid(Pointwise):
    """``1 / (1 + exp(-x))``, any shape, without overflow for large ``|x|``; ``dx = dout * y * (1 - y)``."""

    def __repr__(self) -> str:
        return "Sigmoid()"

    def _value_and_slope(self, x):
        e = np.exp(-np.abs(x))  # in (0, 1]: never overflows
        y = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
        return y, y * (1 - y)


class Tanh(Pointwise):
    """``tanh(x)``, any shape; ``dx = dout * (1 - y**2)``."""

    def __repr__(self) -> str:
        return "Tanh()"

    def _value_and_slope(self, x):
        y = np.tanh(x)
        return y, 1 - y * y
