"""Where an im2col convolution spends its time: each phase of the reference's kernels timed alone.

The phases are the methods of :class:`reference.conv.Im2colPlan` in
:attr:`~reference.conv.Im2colPlan.PHASES` order, called one at a time on the plan of a
layer that has already run one forward + backward (so every buffer exists and is warm).
Timed alone, a phase misses the cache sharing of the real pass (the input-gradient GEMM
and col2im alternate chunk by chunk), so the phases' sum differs a little from the whole.
The three GEMM phases are the floor of any im2col formulation on numpy's BLAS: their sum
compared with PyTorch's whole forward + backward says how close im2col can come.
"""

from __future__ import annotations

import numpy as np

from reference.conv import Im2colPlan

from .measure import input_data, reference_layer, time_steps
from .shapes import Shape

WHOLE = "whole forward + backward"
PROFILE_SHAPES = ("mid", "large")  # the shapes of the im2col-vs-PyTorch targets
PHASE_NOTES = {
    "fill_columns": "input -> padded buffer -> column matrix (copies)",
    "forward_gemm": "GEMM: weights @ columns",
    "output": "GEMM result -> (N, F, H', W') (copy)",
    "load_dout": "dout -> the columns' layout (copy)",
    "weight_grad_gemm": "GEMM: columns @ dout.T (weight and bias gradients)",
    "input_grad_gemm": "GEMM: weights.T @ dout (window gradients)",
    "col2im": "window gradients summed back into dx",
}


def conv_phases(shape: Shape, dtype: str = "float32", rounds: int = 5, min_sample_s: float = 0.03) -> dict[str, float]:
    """Median seconds of each im2col phase of the ``conv`` layer on ``shape``, and of the whole pass
    (key :data:`WHOLE`)."""
    layer = reference_layer("conv", shape, "im2col", dtype)
    x = input_data(shape, dtype, 0)
    out = layer.forward(x)
    dout = np.random.default_rng(1).standard_normal(out.shape).astype(dtype)
    layer.backward(dout)
    plan = layer.im2col_plan(x.shape)
    w, b = layer.params["weight"], layer.params.get("bias")
    dx = np.empty(x.shape, dtype=dtype)

    def whole():
        layer.forward(x)
        layer.backward(dout)

    steps = {
        "fill_columns": lambda: plan.fill_columns(x),
        "forward_gemm": lambda: plan.forward_gemm(w, b),
        "output": plan.output,
        "load_dout": lambda: plan.load_dout(dout),
        "weight_grad_gemm": plan.weight_grad_gemm,
        "input_grad_gemm": lambda: [plan.input_grad_gemm(chunk) for chunk in plan.chunks],
        "col2im": lambda: [plan.col2im(chunk, dx) for chunk in plan.chunks],
        WHOLE: whole,
    }
    if tuple(steps)[:-1] != Im2colPlan.PHASES:
        raise RuntimeError(f"conv_phases times {tuple(steps)[:-1]}, Im2colPlan runs {Im2colPlan.PHASES}")
    samples = time_steps(steps, rounds, min_sample_s)
    return {name: float(np.median(times)) for name, times in samples.items()}


def summary(phases: dict[str, float], torch_s: float | None) -> dict[str, float | None]:
    """Totals of a :func:`conv_phases` result: the phases' sum, the GEMMs' sum, and the GEMMs'
    sum as a multiple of PyTorch's whole pass ``torch_s`` (None when PyTorch was not timed)."""
    gemms = sum(t for name, t in phases.items() if name.endswith("gemm"))
    return {
        "sum_s": sum(t for name, t in phases.items() if name != WHOLE),
        "gemms_s": gemms,
        "torch_s": torch_s,
        "gemms_over_torch": gemms / torch_s if torch_s else None,
    }
