"""2-D convolution (cross-correlation, as PyTorch and Keras compute it), two ways.

Shapes: ``x (N, C, H, W)``, ``weight (F, C/groups, kh, kw)`` (OIHW, as the tutorial and
PyTorch), ``bias (F,)``, ``out (N, F, H', W')``. The layer also takes one
``(C, H, W)`` image and returns ``(F, H', W')``. With ``groups = g`` the channels split
into ``g`` contiguous blocks: output channels ``[k F/g, (k+1) F/g)`` see only input
channels ``[k C/g, (k+1) C/g)`` (PyTorch's ``groups``; ``g = C`` is a depthwise conv).

- ``loop``: the tutorial's per-window loop, its defects fixed (only the spatial
  axes are padded; stride, dilation and rectangular kernels handled; a batch), run
  once per group on that group's channels.
- ``im2col``: every window copied once into a column matrix laid out
  ``(C*kh*kw, N*H'*P)`` (P: the padded width when the width stride is 1, else W'),
  so the forward pass and the weight gradient are one GEMM each and the column
  fill runs over whole rows; the input gradient is a GEMM and col2im a few images
  at a time (col2im: one sum over shifted views for stride 1, else one strided
  accumulation per kernel offset). Large buffers are reused between calls. Groups
  make each GEMM a batch of ``g`` GEMMs over the column matrix's ``g`` row blocks.

Padding (PyTorch's ``Conv2d``): an int or ``(ph, pw)`` (symmetric), ``((top, bottom), (left,
right))``, ``"valid"`` (none) or ``"same"`` (stride 1 only; total ``d*(k-1)`` per axis, the odd
cell at the bottom/right). ``padding_mode``: ``"zeros"``, ``"reflect"``, ``"replicate"`` or
``"circular"``: both implementations pad by writing the border of the padded buffer from the
input (:func:`~reference.windows.fill_border`; zeros leave it untouched) and take the input
gradient back through its adjoint (:func:`~reference.windows.fold_border`: each border cell's
gradient added onto the input cell it copied).
"""

from __future__ import annotations

import numpy as np

from .layer import SpatialLayer
from .validation import as_float_dtype, as_pair, check_choice, check_int
from .windows import (
    PAD_MODES,
    Pads,
    add_flat_windows,
    check_pad_mode,
    fill_border,
    flat_slack,
    flat_windows,
    fold_border,
    output_size,
    pad_spatial,
    row_pitch,
    shifted_windows,
    unpad_spatial,
    window_slices,
)

IMPLS = ("loop", "im2col")
# Bytes of input-gradient columns produced and consumed at a time: about a core's L2 cache (measured best).
CHUNK_BYTES = 1 << 21


