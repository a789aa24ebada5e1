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
  fill runs over whole rows; the weight gradient reads the same columns. The
  input gradient, at stride 1 (and at most half as many output as input channels), is
  the convolution of ``dout`` with the flipped kernel (``w`` transposed to ``(C, F, kh, kw)``
  and reversed along both kernel axes): one more column fill and GEMM, no accumulation
  (:func:`input_grad_method`); otherwise a GEMM and col2im a few images at a time (col2im:
  one sum over shifted views for stride 1, else one strided accumulation per kernel
  offset). A row of ones in the column matrix carries the bias through the forward GEMM
  and its gradient through the weight-gradient GEMM. Groups make each GEMM a batch of
  ``g`` GEMMs over the column matrix's ``g`` row blocks. The buffers, sizes and views
  depend on the input shape only, so they are built once per shape (:class:`Im2colPlan`)
  and a call only copies and multiplies. A batch is split into chunks of images, run at
  once on :func:`~reference.threads.get_num_threads` threads (:class:`BatchIm2col`), and
  each chunk runs through a plan a cache-sized block of images at a time, its backward
  filling each block's columns again (:class:`ChunkIm2col`); the weight gradient is the
  sum of the blocks'.

Padding (PyTorch's ``Conv2d``): an int or ``(ph, pw)`` (symmetric), ``((top, bottom), (left,
right))``, ``"valid"`` (none) or ``"same"`` (stride 1 only; total ``d*(k-1)`` per axis, the odd
cell at the bottom/right). ``padding_mode``: ``"zeros"``, ``"reflect"``, ``"replicate"`` or
``"circular"``: both implementations pad by writing the border of the padded buffer from the
input (:func:`~reference.windows.fill_border`; zeros leave it untouched) and take the input
gradient back through its adjoint (:func:`~reference.windows.fold_border`: each border cell's
gradient added onto the input cell it copied).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .layer import SpatialLayer
from .threads import batch_slices, get_num_threads, run_parallel
from .validation import as_float_dtype, as_pair, check_allocation, check_bool, check_choice, check_int
from .windows import (
    PAD_MODES,
    Pads,
    ShiftedWindowGrads,
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
# Bytes of column matrix a thread fills and multiplies at a time (ChunkIm2col's blocks): a core's L2 cache
# here is 512 KiB; blocks of one to two images' columns (0.5-1 MiB at `mid`) measured best, four worse.
BLOCK_BYTES = 1 << 20


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
# The loop kernels multiply with np.matmul, never np.dot or np.tensordot: np.dot treats an operand of one element as
# a scalar and hands it to BLAS's axpy, which skips a zero scalar, so 0 * inf gives 0 instead of NaN (one image, one
# channel per group, a 1x1 kernel), where im2col and PyTorch give NaN. np.matmul always multiplies.
def conv2d_loop_forward(xp, w, b, stride, dilation, out_hw):
    """``xp (N, C, Hp, Wp)`` padded input -> ``(N, F, H', W')``."""
    out = np.empty((xp.shape[0], w.shape[0], *out_hw), dtype=xp.dtype)
    wm = w.reshape(w.shape[0], -1).T  # (C*kh*kw, F)
    for i, j, rows, cols in window_slices(out_hw, w.shape[2:], stride, dilation):
        region = xp[:, :, rows, cols]  # (N, C, kh, kw)
        out[:, :, i, j] = np.matmul(region.reshape(len(region), len(wm)), wm)
    if b is not None:
        out += b[:, None, None]
    return out


def conv2d_loop_backward(xp, w, dout, stride, dilation):
    """Returns ``(dxp, dw)``: gradients w.r.t. the padded input and the weight."""
    return conv2d_loop_input_grad(w, dout, stride, dilation, xp.shape), conv2d_loop_weight_grad(xp, dout, stride,
                                                                                                dilation, w.shape)


def conv2d_loop_input_grad(w, dout, stride, dilation, xp_shape):
    """``w (F, C, kh, kw)``, ``dout (N, F, H', W')`` -> ``dxp (N, C, Hp, Wp)``, the gradient w.r.t. the padded
    input (also the forward of a transposed convolution: :mod:`reference.conv_transpose`)."""
    dxp = np.zeros(xp_shape, dtype=dout.dtype)
    wm = w.reshape(w.shape[0], -1)  # (F, C*kh*kw)
    for i, j, rows, cols in window_slices(dout.shape[2:], w.shape[2:], stride, dilation):
        dxp[:, :, rows, cols] += np.matmul(dout[:, :, i, j], wm).reshape(len(dout), *w.shape[1:])
    return dxp


def conv2d_loop_weight_grad(xp, dout, stride, dilation, w_shape):
    """``xp (N, C, Hp, Wp)`` padded input, ``dout (N, F, H', W')`` -> ``dw (F, C, kh, kw)``."""
    dw = np.zeros(w_shape, dtype=dout.dtype)
    dwm = dw.reshape(w_shape[0], -1)  # a view: (F, C*kh*kw)
    for i, j, rows, cols in window_slices(dout.shape[2:], w_shape[2:], stride, dilation):
        region = xp[:, :, rows, cols]  # (N, C, kh, kw)
        dwm += np.matmul(dout[:, :, i, j].T, region.reshape(len(region), dwm.shape[1]))
    return dw


# -- im2col kernels ------------------------------------------------------------
def padded_size(hw, pads: Pads) -> tuple[int, int]:
    """``(Hp, Wp)``: ``(H, W)`` plus the padding on both sides."""
    return hw[0] + sum(pads[0]), hw[1] + sum(pads[1])


def _flat_image(buf: np.ndarray, padded_hw) -> np.ndarray:
    """The ``(N, C, Hp, Wp)`` image at the start of a flat padded buffer ``(N, C, Hp*Wp + slack)``."""
    hp, wp = padded_hw
    return buf[:, :, : hp * wp].reshape(*buf.shape[:2], hp, wp)


def input_grad_method(stride, in_channels: int, out_channels: int) -> str:
    """How :class:`Im2colPlan` computes the input gradient: ``"flipped"`` (a convolution of ``dout`` with the
    flipped kernel) at stride 1 when ``out_channels <= in_channels // 2``, else ``"col2im"``. Both move one
    column matrix through memory, ``F*kh*kw`` rows for the flipped kernel's against ``C*kh*kw`` for col2im's, and
    the flipped kernel fills its columns from a padded copy of ``dout`` first. Measured on 2 cores, float32,
    forward + backward, 3x3 kernel, padding 1: ``F = C/4`` (32x64x32x32 -> 16) 40-46 ms flipped against 47-49
    ms col2im; ``F = C`` (32x32x32x32, 64x16x28x28) and ``F = 2C`` (the benchmarks' ``mid``) col2im 10-20%
    faster; ``F = 8C`` (``batch64``) col2im about 5x faster. With the blocks of :class:`ChunkIm2col` (and the
    col2im GEMM writing between zero rows instead of reading them) the two measured within noise at ``F = C/4``
    (49.5 and 50.8 ms) and col2im still ahead at ``mid`` (25.1 against 26.6 ms)."""
    return "flipped" if tuple(stride) == (1, 1) and 2 * out_channels <= in_channels else "col2im"


def col2im_layout(stride, channels_per_group: int) -> str:
    """How :class:`Im2colPlan` stores the window gradients for col2im: at stride 1 ``"shifted"``
    (:class:`~reference.windows.ShiftedWindowGrads`: one GEMM per kernel row, col2im a BLAS product with
    ones) when each group has two input channels or more, else ``"plain"`` (one GEMM, rows ``(c, a, b)``,
    col2im numpy's reduction over :func:`~reference.windows.shifted_windows`); ``"strided"`` at other
    strides. With one channel per group the shifted layout's GEMMs have ``kw`` rows each, and their calls
    cost more than its faster sum saves. Measured per block, one thread, float32, 3x3, 16 output channels,
    32 images of 28x28: 1 input channel 379 us shifted against 288 plain; 2 channels 461 against 502; 16
    channels 231 against 328."""
    if tuple(stride) != (1, 1):
        return "strided"
    return "shifted" if channels_per_group >= 2 else "plain"


class Im2colPlan:
    """The im2col kernels for one input shape: sizes, buffers and every view into them, built once.

    A fresh multi-megabyte array costs more than filling it (its pages are handed over one by one
    on first touch), and for one small image deriving sizes and views costs as much as the
    arithmetic, so a layer keeps the plan of its latest input shape (which bounds the memory held)
    and a call only copies and multiplies. Buffers (``g`` groups, ``K = C/g*kh*kw``, ``M = N*H'*P``):

    - ``xp (N, C, Hp*Wp + slack)``: the padded input, flat; a zero border stays from call to call;
    - ``cols (g, K + bias, M)``: the column matrix (see :meth:`forward`), plus a row of ones when
      the layer has a bias, so that the bias rides in the forward GEMM and its gradient in the
      weight-gradient GEMM (``dout`` is zero at the columns that are not windows);
    - ``wb (g, F/g, K + bias)``: the weight matrix and the bias column, copied in by each forward;
    - ``out2d (g, F/g, M)``: the forward GEMM's result;
    - backward, made by the first backward: ``dpad`` (``dout`` in the columns' layout) and, by
      ``input_grad``: ``"flipped"`` (stride 1 only) the plan of the convolution of ``dout`` with the
      flipped kernel (:meth:`flipped_input_grad_gemm`); ``"col2im"``: ``dcols`` and ``dxp``
      (the window gradients, at stride 1 a :class:`~reference.windows.ShiftedWindowGrads`, and the
      padded gradient, a few images at a time: :meth:`input_grad`).
    """

    # What a forward + backward runs, in order, per input-gradient method; the GEMMs are the phases whose
    # name ends in "gemm".
    COL2IM_PHASES = ("fill_columns", "forward_gemm", "output", "load_dout", "weight_grad_gemm", "input_grad_gemm",
                     "col2im")
    FLIPPED_PHASES = ("fill_columns", "forward_gemm", "output", "load_dout", "weight_grad_gemm", "dout_columns",
                      "flipped_input_grad_gemm", "input_grad_output")

    def __init__(self, x_shape, out_hw, kernel, stride, pads, dilation, mode, groups, out_channels, bias, dtype,
                 input_grad: str = "col2im"):
        self._arguments = (x_shape, out_hw, kernel, stride, pads, dilation, mode, groups, out_channels, bias, dtype,
                           input_grad)
        n, c = x_shape[:2]
        self.input_grad_method = check_choice(input_grad, ("col2im", "flipped"), "Im2colPlan", "input_grad")
        if input_grad == "flipped" and tuple(stride) != (1, 1):
            raise ValueError(f"Im2colPlan: input_grad='flipped' needs stride 1, got stride={stride}")
        self.phases = self.FLIPPED_PHASES if input_grad == "flipped" else self.COL2IM_PHASES
        self.x_shape, self.out_hw, self.kernel, self.stride, self.pads = x_shape, out_hw, kernel, stride, pads
        self.dilation, self.mode, self.groups, self.bias, self.dtype = dilation, mode, groups, bias, dtype
        self.padded_hw = hp, wp = padded_size(x_shape[2:], pads)
        self.no_pad = pads == ((0, 0), (0, 0))
        g, f = groups, out_channels
        self.kg = kg = c // g * kernel[0] * kernel[1]
        self.pitch = pitch = row_pitch(out_hw[1], wp, stride[1])
        self.m = m = n * out_hw[0] * pitch
        self.xp = np.zeros((n, c, hp * wp + flat_slack(kernel, dilation)), dtype=dtype)
        self.image = _flat_image(self.xp, self.padded_hw)
        self.interior = unpad_spatial(self.image, pads)
        self.cols = np.empty((g, kg + bias, m), dtype=dtype)
        self.cols[:, kg:] = 1
        self.windows = self.column_windows(self.xp)
        self.cols_fill = self.cols[:, :kg].reshape(self.windows.shape, copy=False)
        self.wb = np.empty((g, f // g, kg + bias), dtype=dtype)
        self.w_fill = self.wb[..., :kg]
        # the weights' and bias' places in wb shaped like w (F, C/g, kh, kw) and b (F,): copied in without a reshape
        self.w_target = self.w_fill.reshape(f, c // g, *kernel, copy=False)
        self.b_target = self.wb[..., kg].reshape(f, copy=False) if bias else None
        self.out2d = np.empty((g, f // g, m), dtype=dtype)
        self.gemm_operands = unstacked(self.wb, self.cols, self.out2d)
        self.valid = self.out2d.reshape(f, n, out_hw[0], pitch)[..., : out_hw[1]].transpose(1, 0, 2, 3)  # out's order
        self.out_shape = (n, f, *out_hw)
        self.key: tuple | None = None  # what the layer built this plan for (Conv2d.im2col_plan)
        self._backward_ready = False
        self.nonfinite = False  # set by each weight_grad_gemm (see there)
        # (H', W') or less: the output positions whose dout is the caller's (see unreached)
        self.reached = tuple(out_hw)
        self._col2im: Im2colPlan | None = None  # a "flipped" plan's input gradient with non-finite weights

    def __reduce__(self):
        """Copies and pickles: a plan of the same arguments holding the same columns and weights (what a
        backward reads), its views rebuilt. (numpy copies a view as an independent array, so copying the
        attributes one by one would leave the copy filling buffers its views no longer see.)"""
        return _restore_plan, (self._arguments, self.key, self.cols, self.wb)

    def forward(self, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, out: np.ndarray | None = None) -> np.ndarray:
        """``x (N, C, H, W)``, ``w (F, C/g, kh, kw)``, ``b (F,)`` or None -> ``out (N, F, H', W')`` (new, or
        written into ``out``).

        Columns: rows ``(c, a, b)`` (OIHW's order, so the weight matrix is ``w.reshape(F, -1)``),
        columns ``(n, i, j)`` with ``j < P =`` :func:`row_pitch`; ``j >= W'`` are not windows and
        their results are dropped. The phases (:attr:`phases`) are methods so that a profiler can
        time them one by one.
        """
        self.fill_columns(x)
        self.forward_gemm(w, b)
        return self.output(out)

    def fill_columns(self, x: np.ndarray) -> None:
        """Copy ``x`` into the padded buffer, write its border (modes other than ``"zeros"``; zeros
        leave it untouched), then copy every window into the column matrix."""
        np.copyto(self.interior, x)
        if self.mode != "zeros":
            fill_border(self.image, self.pads, self.mode)
        np.copyto(self.cols_fill, self.windows)

    def column_windows(self, xp: np.ndarray) -> np.ndarray:
        """Every window of ``xp`` (a flat padded buffer shaped like :attr:`xp`) as a view in the columns'
        order, ``(g, C/g, kh, kw, N, H', P)``, for :meth:`copy_columns`."""
        n, c = xp.shape[:2]
        windows = flat_windows(xp, self.padded_hw, self.kernel, self.stride, self.dilation, self.out_hw[0], self.pitch)
        grouped = (self.groups, c // self.groups, *self.kernel, n, self.out_hw[0], self.pitch)
        return windows.transpose(1, 2, 3, 0, 4, 5).reshape(grouped, copy=False)

    def copy_columns(self, windows: np.ndarray) -> None:
        """Copy :meth:`column_windows` into the column matrix."""
        np.copyto(self.cols_fill, windows)

    def forward_gemm(self, w: np.ndarray, b: np.ndarray | None) -> None:
        """``out2d = [w | b] @ cols``: one GEMM per group."""
        self.load_weights(w, b)
        self.gemm()

    def load_weights(self, w: np.ndarray, b: np.ndarray | None) -> None:
        """Copy ``w (F, C/g, kh, kw)`` and ``b (F,)`` (or None) into ``wb``."""
        np.copyto(self.w_target, w)
        if b is not None:
            np.copyto(self.b_target, b)

    def gemm(self) -> None:
        """``out2d = wb @ cols`` with the weights already in ``wb``."""
        wb, cols, out2d = self.gemm_operands
        np.matmul(wb, cols, out=out2d)

    def output(self, out: np.ndarray | None = None) -> np.ndarray:
        """The GEMM's result without the columns that are not windows, as ``(N, F, H', W')`` (new, or written
        into ``out``)."""
        if out is None:
            return self.valid.copy()  # C order
        np.copyto(out, self.valid)
        return out

    def backward(self, d: np.ndarray, dx: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``dout d (N, F, H', W')`` -> ``(dx (N, C, H, W), dw (g, F/g, K), db (F,) or None)``, from the
        latest :meth:`forward`'s columns and weights; ``dx`` new, or written into ``dx``."""
        self.load_dout(d)
        dw, db = self.weight_grad_gemm()
        if dx is None:
            dx = np.empty(self.x_shape, dtype=self.dtype)
        if self.input_grad_method == "col2im":
            self.input_grad(dx)
        elif self.nonfinite:
            self._nonfinite_flipped_input_grad(d, dx)
        else:
            self.dout_columns(d)
            self.flipped_input_grad_gemm()
            self.input_grad_output(dx)
        return dx, dw, db

    def unreached(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The positions of ``a`` (columns or window gradients: its last axis holds whole images of ``H'`` rows of
        :attr:`pitch` positions) where ``dout`` is not the caller's, as two views (written through): ``j >=
        reached[1]`` in every row, which includes the positions past each row's end (``j >= W'``), and the rows
        ``i >= reached[0]``. :attr:`reached` is ``(H', W')`` unless a caller sets less (:class:`ConvTranspose2d
        <reference.conv_transpose.ConvTranspose2d>`, whose input, this plan's ``dout``, is extended by zero rows
        and columns). What :meth:`weight_grad_gemm` and :meth:`input_grad_gemm` zero when a value is non-finite."""
        grid = a.reshape(*a.shape[:-1], -1, self.out_hw[0], self.pitch, copy=False)
        rows, cols = self.reached
        return grid[..., cols:], grid[..., rows:, :cols]

    def _nonfinite_flipped_input_grad(self, d: np.ndarray, dx: np.ndarray) -> None:
        """``dx`` by col2im for a ``"flipped"`` plan whose weights are not all finite: the flipped kernel multiplies
        every weight by ``dout``'s zero border, and a non-finite weight would turn those zeros into NaN in ``dx``."""
        if self._col2im is None:
            self._col2im = Im2colPlan(*self._arguments[:-1], "col2im")
        plan = self._col2im
        plan.nonfinite = True
        plan.load_weights(self.w_target, None)  # the forward's weights
        plan.load_dout(d)
        plan.input_grad(dx)

    def load_dout(self, d: np.ndarray) -> None:
        """Copy ``dout`` into the columns' layout, ``dpad`` (and, for col2im at stride 1, the forward's weights
        into the input-gradient GEMM's row order, ``wt``)."""
        if not self._backward_ready:
            self._make_backward()
        np.copyto(self.dout_target, d)
        if self.wt_source is not None:
            np.copyto(self.wt_fill, self.wt_source)

    def weight_grad_gemm(self) -> tuple[np.ndarray, np.ndarray | None]:
        """``(dw (g, F/g, K), db (F,) or None)``: ``cols @ dpad.T``, the bias gradient in its last column.

        The GEMMs meet zeros that are not part of the convolution: ``dout``'s past each row's end
        (:meth:`unreached`), whose columns hold input values, and, in the flipped kernel's input gradient,
        ``dout``'s border. A finite value times such a zero adds nothing, but a non-finite one makes it NaN where
        the loop implementation has no such product. So when this GEMM's result or the forward's weights hold a
        non-finite value (their dot product is not finite; an overflow to inf only costs a second GEMM),
        :attr:`nonfinite` is set for this block's backward: the GEMM runs again with the columns past each row's end
        zeroed, the input-gradient GEMM zeroes its window gradients there, and a flipped plan computes ``dx`` by
        col2im. Measured: the check takes 1.5 us, against 5-10 us for this GEMM at the tutorial's shape.
        """
        # cols @ dpad.T, then transposed, is the faster GEMM orientation
        dwb = np.matmul(*self.weight_grad_operands)
        self.nonfinite = not math.isfinite(np.vdot(dwb, self.wb))  # both (K + bias) x F, contiguous
        if self.nonfinite:
            for unreached in self.unreached(self.cols[:, : self.kg]):
                unreached[...] = 0
            dwb = np.matmul(*self.weight_grad_operands)
        dwb = (dwb[np.newaxis] if dwb.ndim == 2 else dwb).transpose(0, 2, 1)  # (g, F/g, K + bias)
        db = dwb[..., self.kg].reshape(-1) if self.bias else None
        return dwb[..., : self.kg], db

    def _make_backward(self) -> None:
        """The backward's buffers and views (see :meth:`flipped_input_grad_gemm` and :meth:`input_grad`)."""
        n, c = self.x_shape[:2]
        g, fg, _ = self.wb.shape
        oh, ow = self.out_hw
        f, dt = g * fg, self.dtype
        # dpad (F, N, H', P): dout in the columns' order (zero at j >= W'), read by both gradient GEMMs
        dpad = np.zeros((f, n, oh, self.pitch), dtype=dt)
        self.dpad, self.dout_target = dpad.reshape(g, fg, -1), dpad[..., :ow].transpose(1, 0, 2, 3)  # d's order
        self.weight_grad_operands = unstacked(self.cols, self.dpad.transpose(0, 2, 1))
        self.wt_source = None
        if self.input_grad_method == "flipped":
            self._make_flipped()
            self._backward_ready = True
            return
        k, (kh, kw), cg = g * self.kg, self.kernel, c // g
        self.col2im_layout = col2im_layout(self.stride, cg)
        # the window gradients of an image: dh*(kh-1) zero rows above and below at stride 1
        self.dcols_top = top = self.dilation[0] * (kh - 1) if self.stride == (1, 1) else 0
        self.dcols_rows = oh + 2 * top
        per_image = self.dcols_rows * self.pitch
        chunk = max(1, min(n, CHUNK_BYTES // (k * per_image * dpad.itemsize)))
        if self.col2im_layout == "shifted":  # from the weights in ShiftedWindowGrads' row order (b, c)
            self.wt = np.empty((g, kh, 1, kw * cg, fg), dtype=dt)
            self.wt_fill = self.wt.reshape(g, kh, kw, cg, fg)
            self.wt_source = self.w_fill.reshape(g, fg, cg, kh, kw).transpose(0, 3, 4, 2, 1)  # (g, kh, kw, Cg, F/g)
            self.ones = np.ones(kh * kw, dtype=dt)
            self.dcols = ShiftedWindowGrads(chunk, g, cg, self.padded_hw, oh, self.kernel, self.dilation, dt)
        else:
            self.wt = self.wb[..., : self.kg].transpose(0, 2, 1)[:, np.newaxis]  # (g, 1, K, F/g)
            self.dcols = np.zeros(k * chunk * per_image, dtype=dt)  # the zero rows are never written
        hp, wp = self.padded_hw
        self.dxp = np.empty((chunk, c, hp * wp + flat_slack(self.kernel, self.dilation)), dtype=dt)
        self.chunks = [self._chunk(start, min(n, start + chunk)) for start in range(0, n, chunk)]
        self._backward_ready = True

    def _make_flipped(self) -> None:
        """The plan of the input gradient as a convolution (stride 1): ``dout (N, F, H', W')`` padded by
        ``r = d*(k-1)`` less this plan's padding per side, so that its output is ``dx (N, C, H, W)`` itself
        (``"zeros"`` mode, padding at most ``r``), else by ``r`` per side, giving the padded gradient
        ``(N, C, Hp, Wp)`` whose border :func:`fold_border` folds back; weights ``(C, F/g, kh, kw)``:
        ``w`` per group with its two channel axes swapped and both kernel axes reversed."""
        n, c = self.x_shape[:2]
        g, fg, _ = self.wb.shape
        reach = [d * (k - 1) for k, d in zip(self.kernel, self.dilation, strict=True)]
        direct = self.mode == "zeros" and all(p <= r for (lo, hi), r in zip(self.pads, reach, strict=True)
                                              for p in (lo, hi))
        if direct:
            pads = tuple((r - lo, r - hi) for (lo, hi), r in zip(self.pads, reach, strict=True))
            out_hw, self.dxp_full = self.x_shape[2:], None
        else:
            pads = tuple((r, r) for r in reach)
            out_hw = self.padded_hw
            self.dxp_full = np.empty((n, c, *self.padded_hw), dtype=self.dtype)
        self.flipped = Im2colPlan((n, g * fg, *self.out_hw), out_hw, self.kernel, (1, 1), pads, self.dilation,
                                  "zeros", g, c, False, self.dtype)
        kh, kw = self.kernel
        source = self.w_fill.reshape(g, fg, c // g, kh, kw, copy=False)
        self.flipped_w_source = source.transpose(0, 2, 1, 3, 4)[..., ::-1, ::-1]  # (g, C/g, F/g, kh, kw)
        self.flipped_w_fill = self.flipped.w_fill.reshape(g, c // g, fg, kh, kw, copy=False)

    def dout_columns(self, d: np.ndarray) -> None:
        """The columns of the input-gradient convolution: every window of ``dout`` (``"flipped"`` only)."""
        self.flipped.fill_columns(d)

    def flipped_input_grad_gemm(self) -> None:
        """The input gradient's GEMM: the flipped forward weights @ the columns of ``dout`` (``"flipped"``)."""
        np.copyto(self.flipped_w_fill, self.flipped_w_source)
        self.flipped.gemm()

    def input_grad_output(self, dx: np.ndarray) -> None:
        """The input-gradient GEMM's result as ``dx (N, C, H, W)`` (``"flipped"``), its border folded back
        first when the convolution gave the padded gradient."""
        if self.dxp_full is None:
            self.flipped.output(dx)
            return
        self.flipped.output(self.dxp_full)
        np.copyto(dx, unpad_spatial(fold_border(self.dxp_full, self.pads, self.mode), self.pads))

    def _chunk(self, start: int, stop: int) -> tuple:
        """Views for images ``[start, stop)``: ``(images, the GEMM's operands (weights, dout, the window gradients
        it writes; :func:`unstacked`), the window gradients as col2im reads them, the padded gradient flat (nb, C,
        Hp*Wp + slack), the same (nb, C, Hp, Wp), its interior (nb, C, H, W))`` (see :meth:`col2im`). Layout
        ``"shifted"`` (:class:`~reference.windows.ShiftedWindowGrads`): ``dout (g, 1, nb, F/g, H'*P)``, written
        ``(g, kh, nb, kw*C/g, H'*P)``, read ``(g, C/g, nb, Hp*Wp, kh*kw)``; otherwise ``dout (g, nb, F/g,
        H'*P)``, written ``(g, nb, K, H'*P)`` (at stride 1 between each image's zero rows), read at stride 1
        ``(C, nb, Hp*Wp, kh, kw)`` (:func:`~reference.windows.shifted_windows`), else ``(nb, C, kh, kw, H',
        P)``."""
        nb, c, g, fg = stop - start, self.x_shape[1], self.groups, self.dpad.shape[1]
        oh, pitch, top = self.out_hw[0], self.pitch, self.dcols_top
        dout = self.dpad.reshape(g, fg, -1, oh * pitch)[:, :, start:stop].transpose(0, 2, 1, 3)
        flat = self.dxp[:nb]
        image = _flat_image(flat, self.padded_hw)
        views = (flat, image, unpad_spatial(image, self.pads))
        if self.col2im_layout == "shifted":
            gemm = unstacked(self.wt, dout[:, np.newaxis], self.dcols.gemm_out(nb))
            return slice(start, stop), gemm, self.dcols.windows(nb), *views
        block = self.dcols[: g * self.kg * nb * self.dcols_rows * pitch]
        written = block.reshape(g, self.kg, nb, -1)[..., top * pitch: (top + oh) * pitch].transpose(0, 2, 1, 3)
        if self.col2im_layout == "plain":
            dwin = shifted_windows(block, nb, self.padded_hw, self.kernel, self.dilation)
        else:
            dwin = block.reshape(c, *self.kernel, nb, oh, -1).transpose(3, 0, 1, 2, 4, 5)
        return slice(start, stop), unstacked(self.wt, dout, written), dwin, *views

    def input_grad(self, dx: np.ndarray | None = None) -> np.ndarray:
        """``dx (N, C, H, W)`` (new, or written into ``dx``) from ``dpad`` (``"col2im"``): ``wm.T @ dout``
        then :meth:`col2im`, a few images at a time so that col2im reads the window gradients while they
        are still in cache."""
        if dx is None:
            dx = np.empty(self.x_shape, dtype=self.dtype)
        for chunk in self.chunks:
            self.input_grad_gemm(chunk)
            self.col2im(chunk, dx)
        return dx

    def input_grad_gemm(self, chunk: tuple) -> None:
        """The window gradients of one chunk of images: ``wm.T @ dout``, one GEMM per group and image (and kernel
        row, in the ``"shifted"`` layout), each written between its image's zero rows at stride 1."""
        wt, dout, written = chunk[1]
        np.matmul(wt, dout, out=written)
        if self.nonfinite:  # dout's zeros past each row's end, times a non-finite weight, would be NaN there
            for unreached in self.unreached(written):
                unreached[...] = 0

    def col2im(self, chunk: tuple, dx: np.ndarray) -> None:
        """Adjoint of the column fill: one chunk's window gradients -> its images of ``dx (N, C, H, W)``.

        Stride 1: one sum over the kernel offsets (straight into ``dx`` when there is no padding): layout
        ``"shifted"``, the product of :meth:`~reference.windows.ShiftedWindowGrads.windows` with ones (BLAS);
        ``"plain"``, numpy's reduction over the two offset axes of :func:`~reference.windows.shifted_windows`.
        Otherwise ``dwin (nb, C, kh, kw, H', P)`` is laid out as the columns and accumulated one offset at a
        time. ``flat`` holds the padded gradient; with a ``mode`` other than zeros its border is folded back
        onto the interior (:func:`fold_border`) before the interior is taken.
        """
        images, dwin, flat, image, interior = chunk[0], *chunk[2:]
        dx = dx[images]
        hp, wp = self.padded_hw
        if self.stride == (1, 1):
            target = (dx if self.no_pad else image).reshape(len(dx), -1, hp * wp, copy=False)  # (nb, C, Hp*Wp)
            if self.col2im_layout == "shifted":  # (g, C/g, nb, Hp*Wp)
                grouped = target.reshape(len(dx), self.groups, -1, hp * wp, copy=False)
                np.matmul(dwin, self.ones, out=grouped.transpose(1, 2, 0, 3))
            else:
                np.add.reduce(dwin, axis=(3, 4), out=target.transpose(1, 0, 2))
            if self.no_pad:
                return
        else:
            flat.fill(0)
            add_flat_windows(flat, dwin, self.padded_hw, self.stride, self.dilation)
        fold_border(image, self.pads, self.mode)  # in place; nothing to fold for zeros
        np.copyto(dx, interior)


def _restore_plan(arguments: tuple, key: tuple | None, cols: np.ndarray, wb: np.ndarray) -> Im2colPlan:
    """An :class:`Im2colPlan` built from ``arguments`` with the columns and weights of the one copied."""
    plan = Im2colPlan(*arguments)
    plan.key = key
    np.copyto(plan.cols, cols)
    np.copyto(plan.wb, wb)
    return plan


def unstacked(*operands: np.ndarray) -> tuple[np.ndarray, ...]:
    """The operands of a stacked ``np.matmul`` without the leading axes of length 1 they all have. numpy's
    ``matmul`` costs 1.2-1.8 us more per call on a stack of one than on 2-D arrays (measured at the tutorial's
    shape, where each GEMM takes 4-8 us), so a plan of one group (and one image) multiplies 2-D views."""
    while all(a.ndim > 2 and a.shape[0] == 1 for a in operands):
        operands = tuple(a[0] for a in operands)
    return operands


def images_per_block(image_bytes: int) -> int | None:
    """Images per block of :class:`ChunkIm2col`, from the bytes of one image's columns: as many as fit in
    :data:`BLOCK_BYTES`, or None (the whole chunk one block, its columns kept from the forward) when one
    image's do not fit. Then a block would not stay in cache anyway, and at the benchmarks' ``large``
    (2.5 MB of columns per image) blocks of one image measured 100-110 ms against 88-98 ms for one block."""
    return BLOCK_BYTES // image_bytes if image_bytes <= BLOCK_BYTES else None


class ChunkIm2col:
    """One thread's images of a batch, ``x_shape (n, C, H, W)``, run through an :class:`Im2colPlan` a block of
    images at a time (:attr:`blocks`, each block's column matrix about :data:`BLOCK_BYTES`), so that the
    GEMMs read columns a copy has just written into the core's cache rather than from memory.

    With several blocks the forward copies its input once into the chunk's own padded buffer (:attr:`xp`),
    every block's columns are copied from there, and the backward copies each block's columns again from
    it instead of keeping every column of the chunk from the forward (the caller's ``x`` may change after
    the forward; the copy keeps the gradients those of the forward's input). At the benchmarks' ``mid``
    (64x16x28x28 -> 32, float32, 2 threads; medians of ten interleaved rounds), measured when the blocks
    were chosen (each block then copied its images into its plan's padded buffer, twice per pass), a forward
    + backward took 25.2 ms in blocks of two images against 31.2 ms as one block; in another run, 27.2 ms
    against 35.6 ms with every block's columns kept in a plan of its own. Copying the input padded once
    per chunk instead took one thread's 32 images from 21.3 to 20.9 ms (medians of 15 interleaved rounds).
    A chunk whose columns fit in one block is one :class:`Im2colPlan` that keeps its columns, with no copy
    of the input.

    Blocks differ in size by at most one image, so there are at most two plans (:attr:`plans`, by block
    size). The other arguments are :class:`Im2colPlan`'s.
    """

    def __init__(self, x_shape, out_hw, kernel, stride, pads, dilation, mode, groups, out_channels, bias, dtype,
                 input_grad: str = "col2im"):
        n, c = x_shape[:2]
        self.x_shape, self.dtype, self.input_grad_method = x_shape, dtype, input_grad
        pitch = row_pitch(out_hw[1], padded_size(x_shape[2:], pads)[1], stride[1])
        image_bytes = (c * kernel[0] * kernel[1] + groups * bias) * out_hw[0] * pitch * dtype.itemsize
        per_block = images_per_block(image_bytes)
        self.blocks = batch_slices(n, 1 if per_block is None else -(-n // per_block))
        sizes = sorted({s.stop - s.start for s in self.blocks}, reverse=True)
        self.plans = {size: Im2colPlan((size, *x_shape[1:]), out_hw, kernel, stride, pads, dilation, mode, groups,
                                       out_channels, bias, dtype, input_grad) for size in sizes}
        self.out_shape = (n, *self.plans[sizes[0]].out_shape[1:])
        plan = self.plans[sizes[0]]
        self.pads, self.mode, self.padded_hw = pads, mode, plan.padded_hw
        self.xp = None  # the forward's input, padded (several blocks only)
        if len(self.blocks) > 1:
            self.xp = np.zeros((n, c, plan.xp.shape[2]), dtype=dtype)  # a zero border stays from call to call
            self._make_views()
        self.phases = plan.phases if self.xp is None else (
            "keep_input", *plan.phases[:3], "refill_columns", *plan.phases[3:])
        """What a forward + backward runs, in order: the plan's :attr:`Im2colPlan.phases`, block by block, and
        with several blocks the padded copy of the input (``keep_input``) and the backward's column fill
        (``refill_columns``, :meth:`Im2colPlan.copy_columns` again)."""

    def _make_views(self) -> None:
        """The views into :attr:`xp`: its images, their interior, and each block's windows."""
        self.image = _flat_image(self.xp, self.padded_hw)
        self.interior = unpad_spatial(self.image, self.pads)
        self.block_windows = [self.plan(block).column_windows(self.xp[block]) for block in self.blocks]

    def __getstate__(self) -> dict:
        """Copies and pickles: the buffers, without the views into :attr:`xp` (a copy's views must see its own
        buffer: :meth:`__setstate__` rebuilds them)."""
        state = self.__dict__.copy()
        for name in ("image", "interior", "block_windows"):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if self.xp is not None:
            self._make_views()

    def plan(self, block: slice) -> Im2colPlan:
        """The plan that runs the images ``block`` (one of :attr:`blocks`)."""
        return self.plans[block.stop - block.start]

    def keep_input(self, x: np.ndarray) -> None:
        """Copy ``x (n, C, H, W)`` into :attr:`xp` and write its border (several blocks only)."""
        np.copyto(self.interior, x)
        fill_border(self.image, self.pads, self.mode)

    def forward(self, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, out: np.ndarray | None = None) -> np.ndarray:
        """``x (n, C, H, W)`` -> ``out (n, F, H', W')`` (new, or written into ``out``), block by block."""
        if self.xp is None:
            return self.plan(self.blocks[0]).forward(x, w, b, out)
        self.keep_input(x)
        if out is None:
            out = np.empty(self.out_shape, dtype=self.dtype)
        for plan in self.plans.values():
            plan.load_weights(w, b)
        for block, windows in zip(self.blocks, self.block_windows, strict=True):
            plan = self.plan(block)
            plan.copy_columns(windows)
            plan.gemm()
            plan.output(out[block])
        return out

    def backward(self, d: np.ndarray, dx: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``dout d (n, F, H', W')`` -> ``(dx (n, C, H, W), dw (g, F/g, K), db (F,) or None)`` of the latest
        :meth:`forward`, block by block (each block's columns copied again from :attr:`xp`), the weight and
        bias gradients summed over the blocks in order; ``dx`` new, or written into ``dx``."""
        if self.xp is None:
            return self.plan(self.blocks[0]).backward(d, dx)
        if dx is None:
            dx = np.empty(self.x_shape, dtype=self.dtype)
        dw = db = None
        for block, windows in zip(self.blocks, self.block_windows, strict=True):
            plan = self.plan(block)
            plan.copy_columns(windows)
            _, dw_block, db_block = plan.backward(d[block], dx[block])
            if dw is None:
                dw, db = dw_block, db_block  # fresh arrays of the block's GEMM: summed into in place
            else:
                dw += dw_block
                if db is not None:
                    db += db_block
        return dx, dw, db


class BatchIm2col:
    """An im2col convolution of a batch split into chunks of images (:func:`~reference.threads.batch_slices`),
    one :class:`ChunkIm2col` per chunk, the chunks run at once (:func:`~reference.threads.run_parallel`: each
    chunk's copies and GEMMs on its own thread, BLAS at one thread each). One chunk runs on the caller's
    thread. Every buffer belongs to the chunks' plans, so a copy or pickle of this object (each plan's
    ``__reduce__``) computes like the original, a backward of a forward run before the copy included.

    ``x_shape (N, C, H, W)``; ``parts``: the chunks wanted (at most ``N``); the other arguments as
    :class:`Im2colPlan`'s, for every chunk.
    """

    def __init__(self, x_shape, parts: int, out_hw, *plan_arguments) -> None:
        self.x_shape, self.dtype = x_shape, plan_arguments[-2]
        self.slices = batch_slices(x_shape[0], parts)
        self.parts = [ChunkIm2col((s.stop - s.start, *x_shape[1:]), out_hw, *plan_arguments) for s in self.slices]
        self.out_shape = (x_shape[0], *self.parts[0].out_shape[1:])
        only = self.parts[0]
        # one chunk of one block (a small batch): its plan, called directly
        self.sole = only.plan(only.blocks[0]) if len(self.parts) == 1 and only.xp is None else None
        self.key: tuple | None = None  # what the layer built this plan for (Conv2d.im2col_plan)

    def forward(self, x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
        """``x (N, C, H, W)`` -> ``out (N, F, H', W')`` (new), each chunk's :meth:`ChunkIm2col.forward`."""
        if self.sole is not None:
            return self.sole.forward(x, w, b)
        if len(self.parts) == 1:
            return self.parts[0].forward(x, w, b)
        out = np.empty(self.out_shape, dtype=self.dtype)
        run_parallel([functools.partial(plan.forward, x[s], w, b, out[s]) for plan, s in zip(self.parts, self.slices,
                                                                                                strict=True)])
        return out

    def backward(self, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``dout d (N, F, H', W')`` -> ``(dx (N, C, H, W), dw (g, F/g, K), db (F,) or None)``: each chunk's
        :meth:`ChunkIm2col.backward`, the weight and bias gradients summed over the chunks in order."""
        if self.sole is not None:
            return self.sole.backward(d)
        if len(self.parts) == 1:
            return self.parts[0].backward(d)
        dx = np.empty(self.x_shape, dtype=self.dtype)
        found = run_parallel([functools.partial(plan.backward, d[s], dx[s]) for plan, s in zip(self.parts, self.slices,
                                                                                                  strict=True)])
        dw, db = found[0][1], found[0][2]
        for _, dw_part, db_part in found[1:]:
            dw = dw + dw_part
            db = None if db is None else db + db_part
        return dx, dw, db


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
        self._im2col_plan: BatchIm2col | None = None
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
        self.use_bias = check_bool(bias, where, "bias")
        shape = self.weight_shape
        check_allocation([shape, (self.out_channels,)], self.dtype, where, "its weight (F, C/groups, kh, kw) and bias")
        gen = default_rng(rng)
        fan_in = self.in_channels // self.groups * self.kernel_size[0] * self.kernel_size[1]
        bound = 1.0 / np.sqrt(fan_in)
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

    def _output_size(self, x_shape) -> tuple[int, int]:
        """``(H', W')`` for an input ``(N, C, H, W)``; raises ValueError when the kernel does not fit or
        the padding is too large for the padding mode."""
        out_hw = output_size(x_shape[2:], self.kernel_size, self.stride, self.pads, self.dilation, "Conv2d.forward")
        check_pad_mode(x_shape[2:], self.pads, self.padding_mode, "Conv2d.forward")
        return out_hw

    def im2col_plan(self, x_shape) -> BatchIm2col:
        """The :class:`BatchIm2col` for an input ``(N, C, H, W)``: the latest one while the input shape, the
        layer's settings and the thread count (:func:`~reference.threads.get_num_threads`) stay the same, else
        a new one (after :meth:`_output_size`'s checks)."""
        parts = min(x_shape[0], get_num_threads())
        key = (x_shape, parts, self.dtype, self.kernel_size, self.stride, self.pads, self.dilation,
               self.padding_mode, self.groups, self.out_channels, self.use_bias)
        plan = self._im2col_plan
        if plan is None or plan.key != key:
            plan = self._im2col_plan = BatchIm2col(x_shape, parts, self._output_size(x_shape), self.kernel_size,
                                                   self.stride, self.pads, self.dilation, self.padding_mode,
                                                   self.groups, self.out_channels, self.use_bias, self.dtype,
                                                   input_grad_method(self.stride, self.in_channels, self.out_channels))
            plan.key = key
        return plan

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
        if self.impl == "loop":
            out_hw = self._output_size(x.shape)
            xp = fill_border(pad_spatial(x, self.pads), self.pads, self.padding_mode)
            out = np.empty((x.shape[0], self.out_channels, *out_hw), dtype=x.dtype)
            for cs, fs in self._group_slices():
                out[:, fs] = conv2d_loop_forward(xp[:, cs], w[fs], None if b is None else b[fs], self.stride,
                                                 self.dilation, out_hw)
            self._cache = (xp, w.copy(), single)  # the weights as they are now (layer.py: parameters at forward)
        else:
            plan = self.im2col_plan(x.shape)
            out = plan.forward(x, w, b)
            self._cache = (plan, single)
        return self._finish_forward(out, single)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dout`` shaped like the output -> ``dx`` shaped like the input; fills ``grads``."""
        dout = self._upstream(dout, self.dtype)
        single = self._cache[-1]
        d = dout[np.newaxis] if single else dout
        if self.impl == "loop":
            xp, w, _ = self._cache
            dxp, dw = np.empty_like(xp), np.empty_like(w)
            for cs, fs in self._group_slices():
                dxp[:, cs], dw[fs] = conv2d_loop_backward(xp[:, cs], w[fs], d[:, fs], self.stride, self.dilation)
            dx = unpad_spatial(fold_border(dxp, self.pads, self.padding_mode), self.pads)
        else:
            dx, dw, db = self._cache[0].backward(d)
            self.grads["weight"] = np.ascontiguousarray(dw.reshape(self.weight_shape))
            if self.use_bias:
                self.grads["bias"] = np.ascontiguousarray(db)
            return dx[0] if single else dx
        self.grads["weight"] = np.ascontiguousarray(dw)
        if self.use_bias:
            self.grads["bias"] = d.sum(axis=(0, 2, 3))
        return dx[0] if single else dx
