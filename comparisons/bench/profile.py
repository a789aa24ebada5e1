"""What the speed targets read beyond the timing table: where an im2col convolution spends its time, and a
batch-1 training step.

:func:`conv_phases`: the phases are those :attr:`reference.conv.ChunkIm2col.phases` lists, in its order (the
methods of :class:`reference.conv.Im2colPlan`, and with several blocks :meth:`~reference.conv.ChunkIm2col.keep_input`
and the block's column copy from it, :meth:`~reference.conv.Im2colPlan.copy_columns`), each run on every chunk of
the layer's batch at once
(:class:`reference.conv.BatchIm2col`: one chunk per thread, as a real pass runs them) and within a chunk on
each of its blocks in turn, on the plan of a layer that has already run one forward + backward (so every
buffer exists and is warm). Timed alone, a phase
misses the overlap of the real pass (one thread's copy runs while the other's GEMM does), so the phases'
sum differs a little from the whole. The three GEMM phases are the floor of any im2col formulation on
numpy's BLAS: the whole pass over their sum says how much the copies around them add.

:func:`training_steps`: one Adam step of the tutorial's CNN on one image (forward, loss, backward, update),
the reference (im2col) and PyTorch, float32.
"""

from __future__ import annotations

import functools

import numpy as np

from comparisons import frameworks
from reference.threads import run_parallel

from .measure import input_data, reference_layer, time_steps
from .shapes import Shape

WHOLE = "whole forward + backward"
PROFILE_SHAPES = ("mid", "large")  # the shapes of the im2col-vs-PyTorch targets
PHASE_NOTES = {
    "keep_input": "input -> the chunk's padded copy, for every block's column fill (copy)",
    "fill_columns": "input -> padded buffer -> column matrix (copies; from the padded copy with blocks)",
    "forward_gemm": "GEMM: weights @ columns",
    "output": "GEMM result -> (N, F, H', W') (copy)",
    "refill_columns": "the forward's padded input -> column matrix again, block by block (copies)",
    "load_dout": "dout -> the columns' layout, and the weights in the input-gradient GEMM's order (copies)",
    "weight_grad_gemm": "GEMM: columns @ dout.T (weight and bias gradients)",
    "dout_columns": "dout -> padded buffer -> columns of the flipped-kernel convolution (copies)",
    "flipped_input_grad_gemm": "GEMM: flipped weights @ dout's columns (input gradient)",
    "input_grad_output": "GEMM result -> dx (copy)",
    "input_grad_gemm": "GEMM: weights.T @ dout (window gradients)",
    "col2im": "window gradients summed back into dx (at stride 1 a product with ones)",
}
TRAINING_IMPLS = ("im2col", "torch")  # the batch-1 training step: the reference's im2col model against PyTorch


def _phase_call(plan, images: slice, phase: str, x, w, b, out, dout, dx):
    """One block's call of ``phase`` (an :class:`~reference.conv.Im2colPlan` method) on its images."""
    if phase == "input_grad_gemm":
        return lambda: [plan.input_grad_gemm(chunk) for chunk in plan.chunks]
    if phase == "col2im":
        return lambda: [plan.col2im(chunk, dx[images]) for chunk in plan.chunks]
    if phase == "refill_columns":
        phase = "fill_columns"
    arguments = {"fill_columns": (x[images],), "forward_gemm": (w, b), "output": (out[images],),
                 "load_dout": (dout[images],), "weight_grad_gemm": (), "dout_columns": (dout[images],),
                 "flipped_input_grad_gemm": (), "input_grad_output": (dx[images],)}
    return functools.partial(getattr(plan, phase), *arguments[phase])


