"""2-D transposed convolution (``torch.nn.ConvTranspose2d``), as the adjoint of :class:`~reference.conv.Conv2d`.

Shapes: ``x (N, C, H, W)`` (or one ``(C, H, W)`` image), ``weight (C, F/groups, kh, kw)`` (PyTorch's layout),
``bias (F,)``, ``out (N, F, H_out, W_out)`` with, per axis,

    H_out = (H - 1) * stride - 2 * padding + dilation * (kh - 1) + output_padding + 1.

A transposed convolution is the input gradient of the convolution with the same weight, stride, padding,
dilation and groups that maps ``(N, F, H_out, W_out)`` to ``(N, C, H', W')``: its forward *is* that
convolution's backward-to-input, and its backward is that convolution's forward (input gradient) and weight
gradient (with the roles of input and ``dout`` swapped). Both implementations run the convolution's own
kernels: ``loop`` :func:`~reference.conv.conv2d_loop_input_grad`, :func:`~reference.conv.conv2d_loop_forward`
and :func:`~reference.conv.conv2d_loop_weight_grad`; ``im2col`` the phases of an
:class:`~reference.conv.Im2colPlan` built for that convolution. ``H' = H + output_padding // stride``: when
``output_padding >= stride`` (allowed with a dilation larger than it) the convolution has rows the transposed
input does not reach: im2col's ``dout`` has zeros there (forward) and drops them (backward), and keeps an infinity
or a NaN from meeting those zeros (:meth:`~reference.conv.Im2colPlan.unreached`); the loop visits the input's own
positions only.
"""

from __future__ import annotations

import numpy as np

from .conv import (
    IMPLS,
    Im2colPlan,
    conv2d_loop_forward,
    conv2d_loop_input_grad,
    conv2d_loop_weight_grad,
    default_rng,
)
from .layer import SpatialLayer
from .validation import all_finite, as_float_dtype, as_pair, check_allocation, check_bool, check_choice, check_int
from .windows import output_size, pad_spatial, unpad_spatial


def transposed_output_size(size, kernel, stride, padding, output_padding, dilation) -> tuple[int, int]:
    """``(H_out, W_out)`` of a transposed convolution of an input ``(H, W)`` (see the module docstring)."""
    h, w = ((n - 1) * s - 2 * p + d * (k - 1) + op + 1
            for n, k, s, p, op, d in zip(size, kernel, stride, padding, output_padding, dilation, strict=True))
    return (h, w)


