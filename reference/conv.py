"""2-D convolution (cross-correlation, as PyTorch and Keras compute it), two ways.

Shapes: ``x (N, C, H, W)``, ``weight (F, C, kh, kw)`` (OIHW, as the tutorial and
PyTorch), ``bias (F,)``, ``out (N, F, H', W')``. The layer also takes one
``(C, H, W)`` image and returns ``(F, H', W')``.

- ``loop``: the tutorial's per-window loop, its defects fixed (only the spatial
  axes are padded; stride, dilation and rectangular kernels handled; a batch).
- ``im2col``: every window copied once into a column matrix laid out
  ``(N*H'*W', kh*kw*C)`` from a channels-last buffer, so each pass is one GEMM
  and col2im is a strided accumulation per kernel offset.
"""

from __future__ import annotations

import numpy as np

from .layer import SpatialLayer
from .validation import as_float_dtype, as_pair, check_choice, check_int
from .windows import add_windows, output_size, pad_spatial, sliding_windows, unpad_spatial, window_slices

IMPLS = ("loop", "im2col")


def default_rng(rng) -> np.random.Generator:
    """``rng`` may be a Generator, a seed, or None (fresh entropy)."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


# -- loop kernels: the tutorial's iterate_regions, batched ---------------------
def conv2d_loop_forward(xp, w, b, stride, dilation, out_hw):
    """``xp (N, C, Hp, Wp)`` padded input -> ``(N, F, H', W')``."""
    out = np.empty((xp.shape[0], w.shape[0], *out_hw), dtype=xp.dtype)
    for i, j, rows, cols in window_slices(out_hw, w.shape[2:], stride, dilation):
        region = xp[:, :, rows, cols]  # (N, C, kh, kw)
        out[:, :, i, j] = np.tensordot(region, w, axes=([1, 2, 3], [1, 2, 3]))
    if b is not None:
        out += b[:, None, None]
    return out


def conv2d_loop_backward(xp, w, dout, stride, dilation):
    """Returns ``(dxp, dw)``: gradients w.r.t. the padded input and the weight."""
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for i, j, rows, cols in window_slices(dout.shape[2:], w.shape[2:], stride, dilation):
        g = dout[:, :, i, j]  # (N, F)
        dw += np.tensordot(g, xp[:, :, rows, cols], axes=([0], [0]))
        dxp[:, :, rows, cols] += np.tensordot(g, w, axes=([1], [0]))
    return dxp, dw


# -- im2col kernels ------------------------------------------------------------
def im2col(x, kernel, stride, padding, dilation):
    """``x (N, C, H, W)`` -> columns ``(N*H'*W', kh*kw*C)``, rows in (n, i, j) order."""
    xp = pad_spatial(x.transpose(0, 2, 3, 1), padding, axes=(1, 2))  # (N, Hp, Wp, C)
    win = sliding_windows(xp, kernel, stride, dilation, axes=(1, 2))  # (N, H', W', C, kh, kw)
    n, oh, ow, c, kh, kw = win.shape
    cols = np.empty((n, oh, ow, kh, kw, c), dtype=x.dtype)
    np.copyto(cols, win.transpose(0, 1, 2, 4, 5, 3))
    return cols.reshape(n * oh * ow, kh * kw * c)


def col2im(dcols, x_shape, kernel, stride, padding, dilation, out_hw):
    """Adjoint of :func:`im2col`: ``(N*H'*W', kh*kw*C)`` -> ``dx (N, C, H, W)``."""
    n, c, h, w = x_shape
    kh, kw = kernel
    dxp = np.zeros((n, h + 2 * padding[0], w + 2 * padding[1], c), dtype=dcols.dtype)
    dwin = dcols.reshape(n, *out_hw, kh, kw, c).transpose(0, 1, 2, 5, 3, 4)
    add_windows(dxp, dwin, stride, dilation, axes=(1, 2))
    return unpad_spatial(dxp, padding, axes=(1, 2)).transpose(0, 3, 1, 2)


def weight_matrix(w):
    """OIHW weight ``(F, C, kh, kw)`` -> ``(F, kh*kw*C)``, columns matching :func:`im2col`."""
    return w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1)


class Conv2d(SpatialLayer):
    """``Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
    bias=True, impl="im2col", dtype=np.float64, rng=None)``.

    ``params["weight"]``: ``(F, C, kh, kw)``; ``params["bias"]``: ``(F,)``. Weights and
    bias are drawn as ``torch.nn.Conv2d`` draws them, ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``
    with ``fan_in = C*kh*kw``, from ``rng`` (a Generator or a seed).
    Padding is symmetric zero padding of the spatial axes.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        bias: bool = True,
        impl: str = "im2col",
        dtype=np.float64,
        rng=None,
    ) -> None:
        super().__init__()
        where = "Conv2d"
        self.in_channels = check_int(in_channels, where, "in_channels", 1)
        self.out_channels = check_int(out_channels, where, "out_channels", 1)
        self.kernel_size = as_pair(kernel_size, where, "kernel_size", 1)
        self.stride = as_pair(stride, where, "stride", 1)
        self.padding = as_pair(padding, where, "padding", 0)
        self.dilation = as_pair(dilation, where, "dilation", 1)
        self.impl = check_choice(impl, IMPLS, where, "impl")
        self.dtype = as_float_dtype(dtype, where)
        self.use_bias = bool(bias)
        gen = default_rng(rng)
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        bound = 1.0 / np.sqrt(fan_in)
        shape = (self.out_channels, self.in_channels, *self.kernel_size)
        self.params["weight"] = gen.uniform(-bound, bound, shape).astype(self.dtype)
        if self.use_bias:
            self.params["bias"] = gen.uniform(-bound, bound, self.out_channels).astype(self.dtype)

    def __repr__(self) -> str:
        return (
            f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"bias={self.use_bias}, impl={self.impl!r}, dtype={self.dtype.name})"
        )

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x (C, H, W)`` or ``(N, C, H, W)`` -> ``(F, H', W')`` or ``(N, F, H', W')``."""
        x, single = self._batch(self._input(x, self.dtype))
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"Conv2d.forward: x has {x.shape[1]} channels, expected in_channels="
                f"{self.in_channels} (x shape {x.shape if not single else x.shape[1:]})"
            )
        w = self._param("weight", (self.out_channels, self.in_channels, *self.kernel_size), self.dtype)
        b = self._param("bias", (self.out_channels,), self.dtype) if self.use_bias else None
        out_hw = output_size(x.shape[2:], self.kernel_size, self.stride, self.padding, self.dilation, "Conv2d.forward")
        if self.impl == "loop":
            xp = pad_spatial(x, self.padding)
            out = conv2d_loop_forward(xp, w, b, self.stride, self.dilation, out_hw)
            self._cache = (xp, w, single)
        else:
            cols = im2col(x, self.kernel_size, self.stride, self.padding, self.dilation)
            wm = weight_matrix(w)
            out2d = cols @ wm.T  # (N*H'*W', F)
            if b is not None:
                out2d += b
            out = out2d.reshape(x.shape[0], *out_hw, self.out_channels).transpose(0, 3, 1, 2)
            self._cache = (cols, wm, x.shape, single)
        return self._finish_forward(out, single)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dout`` shaped like the output -> ``dx`` shaped like the input; fills ``grads``."""
        dout = self._upstream(dout).astype(self.dtype, copy=False)
        single = self._cache[-1]
        d = dout[np.newaxis] if single else dout
        if self.impl == "loop":
            xp, w, _ = self._cache
            dxp, dw = conv2d_loop_backward(xp, w, d, self.stride, self.dilation)
            dx = unpad_spatial(dxp, self.padding)
        else:
            cols, wm, x_shape, _ = self._cache
            d2 = d.transpose(0, 2, 3, 1).reshape(-1, self.out_channels)  # (N*H'*W', F)
            dw = (d2.T @ cols).reshape(self.out_channels, *self.kernel_size, self.in_channels)
            dw = dw.transpose(0, 3, 1, 2)
            dx = col2im(d2 @ wm, x_shape, self.kernel_size, self.stride, self.padding, self.dilation, d.shape[2:])
        self.grads["weight"] = np.ascontiguousarray(dw)
        if self.use_bias:
            self.grads["bias"] = d.sum(axis=(0, 2, 3))
        return dx[0] if single else dx