def _chunk_call(chunk, images: slice, phase: str, *arrays):
    """One chunk's call of ``phase`` (see :attr:`reference.conv.ChunkIm2col.phases`) on its images: the copy
    of its input, or the plan's phase on each block in turn; nothing for a phase the chunk does not run (a
    chunk of one block keeps no copy of its input and fills its columns once)."""
    if phase not in chunk.phases:
        return lambda: None
    if phase == "keep_input":
        return functools.partial(chunk.keep_input, arrays[0][images])
    if chunk.xp is not None and phase in ("fill_columns", "refill_columns"):  # from the chunk's padded input
        calls = [functools.partial(chunk.plan(block).copy_columns, windows)
                 for block, windows in zip(chunk.blocks, chunk.block_windows, strict=True)]
    else:
        calls = [_phase_call(chunk.plan(block), slice(images.start + block.start, images.start + block.stop),
                             phase, *arrays) for block in chunk.blocks]
    return lambda: [call() for call in calls]


def conv_phases(shape: Shape, dtype: str = "float32", rounds: int = 5, min_sample_s: float = 0.03) -> dict[str, float]:
    """Median seconds of each im2col phase of the ``conv`` layer on ``shape`` (every chunk at once), and of
    the whole pass (key :data:`WHOLE`)."""
    layer = reference_layer("conv", shape, "im2col", dtype)
    x = input_data(shape, dtype, 0)
    out = layer.forward(x)
    dout = np.random.default_rng(1).standard_normal(out.shape).astype(dtype)
    layer.backward(dout)
    batch = layer.im2col_plan(x.shape)
    w, b = layer.params["weight"], layer.params.get("bias")
    dx = np.empty(x.shape, dtype=dtype)

    def whole():
        layer.forward(x)
        layer.backward(dout)

    steps = {}
    # the chunks are larger first, but with BLOCK_BYTES a smaller one can be one block where a larger is several:
    # the phases of the chunk that runs the most
    for phase in max((chunk.phases for chunk in batch.parts), key=len):
        calls = [_chunk_call(chunk, images, phase, x, w, b, out, dout, dx)
                 for chunk, images in zip(batch.parts, batch.slices, strict=True)]
        steps[phase] = functools.partial(run_parallel, calls)
    steps[WHOLE] = whole
    samples = time_steps(steps, rounds, min_sample_s)
    return {name: float(np.median(times)) for name, times in samples.items()}


def summary(phases: dict[str, float], torch_s: float | None) -> dict[str, float | None]:
    """Totals of a :func:`conv_phases` result: the phases' sum, the GEMMs' sum, the whole pass over the
    GEMMs' sum, and the GEMMs' sum as a multiple of PyTorch's whole pass ``torch_s`` (None when PyTorch
    was not timed)."""
    gemms = sum(t for name, t in phases.items() if name.endswith("gemm"))
    return {
        "sum_s": sum(t for name, t in phases.items() if name != WHOLE),
        "gemms_s": gemms,
        "whole_over_gemms": phases[WHOLE] / gemms if WHOLE in phases and gemms else None,
        "torch_s": torch_s,
        "gemms_over_torch": gemms / torch_s if torch_s else None,
    }


def training_steps(threads: int, rounds: int = 5, min_sample_s: float = 0.03, seed: int = 0) -> dict[str, float]:
    """Median seconds of one Adam step of the tutorial's CNN on one ``(1, 1, 28, 28)`` image, float32, for
    each of :data:`TRAINING_IMPLS` that can run here (PyTorch at ``threads`` threads; a missing framework is
    left out)."""
    from comparisons.trainers import make_trainer
    from comparisons.training import initial_params, tutorial_case

    case = tutorial_case(seed)
    params = initial_params(case, "float32")
    rng = np.random.default_rng(seed)
    x = rng.random((1, 1, 28, 28), dtype=np.float32)
    y = np.array([int(rng.integers(10))])
    steps = {}
    for impl in TRAINING_IMPLS:
        if impl == "im2col":
            trainer = make_trainer("reference", case, params, "float32", "adam", 1e-3, impl="im2col")
        else:
            try:
                framework = frameworks.load(impl)
            except frameworks.FrameworkUnavailable:
                continue
            framework.set_threads(threads)
            trainer = framework.trainer(case, params, "float32", "adam", 1e-3)
        steps[impl] = functools.partial(trainer.step, x, y)
    samples = time_steps(steps, rounds, min_sample_s)
    return {name: float(np.median(times)) for name, times in samples.items()}
