"""A student's conv and max-pooling layers, as one writes them after the tutorial: plain loops, the layer
protocol ``cnnref check`` drives (``params``/``grads`` dicts, ``forward``, ``backward``).

``Conv2d`` and ``MaxPool2d`` are right; ``MaxPool2dMask`` has the classic bug of a mask-based backward
(``window == window.max()``), which gives the gradient to every tied maximum. Check them with

    cnnref check examples/student_layers.py:Conv2d --layer Conv2d
    cnnref check examples/student_layers.py:MaxPool2dMask --layer MaxPool2d
"""

import numpy as np


def one(value):
    """``3`` or ``(3, 3)`` -> 3; anything else is not supported here."""
    if isinstance(value, tuple) and len(value) == 2 and value[0] == value[1]:
        value = value[0]
    if not isinstance(value, int):
        raise NotImplementedError(f"one integer for both axes only, got {value!r}")
    return value


class Conv2d:
    """x (N, C, H, W) or (C, H, W); weight (F, C, k, k); square kernels, one stride and padding."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, bias=True):
        kernel_size, stride, padding = one(kernel_size), one(stride), one(padding)
        if one(dilation) != 1:
            raise NotImplementedError("no dilation")
        self.k, self.stride, self.pad = kernel_size, stride, padding
        scale = 1 / np.sqrt(in_channels * kernel_size * kernel_size)
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.params = {"weight": np.random.default_rng().standard_normal(shape) * scale}
        if bias:
            self.params["bias"] = np.zeros(out_channels)
        self.grads = {}

    def forward(self, x):
        self.single = x.ndim == 3
        x = x[None] if self.single else x
        self.x = np.pad(x, ((0, 0), (0, 0), (self.pad, self.pad), (self.pad, self.pad)))
        w, k, s = self.params["weight"], self.k, self.stride
        n, _, h, wd = self.x.shape
        out = np.zeros((n, w.shape[0], (h - k) // s + 1, (wd - k) // s + 1))
        for i in range(out.shape[2]):
            for j in range(out.shape[3]):
                region = self.x[:, :, i * s:i * s + k, j * s:j * s + k]          # (N, C, k, k)
                out[:, :, i, j] = np.tensordot(region, w, axes=([1, 2, 3], [1, 2, 3]))
        if "bias" in self.params:
            out += self.params["bias"][None, :, None, None]
        return out[0] if self.single else out

    def backward(self, dout):
        dout = dout[None] if self.single else dout
        w, k, s, p = self.params["weight"], self.k, self.stride, self.pad
        dx, dw = np.zeros_like(self.x), np.zeros_like(w)
        for i in range(dout.shape[2]):
            for j in range(dout.shape[3]):
                region = self.x[:, :, i * s:i * s + k, j * s:j * s + k]
                dw += np.tensordot(dout[:, :, i, j], region, axes=([0], [0]))
                dx[:, :, i * s:i * s + k, j * s:j * s + k] += np.tensordot(dout[:, :, i, j], w, axes=([1], [0]))
        self.grads = {"weight": dw}
        if "bias" in self.params:
            self.grads["bias"] = dout.sum(axis=(0, 2, 3))
        dx = dx[:, :, p:dx.shape[2] - p, p:dx.shape[3] - p]
        return dx[0] if self.single else dx


class MaxPool2d:
    """Square windows, stride (default: the window), no padding; a tie's gradient to the first maximum."""

    def __init__(self, kernel_size, stride=None, padding=0):
        if one(padding) != 0:
            raise NotImplementedError("no padding")
        self.k = one(kernel_size)
        self.stride = self.k if stride is None else one(stride)
        self.params, self.grads = {}, {}

    def forward(self, x):
        self.single = x.ndim == 3
        self.x = x[None] if self.single else x
        k, s = self.k, self.stride
        n, c, h, w = self.x.shape
        out = np.zeros((n, c, (h - k) // s + 1, (w - k) // s + 1))
        for i in range(out.shape[2]):
            for j in range(out.shape[3]):
                out[:, :, i, j] = self.x[:, :, i * s:i * s + k, j * s:j * s + k].max(axis=(2, 3))
        return out[0] if self.single else out

    def backward(self, dout):
        dout = dout[None] if self.single else dout
        k, s = self.k, self.stride
        dx = np.zeros_like(self.x)
        n, c = self.x.shape[:2]
        for i in range(dout.shape[2]):
            for j in range(dout.shape[3]):
                window = self.x[:, :, i * s:i * s + k, j * s:j * s + k].reshape(n, c, k * k)
                first = window.argmax(axis=2)                                   # the first maximum
                rows, cols = np.divmod(first, k)
                nn, cc = np.meshgrid(np.arange(n), np.arange(c), indexing="ij")
                dx[nn, cc, i * s + rows, j * s + cols] += dout[:, :, i, j]
        return dx[0] if self.single else dx


class MaxPool2dMask(MaxPool2d):
    """The same forward; backward with a mask of the window's maximum: every tied maximum gets the gradient."""

    def backward(self, dout):
        dout = dout[None] if self.single else dout
        k, s = self.k, self.stride
        dx = np.zeros_like(self.x)
        for i in range(dout.shape[2]):
            for j in range(dout.shape[3]):
                window = self.x[:, :, i * s:i * s + k, j * s:j * s + k]
                mask = window == window.max(axis=(2, 3), keepdims=True)
                dx[:, :, i * s:i * s + k, j * s:j * s + k] += mask * dout[:, :, i, j][:, :, None, None]
        return dx[0] if self.single else dx
