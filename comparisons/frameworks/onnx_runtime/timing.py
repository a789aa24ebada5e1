"""What a forward-only runtime cannot do: train (no backward pass, no optimizer) or take the benchmark, which
times forward + backward."""

from __future__ import annotations

from comparisons.bench.measure import Step, Unavailable
from comparisons.bench.shapes import Shape


def trainer(name: str, *args, **kwargs):
    """``Framework.trainer`` of an ONNX Runtime entry: always raises NotImplementedError."""
    raise NotImplementedError(f"{name}: a forward-only runtime cannot train (an inference session computes no "
                              "gradients and updates no parameters)")


def bench_step(layer: str, shape: Shape, dtype: str, threads: int, seed: int = 0) -> Step:
    """Always raises :class:`Unavailable`: the benchmark times forward + backward of a layer."""
    raise Unavailable("forward-only runtime: ONNX Runtime's inference session has no backward pass, and the "
                      "benchmark times forward + backward")
