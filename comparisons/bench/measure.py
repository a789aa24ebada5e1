"""Forward + backward steps for every (layer, shape, implementation, dtype), and their timing.

A *step* is a zero-argument callable running one forward and one backward pass on fixed
data; building it is not timed. Implementations:

- ``loop``, ``im2col``: the reference layers (``Linear`` has one numpy implementation, a
  GEMM, listed as ``im2col``; it has no loop version);
- every registered framework (``torch``, ``keras``, ...): its ``bench_step`` (the framework's own layer, as its
  users write it, float32, ``threads`` threads), in its subpackage of :mod:`comparisons.frameworks`. A framework
  that runs in another process (``keras-jax``, ``keras-torch``: a worker per Keras backend) returns a
  :class:`TimedElsewhere` step: it is built, warmed up and timed in that process by the same
  :func:`time_steps`, and only the samples cross (a pipe round trip per call would be timed with the layer).

Implementations are timed one after the other with a pause in between (see
:func:`time_steps`): on a 2-core machine the worker threads one library leaves spinning
would otherwise slow the next one down by up to 2x.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from comparisons import frameworks, kinds

from .shapes import Shape

IMPLS = ("loop", "im2col", *frameworks.NAMES)
REFERENCE_IMPLS = ("loop", "im2col")
Step = Callable[[], object]
LOOP_ROUNDS = 3  # samples of a loop cell at most: each takes seconds
SETTLE_S = 0.15  # idle time before each implementation's samples (OpenBLAS spins ~0.1 s)
# the benchmark's thread count, in the environment of the processes a framework's steps are timed in (set by
# ``cnnref bench`` before any framework starts; ``benchmarks/conftest.py`` reads the same variable)
THREADS_VAR = "CNNREF_BENCH_THREADS"


class Unavailable(Exception):
    """This implementation cannot be timed here; the message says why."""


@dataclass
class Timing:
    """One measured (or skipped) cell of the report; times are per forward + backward, seconds."""

    layer: str
    shape: str
    dtype: str
    impl: str
    flops: float
    median_s: float | None = None
    min_s: float | None = None
    samples: int = 0
    calls_per_sample: int = 0
    skipped: str | None = None
    times: list[float] = field(default_factory=list)  # every sample: seconds per call (bench --compare reads them)

    @property
    def gflops(self) -> float | None:
        return None if self.median_s is None else self.flops / self.median_s / 1e9

    def as_dict(self) -> dict:
        return {**asdict(self), "gflops": self.gflops}


def input_data(shape: Shape, dtype: str, seed: int) -> np.ndarray:
    """The benchmark input for ``shape``: standard normal, ``(N, C, H, W)`` in ``dtype``."""
    return np.random.default_rng(seed).standard_normal(shape.input_shape).astype(dtype)


# -- reference --------------------------------------------------------------------
def reference_layer(layer: str, shape: Shape, impl: str, dtype: str, seed: int = 0):
    """The reference layer benchmarked for ``layer`` on ``shape`` (:meth:`Shape.spec`, built by its kind)."""
    if layer == "linear" and impl != "im2col":
        raise Unavailable("Linear has one numpy implementation (a GEMM), listed as im2col")
    s = shape.spec(layer)
    return kinds.kind(s.kind).build(s.kwargs, impl, np.dtype(dtype), np.random.default_rng(seed))


def reference_step(layer: str, shape: Shape, impl: str, dtype: str, seed: int = 0) -> Step:
    """forward + backward of the reference ``layer`` (``impl`` loop or im2col) on fixed data."""
    model = reference_layer(layer, shape, impl, dtype, seed)
    if impl == "loop" and not shape.loop_feasible(layer):
        raise Unavailable("loop not timed here: it would take more than a few seconds")
    x = input_data(shape, dtype, seed)
    if layer == "linear":
        x = x.reshape(shape.n, -1)
    dout = np.random.default_rng(seed + 1).standard_normal(model.forward(x).shape).astype(dtype)

    def step():
        model.forward(x)
        return model.backward(dout)

    return step


def make_step(layer: str, shape: Shape, impl: str, dtype: str, threads: int, seed: int = 0) -> Step:
    """The step for one cell; raises :class:`Unavailable` with the reason when it cannot run."""
    if impl in REFERENCE_IMPLS:
        return reference_step(layer, shape, impl, dtype, seed)
    if impl not in frameworks.NAMES:
        raise ValueError(f"make_step: impl must be one of {IMPLS}, got {impl!r}")
    try:
        framework = frameworks.load(impl)
    except frameworks.FrameworkUnavailable as exc:
        raise Unavailable(str(exc)) from exc
    return framework.bench_step(layer, shape, dtype, threads, seed)


# -- timing -----------------------------------------------------------------------
class Samples(list):
    """Per-call times (s) of one step's samples; ``calls``: how many back-to-back calls each sample timed;
    ``skipped``: why there are none (a step timed in another process that failed there), else None."""

    calls: int = 0
    skipped: str | None = None


class TimedElsewhere:
    """A step built in another process and timed there: :meth:`measure` returns its :class:`Samples`, taken by
    :func:`time_steps` in that process, or raises :class:`Unavailable` with the reason it failed there (a crash
    included). Calling it runs the step once there and returns its result as numpy arrays: a check of what it
    computes, never a timing (the call's time includes the round trip between the processes)."""

    def measure(self, rounds: int, min_sample_s: float, settle_s: float) -> Samples:
        raise NotImplementedError

    def __call__(self):
        raise NotImplementedError


def time_steps(steps: dict[str, Step], rounds: int, min_sample_s: float,
               max_rounds: dict[str, int] | None = None, settle_s: float = SETTLE_S) -> dict[str, Samples]:
    """Per-call times (s) of each step: ``rounds`` samples, one implementation after the other.

    Before each implementation's samples the machine is left idle for ``settle_s`` and
    the step runs twice untimed (warm-up, and to size the samples): numpy's OpenBLAS and
    PyTorch's OpenMP worker threads keep spinning for a while after their last call and
    would otherwise take a core from the next implementation (measured: PyTorch's conv
    at ``mid`` takes 18 ms right after an im2col call, 9 ms after a pause). Each sample
    times enough back-to-back calls to last ``min_sample_s``; ``max_rounds`` caps the
    rounds of slow steps (the loop kernels). A :class:`TimedElsewhere` step is timed the same way in its own
    process; when that fails, its samples are empty with the reason in ``skipped``.
    """
    caps = max_rounds or {}
    samples: dict[str, Samples] = {}
    for key, step in steps.items():
        if isinstance(step, TimedElsewhere):
            try:
                samples[key] = step.measure(caps.get(key, rounds), min_sample_s, settle_s)
            except Unavailable as exc:
                samples[key] = Samples()
                samples[key].skipped = str(exc)
            continue
        time.sleep(settle_s)
        step()  # warm-up: first-call costs (workspaces, tracing, lazy imports)
        start = time.perf_counter()
        step()
        calls = max(1, math.ceil(min_sample_s / max(time.perf_counter() - start, 1e-7)))
        samples[key] = Samples()
        samples[key].calls = calls
        for _ in range(caps.get(key, rounds)):
            start = time.perf_counter()
            for _ in range(calls):
                step()
            samples[key].append((time.perf_counter() - start) / calls)
    return samples


def matmul_rate(size: int = 2048, rounds: int = 5) -> float:
    """The machine's numpy float32 matrix-product rate, GFLOP/s (median of ``rounds``)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty((size, size), dtype=np.float32)
    samples = time_steps({"matmul": lambda: np.matmul(a, b, out=out)}, rounds, 0.0)["matmul"]
    return 2.0 * size**3 / float(np.median(samples)) / 1e9
