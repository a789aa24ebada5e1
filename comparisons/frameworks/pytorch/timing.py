"""The benchmarked layers in PyTorch: ``torch.nn`` on the CPU, NCHW (see :mod:`comparisons.bench.measure`)."""

from __future__ import annotations

import numpy as np
import torch

from comparisons.bench.measure import Step, Unavailable, input_data
from comparisons.bench.shapes import Shape

from .model import layer_module


def bench_step(layer: str, shape: Shape, dtype: str, threads: int, seed: int = 0) -> Step:
    """forward + backward of ``layer`` built by :data:`.model.BUILDERS` (``torch.nn``) on the CPU, ``threads``
    threads."""
    if dtype != "float32":
        raise Unavailable("frameworks are timed in float32 only")
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    module = layer_module(shape.spec(layer), torch.float32)
    x = torch.from_numpy(input_data(shape, dtype, seed)).reshape(shape.n, *shape.sample_shape(layer))
    x.requires_grad_(True)
    dout = torch.from_numpy(np.random.default_rng(seed + 1).standard_normal(module(x).shape).astype(dtype))
    params = list(module.parameters())

    def step():
        x.grad = None
        for p in params:
            p.grad = None
        module(x).backward(dout)
        return x.grad

    return step