class ConvTranspose2d(SpatialLayer):
    """``ConvTranspose2d(in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
    bias=True, dilation=1, impl="im2col", dtype=np.float64, rng=None)``, as ``torch.nn.ConvTranspose2d``.

    ``params["weight"]``: ``(C, F/groups, kh, kw)``; ``params["bias"]``: ``(F,)``; both drawn as PyTorch draws
    them, ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` with ``fan_in = F/groups*kh*kw``, from ``rng`` (a Generator or
    a seed). ``output_padding`` (added at the bottom/right of the output) must be smaller than the stride or
    the dilation of its axis (PyTorch's rule); ``groups`` must divide both channel counts. Padding is zeros.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, impl: str = "im2col", dtype=np.float64,
                 rng=None) -> None:
        super().__init__()
        where = "ConvTranspose2d"
        self.in_channels = check_int(in_channels, where, "in_channels", 1)
        self.out_channels = check_int(out_channels, where, "out_channels", 1)
        self.kernel_size = as_pair(kernel_size, where, "kernel_size", 1)
        self.stride = as_pair(stride, where, "stride", 1)
        self.padding = as_pair(padding, where, "padding", 0)
        self.output_padding = as_pair(output_padding, where, "output_padding", 0)
        self.dilation = as_pair(dilation, where, "dilation", 1)
        for op, s, d in zip(self.output_padding, self.stride, self.dilation, strict=True):
            if op >= max(s, d):
                raise ValueError(f"{where}: output_padding must be smaller than either stride or dilation, got "
                                 f"output_padding={self.output_padding}, stride={self.stride}, "
                                 f"dilation={self.dilation}")
        self.groups = check_int(groups, where, "groups", 1)
        for name, value in (("in_channels", self.in_channels), ("out_channels", self.out_channels)):
            if value % self.groups:
                raise ValueError(f"{where}: {name} must be divisible by groups={self.groups}, got {name}={value}")
        self.use_bias = check_bool(bias, where, "bias")
        self.impl = check_choice(impl, IMPLS, where, "impl")
        self.dtype = as_float_dtype(dtype, where)
        check_allocation([self.weight_shape, (self.out_channels,)], self.dtype, where,
                         "its weight (C, F/groups, kh, kw) and bias")
        gen = default_rng(rng)
        bound = 1.0 / np.sqrt(self.out_channels // self.groups * self.kernel_size[0] * self.kernel_size[1])
        self.params["weight"] = gen.uniform(-bound, bound, self.weight_shape).astype(self.dtype)
        if self.use_bias:
            self.params["bias"] = gen.uniform(-bound, bound, self.out_channels).astype(self.dtype)
        self._plan: Im2colPlan | None = None

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        """``(C, F/groups, kh, kw)``."""
        return (self.in_channels, self.out_channels // self.groups, *self.kernel_size)

    def __repr__(self) -> str:
        return (f"ConvTranspose2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, output_padding={self.output_padding}, "
                f"groups={self.groups}, bias={self.use_bias}, dilation={self.dilation}, impl={self.impl!r}, "
                f"dtype={self.dtype.name})")

    def _geometry(self, x_shape) -> tuple[tuple[int, int], tuple[int, int]]:
        """``((H_out, W_out), (H', W'))``: the output size, and the size of the adjoint convolution's output
        (``H' >= H``); ValueError when the padding leaves no output."""
        out_hw = transposed_output_size(x_shape[2:], self.kernel_size, self.stride, self.padding,
                                        self.output_padding, self.dilation)
        if min(out_hw) < 1:
            raise ValueError(f"ConvTranspose2d.forward: padding={self.padding} leaves no output for an input "
                             f"{x_shape[2:]} (output size {out_hw}, kernel {self.kernel_size}, stride {self.stride}, "
                             f"dilation {self.dilation}, output_padding {self.output_padding})")
        conv_hw = output_size(out_hw, self.kernel_size, self.stride, self.padding, self.dilation,
                              "ConvTranspose2d.forward")
        return out_hw, conv_hw

    def _conv_plan(self, out_shape, conv_hw, reached) -> Im2colPlan:
        """The adjoint convolution's :class:`Im2colPlan` (input ``out_shape``, output ``conv_hw``), kept per shape,
        with the input's ``(H, W)`` as the positions its ``dout`` reaches (:meth:`Im2colPlan.unreached`)."""
        key = (out_shape, conv_hw, self.dtype, self.kernel_size, self.stride, self.padding, self.dilation,
               self.groups, self.in_channels)
        if self._plan is None or self._plan.key != key:
            pads = tuple((p, p) for p in self.padding)
            self._plan = Im2colPlan(out_shape, conv_hw, self.kernel_size, self.stride, pads, self.dilation, "zeros",
                                    self.groups, self.in_channels, False, self.dtype)
            self._plan.key = key
        self._plan.reached = tuple(reached)
        return self._plan

    def _group_slices(self) -> list[tuple[slice, slice]]:
        """``(input channels C, output channels F)`` of each group."""
        cg, fg = self.in_channels // self.groups, self.out_channels // self.groups
        return [(slice(k * cg, (k + 1) * cg), slice(k * fg, (k + 1) * fg)) for k in range(self.groups)]

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x (C, H, W)`` or ``(N, C, H, W)`` -> ``(F, H_out, W_out)`` or ``(N, F, H_out, W_out)``."""
        x, single = self._batch(self._input(x, self.dtype))
        if x.shape[1] != self.in_channels:
            raise ValueError(f"ConvTranspose2d.forward: x has {x.shape[1]} channels, expected in_channels="
                             f"{self.in_channels} (x shape {x.shape[1:] if single else x.shape})")
        w = self._param("weight", self.weight_shape, self.dtype)
        b = self._param("bias", (self.out_channels,), self.dtype) if self.use_bias else None
        out_hw, conv_hw = self._geometry(x.shape)
        n = x.shape[0]
        out_shape = (n, self.out_channels, *out_hw)
        if self.impl == "loop":
            # the loop visits the input's own positions only: the padded output's rows the input does not reach
            # stay zero
            padded = (n, self.out_channels, out_hw[0] + 2 * self.padding[0], out_hw[1] + 2 * self.padding[1])
            outp = np.empty(padded, dtype=self.dtype)
            for cs, fs in self._group_slices():
                outp[:, fs] = conv2d_loop_input_grad(w[cs], x[:, cs], self.stride, self.dilation,
                                                     (n, fs.stop - fs.start, *padded[2:]))
            out = np.ascontiguousarray(unpad_spatial(outp, self.padding))
            xe = x
        else:
            # the input as the adjoint convolution's dout: zero rows/columns where that output is larger
            xe = pad_spatial(x, ((0, conv_hw[0] - x.shape[2]), (0, conv_hw[1] - x.shape[3])))
            plan = self._conv_plan(out_shape, conv_hw, x.shape[2:])
            np.copyto(plan.w_fill, w.reshape(plan.w_fill.shape))
            plan.load_dout(xe)
            # a non-finite weight must not meet the zeros past each row's end or those of xe's extension
            # (Im2colPlan.unreached)
            plan.nonfinite = not all_finite(w)
            out = plan.input_grad()
        if b is not None:
            out += b[:, None, None]
        self._cache = (xe, w.copy(), x.shape, out_shape, conv_hw, single)  # the weight as it is now (layer.py)
        return self._finish_forward(out, single)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dout`` shaped like the output -> ``dx`` shaped like the input; fills ``grads``."""
        dout = self._upstream(dout, self.dtype)
        xe, w, x_shape, out_shape, conv_hw, single = self._cache
        d = dout[np.newaxis] if single else dout
        h, wd = x_shape[2:]
        if self.impl == "loop":  # xe is the input itself: the windows of its positions only
            dp = pad_spatial(d, self.padding)
            dxe = np.empty(xe.shape, dtype=self.dtype)
            dw = np.empty_like(w)
            for cs, fs in self._group_slices():
                dxe[:, cs] = conv2d_loop_forward(dp[:, fs], w[cs], None, self.stride, self.dilation, (h, wd))
                dw[cs] = conv2d_loop_weight_grad(dp[:, fs], xe[:, cs], self.stride, self.dilation, w[cs].shape)
        else:
            plan = self._conv_plan(out_shape, conv_hw, (h, wd))
            plan.load_dout(xe)  # the forward's input, as the convolution's dout (a copied plan holds no dout)
            plan.fill_columns(d)
            plan.forward_gemm(w, None)
            dxe = plan.output()
            dw, _ = plan.weight_grad_gemm()
        self.grads["weight"] = np.ascontiguousarray(dw.reshape(self.weight_shape))
        if self.use_bias:
            self.grads["bias"] = d.sum(axis=(0, 2, 3))
        dx = np.ascontiguousarray(dxe[:, :, :h, :wd])
        return dx[0] if single else dx
