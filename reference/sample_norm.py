"""Per-sample normalisation: ``LayerNorm`` and ``GroupNorm``, PyTorch's conventions.

Both standardise blocks of each sample with the block's mean and *biased* variance (no running statistics,
the same in training and evaluation) and then scale and shift elementwise:

- ``LayerNorm(normalized_shape)``: ``x (..., *normalized_shape)``; a block is the trailing
  ``normalized_shape`` dims of one position of the leading dims. ``weight``/``bias``: ``normalized_shape``.
- ``GroupNorm(num_groups, num_channels)``: ``x (N, C, H, W)`` or one ``(C, H, W)`` image; a block is one
  image's ``C / num_groups`` consecutive channels. ``weight``/``bias``: ``(C,)``, per channel.

The gradient of a standardised block ``xhat = (x - mean) * inv_std`` over ``M`` values is
``dx = inv_std * (g - mean(g) - xhat * mean(g * xhat))`` with ``g`` the gradient w.r.t. ``xhat``
(:func:`standardize_backward`, the same formula as batch norm's in training mode).
"""

from __future__ import annotations

import numbers

import numpy as np

from .layer import Layer, SpatialLayer
from .validation import MAX_INT, as_float_dtype, check_allocation, check_bool, check_int, check_real


def standardize(x: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """``x (B, M)`` -> ``(xhat (B, M), inv_std (B, 1))``: each row minus its mean, over its biased std."""
    mean = x.mean(axis=1, keepdims=True)
    centred = x - mean
    inv_std = 1.0 / np.sqrt((centred * centred).mean(axis=1, keepdims=True) + eps)
    return centred * inv_std, inv_std


def standardize_backward(g: np.ndarray, xhat: np.ndarray, inv_std: np.ndarray) -> np.ndarray:
    """Gradient of :func:`standardize` w.r.t. ``x (B, M)``, given ``g``, the gradient w.r.t. ``xhat``."""
    return inv_std * (g - g.mean(axis=1, keepdims=True) - xhat * (g * xhat).mean(axis=1, keepdims=True))


def _as_shape(value, where: str, name: str) -> tuple[int, ...]:
    """An int or a non-empty tuple/list of ints, each >= 1, as a tuple."""
    if isinstance(value, (tuple, list)):
        if not value:
            raise ValueError(f"{where}: {name} must be an int or a non-empty sequence of ints, got {value!r}")
        return tuple(check_int(v, where, name, 1, MAX_INT) for v in value)
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return (check_int(value, where, name, 1),)
    raise TypeError(f"{where}: {name} must be an int or a sequence of ints, got {value!r} ({type(value).__name__})")


class LayerNorm(Layer):
    """``LayerNorm(normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, dtype=np.float64)``, as
    ``torch.nn.LayerNorm``: ``x (..., *normalized_shape)`` -> the same shape, each trailing block standardised,
    then ``* weight + bias`` (``params``: ``weight`` ones and ``bias`` zeros of ``normalized_shape``, when
    ``elementwise_affine``; no ``bias`` when ``bias=False``)."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
                 dtype=np.float64) -> None:
        super().__init__()
        where = "LayerNorm"
        self.normalized_shape = _as_shape(normalized_shape, where, "normalized_shape")
        self.eps = check_real(eps, where, "eps", minimum=0.0, min_inclusive=False)
        self.elementwise_affine = check_bool(elementwise_affine, where, "elementwise_affine")
        self.use_bias = check_bool(bias, where, "bias")
        self.dtype = as_float_dtype(dtype, where)
        check_allocation([self.normalized_shape] * 2, self.dtype, where, "its weight and bias")
        if self.elementwise_affine:
            self.params["weight"] = np.ones(self.normalized_shape, dtype=self.dtype)
            if self.use_bias:
                self.params["bias"] = np.zeros(self.normalized_shape, dtype=self.dtype)

    def __repr__(self) -> str:
        return (f"LayerNorm({self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.use_bias}, dtype={self.dtype.name})")

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``(..., *normalized_shape)`` -> the same shape."""
        x = self._input(x, self.dtype)
        k = len(self.normalized_shape)
        if x.ndim < k or x.shape[x.ndim - k:] != self.normalized_shape:
            raise ValueError(f"LayerNorm.forward: x must end in normalized_shape={self.normalized_shape}, got shape "
                             f"{x.shape}")
        xhat, inv_std = standardize(x.reshape(-1, int(np.prod(self.normalized_shape))), self.eps)
        xhat = xhat.reshape(x.shape)
        out = xhat
        gamma = None
        if self.elementwise_affine:
            gamma = self._param("weight", self.normalized_shape, self.dtype)
            out = xhat * gamma
            if self.use_bias:
                out += self._param("bias", self.normalized_shape, self.dtype)
        self._cache = (xhat, inv_std, None if gamma is None else gamma.copy())  # gamma as it is now (layer.py)
        self._out_shape = x.shape
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dout`` shaped like the output -> ``dx``; fills ``grads["weight"]`` and ``grads["bias"]``."""
        dout = self._upstream(dout, self.dtype)
        xhat, inv_std, gamma = self._cache
        lead = tuple(range(dout.ndim - len(self.normalized_shape)))
        if gamma is not None:
            self.grads["weight"] = (dout * xhat).sum(axis=lead)
            if self.use_bias:
                self.grads["bias"] = dout.sum(axis=lead)
            dout = dout * gamma
        m = int(np.prod(self.normalized_shape))
        dx = standardize_backward(dout.reshape(-1, m), xhat.reshape(-1, m), inv_std)
        return dx.reshape(xhat.shape)


class GroupNorm(SpatialLayer):
    """``GroupNorm(num_groups, num_channels, eps=1e-5, affine=True, dtype=np.float64)``, as
    ``torch.nn.GroupNorm``: ``x (N, C, H, W)`` or ``(C, H, W)`` -> the same shape, each image's ``num_groups``
    blocks of ``C / num_groups`` channels standardised, then ``* weight + bias`` per channel (``params``:
    ``weight`` ones and ``bias`` zeros, ``(C,)``, when ``affine``). ``num_groups`` must divide ``num_channels``."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 dtype=np.float64) -> None:
        super().__init__()
        where = "GroupNorm"
        self.num_groups = check_int(num_groups, where, "num_groups", 1)
        self.num_channels = check_int(num_channels, where, "num_channels", 1)
        if self.num_channels % self.num_groups:
            raise ValueError(f"{where}: num_channels must be divisible by num_groups, got num_channels="
                             f"{self.num_channels}, num_groups={self.num_groups}")
        self.eps = check_real(eps, where, "eps", minimum=0.0, min_inclusive=False)
        self.affine = check_bool(affine, where, "affine")
        self.dtype = as_float_dtype(dtype, where)
        check_allocation([(self.num_channels,)] * 2, self.dtype, where, "its weight and bias")
        if self.affine:
            self.params["weight"] = np.ones(self.num_channels, dtype=self.dtype)
            self.params["bias"] = np.zeros(self.num_channels, dtype=self.dtype)

    def __repr__(self) -> str:
        return (f"GroupNorm({self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"dtype={self.dtype.name})")

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``(N, C, H, W)`` or ``(C, H, W)`` -> the same shape."""
        x, single = self._batch(self._input(x, self.dtype))
        c = self.num_channels
        if x.shape[1] != c:
            raise ValueError(f"GroupNorm.forward: x must have num_channels={c} channels (axis 1 of a batch, 0 of an "
                             f"image), got shape {x.shape[1:] if single else x.shape}")
        xhat, inv_std = standardize(x.reshape(x.shape[0] * self.num_groups, -1), self.eps)
        xhat = xhat.reshape(x.shape)
        out, gamma = xhat, None
        if self.affine:
            gamma = self._param("weight", (c,), self.dtype)
            out = xhat * gamma[:, None, None] + self._param("bias", (c,), self.dtype)[:, None, None]
        self._cache = (xhat, inv_std, None if gamma is None else gamma.copy(), single)
        return self._finish_forward(out, single)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dout`` shaped like the output -> ``dx``; fills ``grads["weight"]`` and ``grads["bias"]``."""
        dout = self._upstream(dout, self.dtype)
        xhat, inv_std, gamma, single = self._cache
        d = dout[np.newaxis] if single else dout
        if gamma is not None:
            self.grads["weight"] = (d * xhat).sum(axis=(0, 2, 3))
            self.grads["bias"] = d.sum(axis=(0, 2, 3))
            d = d * gamma[:, None, None]
        rows = xhat.shape[0] * self.num_groups
        dx = standardize_backward(d.reshape(rows, -1), xhat.reshape(rows, -1), inv_std).reshape(xhat.shape)
        return dx[0] if single else dx
