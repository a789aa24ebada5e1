"""Fully connected layer and Flatten, flattening as the tutorial does.

``Linear`` keeps the tutorial's weight layout ``(in_features, out_features)``
(Keras ``Dense`` uses the same; PyTorch stores the transpose ``(out, in)``).
"""

from __future__ import annotations

import numpy as np

from .conv import default_rng
from .layer import Layer
from .validation import as_float_dtype, check_allocation, check_bool, check_int


def flatten_rows(x: np.ndarray) -> np.ndarray:
    """One ``(C, H, W)`` image -> ``(1, C*H*W)``; a batch ``(N, d1, ...)`` with 4+ dims -> ``(N, D)``.

    A 2-D ``(N, D)`` input is already flat; a 1-D ``(D,)`` one becomes one row.
    """
    if x.ndim in (1, 3):
        return x.reshape(1, -1)
    return x.reshape(x.shape[0], int(np.prod(x.shape[1:])))  # explicit: an empty batch has no -1 to infer


class Flatten(Layer):
    """Channels-first flatten: features ordered ``(C, H, W)`` (PyTorch's order, not Keras')."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._input(x)
        if x.ndim == 0:
            raise ValueError(f"Flatten.forward: x must have at least 1 dim (D,), (N, D), (C, H, W) or (N, C, H, W), "
                             f"got a scalar (shape {x.shape})")
        self._cache = x.shape
        out = flatten_rows(x)
        self._out_shape = out.shape
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return self._upstream(dout).reshape(self._cache)


class Linear(Layer):
    """``Linear(in_features, out_features, bias=True, dtype=np.float64, rng=None)``.

    ``params["weight"] (in, out)``, ``params["bias"] (out,)``; initialised as
    ``torch.nn.Linear``: ``U(-1/sqrt(in), 1/sqrt(in))``. ``forward`` takes one sample of
    any shape with ``in_features`` elements (-> ``(1, out)``, as the tutorial) or a batch
    ``(N, ...)`` with ``in_features`` elements per sample (-> ``(N, out)``).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=np.float64, rng=None) -> None:
        super().__init__()
        self.in_features = check_int(in_features, "Linear", "in_features", 1)
        self.out_features = check_int(out_features, "Linear", "out_features", 1)
        self.dtype = as_float_dtype(dtype, "Linear")
        self.use_bias = check_bool(bias, "Linear", "bias")
        check_allocation([(self.in_features, self.out_features), (self.out_features,)], self.dtype, "Linear",
                         "its weight (in, out) and bias")
        gen = default_rng(rng)
        bound = 1.0 / np.sqrt(self.in_features)
        self.params["weight"] = gen.uniform(-bound, bound, (self.in_features, self.out_features)).astype(self.dtype)
        if self.use_bias:
            self.params["bias"] = gen.uniform(-bound, bound, self.out_features).astype(self.dtype)

    def __repr__(self) -> str:
        return f"Linear({self.in_features}, {self.out_features}, bias={self.use_bias}, dtype={self.dtype.name})"

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``(N, ...)`` batch or one sample -> scores ``(N, out)`` / ``(1, out)``."""
        x = self._input(x, self.dtype)
        d = self.in_features
        if x.ndim >= 2 and int(np.prod(x.shape[1:])) == d:
            rows = x.reshape(x.shape[0], d)
        elif x.size == d:
            rows = x.reshape(1, d)
        else:
            raise ValueError(
                f"Linear.forward: x must hold in_features={d} values per sample, as (N, ...) or one "
                f"sample, got shape {x.shape}"
            )
        w = self._param("weight", (d, self.out_features), self.dtype)
        out = rows @ w
        if self.use_bias:
            out += self._param("bias", (self.out_features,), self.dtype)
        self._cache = (x.shape, rows, w.copy())  # the weights as they are now (layer.py: parameters at forward)
        self._out_shape = out.shape
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dout (N, out)`` -> ``dx`` shaped like the input; fills ``grads``."""
        dout = self._upstream(dout, self.dtype)
        x_shape, rows, w = self._cache
        self.grads["weight"] = rows.T @ dout
        if self.use_bias:
            self.grads["bias"] = dout.sum(axis=0)
        return (dout @ w.T).reshape(x_shape)
