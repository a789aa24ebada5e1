"""Batch normalisation over the channels of image batches, PyTorch's conventions.

Shapes: ``x (N, C, H, W)`` (or one ``(C, H, W)`` image, a batch of 1) -> same shape.
Training mode normalises each channel with its batch mean and *biased* variance over
the ``n = N*H*W`` values and updates the running statistics as ``torch.nn.BatchNorm2d``:

    running = (1 - momentum) * running + momentum * batch_statistic

where the variance folded in is the unbiased one (``* n / (n - 1)``) by default, or the
biased one with ``unbiased_running_var=False`` (Keras' convention; Keras' ``momentum`` is
``1 - momentum`` here and its ``epsilon`` is ``eps``). Evaluation mode normalises with the
running statistics and updates nothing.
"""

from __future__ import annotations

import numpy as np

from .layer import SpatialLayer
from .validation import as_float_dtype, check_allocation, check_bool, check_fraction, check_int, check_real

_AXES = (0, 2, 3)  # everything but the channel


def _per_channel(v: np.ndarray) -> np.ndarray:
    """``(C,)`` -> ``(1, C, 1, 1)``, to broadcast against ``(N, C, H, W)``."""
    return v.reshape(1, -1, 1, 1)


class BatchNorm2d(SpatialLayer):
    """``BatchNorm2d(num_features, eps=1e-5, momentum=0.1, unbiased_running_var=True, dtype=np.float64)``.

    ``params["weight"]`` (gamma) and ``params["bias"]`` (beta), both ``(C,)``, start at 1 and 0;
    ``buffers["running_mean"]`` and ``buffers["running_var"]``, ``(C,)``, start at 0 and 1 and are
    never trained. ``forward`` and ``backward`` take and return ``(N, C, H, W)`` or ``(C, H, W)``.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 unbiased_running_var: bool = True, dtype=np.float64) -> None:
        super().__init__()
        self.num_features = check_int(num_features, "BatchNorm2d", "num_features", 1)
        self.eps = check_real(eps, "BatchNorm2d", "eps", minimum=0.0, min_inclusive=False)
        self.momentum = check_fraction(momentum, "BatchNorm2d", "momentum")
        self.unbiased_running_var = check_bool(unbiased_running_var, "BatchNorm2d", "unbiased_running_var")
        self.dtype = as_float_dtype(dtype, "BatchNorm2d")
        c = self.num_features
        check_allocation([(c,)] * 4, self.dtype, "BatchNorm2d", "its weight, bias, running_mean and running_var")
        self.params["weight"] = np.ones(c, dtype=self.dtype)
        self.params["bias"] = np.zeros(c, dtype=self.dtype)
        self.buffers["running_mean"] = np.zeros(c, dtype=self.dtype)
        self.buffers["running_var"] = np.ones(c, dtype=self.dtype)

    def __repr__(self) -> str:
        return (f"BatchNorm2d({self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"unbiased_running_var={self.unbiased_running_var}, dtype={self.dtype.name})")

    def _buffer(self, key: str) -> np.ndarray:
        arr = self.buffers[key]
        where, name = f"{self.name}.forward", f"buffers[{key!r}]"
        if not isinstance(arr, np.ndarray) or arr.shape != (self.num_features,):
            shape = getattr(arr, "shape", type(arr).__name__)
            raise ValueError(f"{where}: {name} must be an array of shape ({self.num_features},), got {shape}")
        return arr

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``(N, C, H, W)`` or ``(C, H, W)`` -> normalised, scaled and shifted, same shape."""
        x, single = self._batch(self._input(x, self.dtype))
        c = self.num_features
        if x.shape[1] != c:
            raise ValueError(f"BatchNorm2d.forward: x must have num_features={c} channels (axis 1 of a batch, "
                             f"0 of an image), got shape {x.shape[1:] if single else x.shape}")
        gamma = self._param("weight", (c,), self.dtype)
        beta = self._param("bias", (c,), self.dtype)
        running_mean, running_var = self._buffer("running_mean"), self._buffer("running_var")
        if self.training:
            n = x.size // c
            if n < 2:
                raise ValueError(f"BatchNorm2d.forward: training needs more than 1 value per channel "
                                 f"(N*H*W >= 2), got input shape {x.shape}")
            mean = x.mean(axis=_AXES)
            centred = x - _per_channel(mean)
            var = (centred * centred).mean(axis=_AXES)
            folded = var * (n / (n - 1)) if self.unbiased_running_var else var
            m = self.momentum
            running_mean[...] = (1 - m) * running_mean + m * mean
            running_var[...] = (1 - m) * running_var + m * folded
        else:
            centred = x - _per_channel(running_mean.astype(self.dtype, copy=False))
            var = running_var.astype(self.dtype, copy=False)
        inv_std = 1.0 / np.sqrt(var + self.eps)
        xhat = centred * _per_channel(inv_std)
        out = xhat * _per_channel(gamma) + _per_channel(beta)
        self._cache = (xhat, inv_std, gamma.copy(), single, self.training)  # gamma as it is now (layer.py)
        return self._finish_forward(out, single)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dout`` shaped like the output -> ``dx``; fills ``grads["weight"]``, ``grads["bias"]``.

        Training mode differentiates through the batch mean and variance:
        ``dx = inv_std * (g - mean(g) - xhat * mean(g * xhat))`` with ``g = gamma * dout``.
        """
        dout = self._upstream(dout, self.dtype)
        xhat, inv_std, gamma, single, training = self._cache
        d = dout[np.newaxis] if single else dout
        self.grads["weight"] = (d * xhat).sum(axis=_AXES)
        self.grads["bias"] = d.sum(axis=_AXES)
        g = d * _per_channel(gamma)
        if training:
            g = g - g.mean(axis=_AXES, keepdims=True) - xhat * (g * xhat).mean(axis=_AXES, keepdims=True)
        dx = g * _per_channel(inv_std)
        return dx[0] if single else dx