def conv_pads(padding, kernel, stride, dilation, where: str = "Conv2d") -> Pads:
    """PyTorch's ``Conv2d`` ``padding`` -> ``((top, bottom), (left, right))``.

    ``padding``: an int, ``(ph, pw)``, ``((top, bottom), (left, right))``, ``"valid"`` or ``"same"``
    (requires ``stride`` 1; each axis pads ``total = d*(k-1)``, ``total // 2`` at the top/left and
    the rest at the bottom/right, as PyTorch). ``kernel``, ``stride``, ``dilation``: pairs.
    """
    if isinstance(padding, str):
        check_choice(padding, ("valid", "same"), where, "padding")
        if padding == "valid":
            return ((0, 0), (0, 0))
        if stride != (1, 1):
            raise ValueError(f"{where}: padding='same' needs stride 1 (PyTorch's rule: the output size of a strided "
                             f"'same' convolution is ambiguous), got stride={stride}; give the padding explicitly, "
                             f"e.g. layouts.keras_same_padding for Keras' rule")
        totals = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
        return ((totals[0] // 2, totals[0] - totals[0] // 2), (totals[1] // 2, totals[1] - totals[1] // 2))
    if isinstance(padding, (tuple, list)) and len(padding) == 2 and all(isinstance(p, (tuple, list)) for p in padding):
        return (as_pair(padding[0], where, "padding (top, bottom)", 0),
                as_pair(padding[1], where, "padding (left, right)", 0))
    ph, pw = as_pair(padding, where, "padding", 0)
    return ((ph, ph), (pw, pw))


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
class Workspace:
    """Arrays a layer reuses from call to call while its input shape stays the same.

    A fresh multi-megabyte array costs more than filling it (its pages are handed over
    one by one on first touch), so the im2col kernels write into these with ``out=``.
    Only the latest input shape is kept, which bounds the memory held.
    """

    def __init__(self) -> None:
        self.key: tuple | None = None
        self.arrays: dict[str, np.ndarray] = {}

    def get(self, key: tuple, name: str, shape: tuple[int, ...], dtype, zero: bool = False) -> np.ndarray:
        """The buffer ``name`` for input ``key``; new (zeros if ``zero``) when the key or shape changed."""
        if key != self.key:
            self.key, self.arrays = key, {}
        arr = self.arrays.get(name)
        if arr is None or arr.shape != shape or arr.dtype != dtype:
            arr = self.arrays[name] = (np.zeros if zero else np.empty)(shape, dtype=dtype)
        return arr


def padded_size(hw, pads: Pads) -> tuple[int, int]:
    """``(Hp, Wp)``: ``(H, W)`` plus the padding on both sides."""
    return hw[0] + sum(pads[0]), hw[1] + sum(pads[1])


def _flat_padded(ws, key, name, x_shape, kernel, pads, dilation, dtype):
    """A flat padded buffer ``(N, C, Hp*Wp + slack)``, its ``(N, C, Hp, Wp)`` image and ``(N, C, H, W)``
    interior views."""
    n, c = x_shape[:2]
    hp, wp = padded_size(x_shape[2:], pads)
    buf = ws.get(key, name, (n, c, hp * wp + flat_slack(kernel, dilation)), dtype, zero=True)
    image = buf[:, :, : hp * wp].reshape(n, c, hp, wp)
    return buf, image, unpad_spatial(image, pads), (hp, wp)


def im2col(x, kernel, stride, pads, dilation, out_hw, ws, key, mode="zeros"):
    """``x (N, C, H, W)`` -> columns ``(C*kh*kw, N*H'*P)``, written into the workspace ``ws``.

    Rows are ``(c, a, b)``, OIHW's order, so the weight matrix is ``w.reshape(F, -1)``;
    columns are ``(n, i, j)`` with ``j < P =`` :func:`row_pitch` (``j >= W'`` are not
    windows: their results are dropped). ``pads``: ``((top, bottom), (left, right))``. With
    ``mode`` ``"zeros"`` the padded copy of ``x`` keeps its zero border from call to call, so
    only the interior is written; other modes rewrite the border from the interior.
    """
    n, c = x.shape[:2]
    buf, image, interior, padded_hw = _flat_padded(ws, key, "xp", x.shape, kernel, pads, dilation, x.dtype)
    np.copyto(interior, x)
    fill_border(image, pads, mode)
    pitch = row_pitch(out_hw[1], padded_hw[1], stride[1])
    cols = ws.get(key, "cols", (c, *kernel, n, out_hw[0], pitch), x.dtype)
    windows = flat_windows(buf, padded_hw, kernel, stride, dilation, out_hw[0], pitch)
    np.copyto(cols, windows.transpose(1, 2, 3, 0, 4, 5))
    return cols.reshape(c * kernel[0] * kernel[1], -1)


def col2im(dcols, dx, kernel, stride, pads, dilation, out_h, buf, mode="zeros"):
    """Adjoint of :func:`im2col`: window gradients ``dcols`` -> ``dx (N, C, H, W)``, written in place.

    Stride 1: ``dcols`` is laid out ``(C*kh*kw, N*R*Wp)`` as :func:`shifted_windows` reads
    it, and col2im is one sum over the window offsets. Otherwise ``dcols`` is laid out
    as :func:`im2col`'s columns, ``(C*kh*kw, N*H'*P)``, and accumulated one offset at a
    time. Columns ``j >= W'`` must be zero. ``buf`` holds the padded gradient (at least
    ``N*C*(Hp*Wp + slack)`` elements); with a ``mode`` other than zeros its border is folded
    back onto the interior (:func:`fold_border`) before the interior is taken.
    """
    n, c = dx.shape[:2]
    hp, wp = padded_size(dx.shape[2:], pads)
    flat = buf[: n * c * (hp * wp + flat_slack(kernel, dilation))].reshape(n, c, -1)
    if stride == (1, 1):
        np.add.reduce(shifted_windows(dcols, n, (hp, wp), kernel, dilation), axis=(3, 4),
                      out=flat[:, :, : hp * wp].transpose(1, 0, 2))
    else:
        flat.fill(0)
        dwin = dcols.reshape(c, *kernel, n, out_h, -1).transpose(3, 0, 1, 2, 4, 5)
        add_flat_windows(flat, dwin, (hp, wp), stride, dilation)
    image = flat[:, :, : hp * wp].reshape(n, c, hp, wp)
    np.copyto(dx, unpad_spatial(fold_border(image, pads, mode), pads))
    return dx


def conv2d_input_grad(d, dpad, wg, x_shape, kernel, stride, pads, dilation, ws, key, mode="zeros"):
    """``dx (N, C, H, W)`` from ``dout d (N, F, H', W')``: ``wm.T @ dout`` then :func:`col2im`, a few
    images at a time so that col2im reads the window gradients while they are still in cache.
    ``wg (g, F/g, C/g*kh*kw)`` is the weight matrix per group (one GEMM per group).

    ``dpad (F, N, H', P)`` is ``d`` in the columns' layout (zero at ``j >= W'``); with stride
    1 the window gradients need ``d`` with ``dh*(kh-1)`` zero rows above and below instead.
    """
    n, c = x_shape[:2]
    g, fg, kg = wg.shape
    f, k = g * fg, g * kg
    hp, wp = padded_size(x_shape[2:], pads)
    oh, ow = d.shape[2:]
    if stride == (1, 1):
        top = dilation[0] * (kernel[0] - 1)
        dz = ws.get(key, "dout_rows", (f, n, oh + 2 * top, dpad.shape[3]), d.dtype, zero=True)
        np.copyto(dz[:, :, top: top + oh, :ow], d.transpose(1, 0, 2, 3))
    else:
        dz = dpad
    per_image = dz.shape[2] * dz.shape[3]
    chunk = max(1, min(n, CHUNK_BYTES // (k * per_image * d.itemsize)))
    dcols = ws.get(key, "dcols", (k * chunk * per_image,), d.dtype)
    dxp = ws.get(key, "dxp", (chunk * c * (hp * wp + flat_slack(kernel, dilation)),), d.dtype)
    dx = np.empty(x_shape, dtype=d.dtype)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        block = dcols[: k * (stop - start) * per_image]
        np.matmul(wg.transpose(0, 2, 1), dz[:, start:stop].reshape(g, fg, -1), out=block.reshape(g, kg, -1))
        col2im(block.reshape(k, -1), dx[start:stop], kernel, stride, pads, dilation, oh, dxp, mode)
    return dx


class Conv2d(SpatialLayer):
    """``Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
    bias=True, impl="im2col", dtype=np.float64, rng=None, groups=1, padding_mode="zeros")``.

    ``params["weight"]``: ``(F, C/groups, kh, kw)``; ``params["bias"]``: ``(F,)``. Weights and
    bias are drawn as ``torch.nn.Conv2d`` draws them, ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``
    with ``fan_in = C/groups*kh*kw``, from ``rng`` (a Generator or a seed).
    ``padding`` and ``padding_mode`` as ``torch.nn.Conv2d`` (see the module docstring);
    ``self.pads`` is the resolved ``((top, bottom), (left, right))``. ``groups`` must divide both
    ``in_channels`` and ``out_channels``.
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
        groups: int = 1,
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        self._workspace = Workspace()
        where = "Conv2d"
        self.in_channels = check_int(in_channels, where, "in_channels", 1)
        self.out_channels = check_int(out_channels, where, "out_channels", 1)
        self.kernel_size = as_pair(kernel_size, where, "kernel_size", 1)
        self.stride = as_pair(stride, where, "stride", 1)
        self.dilation = as_pair(dilation, where, "dilation", 1)
        self.pads = conv_pads(padding, self.kernel_size, self.stride, self.dilation, where)
        (top, bottom), (left, right) = self.pads
        # PyTorch's spelling when the padding is symmetric, else the explicit pairs
        self.padding = (top, left) if (top, left) == (bottom, right) else self.pads
        self.padding_mode = check_choice(padding_mode, PAD_MODES, where, "padding_mode")
        self.groups = check_int(groups, where, "groups", 1)
        for name, value in (("in_channels", self.in_channels), ("out_channels", self.out_channels)):
            if value % self.groups:
                raise ValueError(f"Conv2d: {name} must be divisible by groups={self.groups}, got {name}={value}")
        self.impl = check_choice(impl, IMPLS, where, "impl")
        self.dtype = as_float_dtype(dtype, where)
        self.use_bias = bool(bias)
        gen = default_rng(rng)
        fan_in = self.in_channels // self.groups * self.kernel_size[0] * self.kernel_size[1]
        bound = 1.0 / np.sqrt(fan_in)
        shape = self.weight_shape
        self.params["weight"] = gen.uniform(-bound, bound, shape).astype(self.dtype)
        if self.use_bias:
            self.params["bias"] = gen.uniform(-bound, bound, self.out_channels).astype(self.dtype)

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        """``(F, C/groups, kh, kw)``."""
        return (self.out_channels, self.in_channels // self.groups, *self.kernel_size)

    def __repr__(self) -> str:
        groups = f", groups={self.groups}" if self.groups != 1 else ""
        mode = f", padding_mode={self.padding_mode!r}" if self.padding_mode != "zeros" else ""
        return (
            f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}{mode}, dilation={self.dilation}{groups}, "
            f"bias={self.use_bias}, impl={self.impl!r}, dtype={self.dtype.name})"
        )

    def _group_slices(self) -> list[tuple[slice, slice]]:
        """``(input channels, output channels)`` of each group."""
        cg, fg = self.in_channels // self.groups, self.out_channels // self.groups
        return [(slice(k * cg, (k + 1) * cg), slice(k * fg, (k + 1) * fg)) for k in range(self.groups)]

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x (C, H, W)`` or ``(N, C, H, W)`` -> ``(F, H', W')`` or ``(N, F, H', W')``."""
        x, single = self._batch(self._input(x, self.dtype))
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"Conv2d.forward: x has {x.shape[1]} channels, expected in_channels="
                f"{self.in_channels} (x shape {x.shape if not single else x.shape[1:]})"
            )
        w = self._param("weight", self.weight_shape, self.dtype)
        b = self._param("bias", (self.out_channels,), self.dtype) if self.use_bias else None
        out_hw = output_size(x.shape[2:], self.kernel_size, self.stride, self.pads, self.dilation, "Conv2d.forward")
        check_pad_mode(x.shape[2:], self.pads, self.padding_mode, "Conv2d.forward")
        if self.impl == "loop":
            xp = fill_border(pad_spatial(x, self.pads), self.pads, self.padding_mode)
            out = np.empty((x.shape[0], self.out_channels, *out_hw), dtype=x.dtype)
            for cs, fs in self._group_slices():
                out[:, fs] = conv2d_loop_forward(xp[:, cs], w[fs], None if b is None else b[fs], self.stride,
                                                 self.dilation, out_hw)
            self._cache = (xp, w, single)
        else:
            key = (x.shape, x.dtype, self.kernel_size, self.stride, self.pads, self.dilation, self.padding_mode)
            cols = im2col(x, self.kernel_size, self.stride, self.pads, self.dilation, out_hw, self._workspace, key,
                          self.padding_mode)
            g = self.groups
            wg = w.reshape(g, self.out_channels // g, -1)  # (g, F/g, C/g*kh*kw)
            out2d = self._workspace.get(key, "out", (self.out_channels, cols.shape[1]), x.dtype)
            np.matmul(wg, cols.reshape(g, -1, cols.shape[1]), out=out2d.reshape(g, -1, cols.shape[1]))
            valid = out2d.reshape(self.out_channels, x.shape[0], out_hw[0], -1)[..., : out_hw[1]]
            out = np.empty((x.shape[0], self.out_channels, *out_hw), dtype=x.dtype)
            if b is not None:
                np.add(valid.transpose(1, 0, 2, 3), b[:, None, None], out=out)
            else:
                np.copyto(out, valid.transpose(1, 0, 2, 3))
            self._cache = (cols, wg, x.shape, key, single)
        return self._finish_forward(out, single)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dout`` shaped like the output -> ``dx`` shaped like the input; fills ``grads``."""
        dout = self._upstream(dout).astype(self.dtype, copy=False)
        single = self._cache[-1]
        d = dout[np.newaxis] if single else dout
        if self.impl == "loop":
            xp, w, _ = self._cache
            dxp, dw = np.empty_like(xp), np.empty_like(w)
            for cs, fs in self._group_slices():
                dxp[:, cs], dw[fs] = conv2d_loop_backward(xp[:, cs], w[fs], d[:, fs], self.stride, self.dilation)
            dx = unpad_spatial(fold_border(dxp, self.pads, self.padding_mode), self.pads)
        else:
            cols, wg, x_shape, key, _ = self._cache
            n, f, oh, ow = d.shape
            # dout in the columns' (F, N, H', P) order; the positions past a row end stay zero
            dpad = self._workspace.get(key, "dout", (f, n, oh, cols.shape[1] // (n * oh)), d.dtype, zero=True)
            np.copyto(dpad[..., :ow], d.transpose(1, 0, 2, 3))
            g = self.groups
            d2 = dpad.reshape(g, f // g, -1)  # (g, F/g, N*H'*P)
            cg = cols.reshape(g, -1, cols.shape[1])  # (g, C/g*kh*kw, N*H'*P)
            # cols @ d2.T, then transposed, is the faster GEMM orientation
            dw = np.matmul(cg, d2.transpose(0, 2, 1)).transpose(0, 2, 1).reshape(self.weight_shape)
            dx = conv2d_input_grad(d, dpad, wg, x_shape, self.kernel_size, self.stride, self.pads, self.dilation,
                                   self._workspace, key, self.padding_mode)
        self.grads["weight"] = np.ascontiguousarray(dw)
        if self.use_bias:
            self.grads["bias"] = d.sum(axis=(0, 2, 3))
        return dx[0] if single else dx
