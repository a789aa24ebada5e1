"""The benchmarked layers in PyTorch: ``torch.nn`` on the CPU, NCHW (see :mod:`comparisons.bench.measure`)."""

from __future__ import annotations

import torch

from comparisons.bench.measure import Step, Unavailable, input_data
from comparisons.bench.shapes import POOL, Shape


def bench_step(layer: str, shape: Shape, dtype: str, threads: int, seed: int = 0) -> Step:
    """forward + backward of the ``torch.nn`` equivalent of ``layer`` on the CPU, ``threads`` threads."""
    if dtype != "float32":
        raise Unavailable("frameworks are timed in float32 only")
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    if layer == "conv":
        module = torch.nn.Conv2d(shape.c, shape.filters, shape.kernel, padding=shape.padding)
    elif layer == "maxpool":
        module = torch.nn.MaxPool2d(POOL)
    elif layer == "avgpool":
        module = torch.nn.AvgPool2d(POOL)
    else:
        module = torch.nn.Linear(shape.c * shape.h * shape.w, shape.filters)
    x = torch.from_numpy(input_data(shape, dtype, seed))
    if layer == "linear":
        x = x.reshape(shape.n, -1)
    x.requires_grad_(True)
    dout = torch.randn(module(x).shape)
    params = list(module.parameters())

    def step():
        x.grad = None
        for p in params:
            p.grad = None
        module(x).backward(dout)
        return x.grad

    return step
