"""The benchmarked layers in JAX/Flax: NHWC (Flax's layout), forward + backward as one ``jax.jit`` of
``jax.vjp`` (see :mod:`comparisons.bench.measure`). XLA sizes its CPU thread pool when the process starts,
so ``threads`` is not applied here: the step uses XLA's default pool (every core)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from comparisons.bench.measure import Step, Unavailable, input_data
from comparisons.bench.shapes import POOL, Shape


def _layer(layer: str, shape: Shape, seed: int):
    """The Flax module (or pooling function) benchmarked for ``layer``."""
    rngs = nnx.Rngs(seed)
    if layer == "conv":
        p = shape.padding
        return nnx.Conv(shape.c, shape.filters, (shape.kernel, shape.kernel), padding=((p, p), (p, p)), rngs=rngs)
    if layer == "maxpool":
        return lambda x: nnx.max_pool(x, (POOL, POOL), strides=(POOL, POOL))
    if layer == "avgpool":
        return lambda x: nnx.avg_pool(x, (POOL, POOL), strides=(POOL, POOL))
    return nnx.Linear(shape.c * shape.h * shape.w, shape.filters, rngs=rngs)


def bench_step(layer: str, shape: Shape, dtype: str, threads: int, seed: int = 0) -> Step:
    """forward + backward of the Flax equivalent of ``layer`` (NHWC), compiled with ``jax.jit``."""
    if dtype != "float32":
        raise Unavailable("frameworks are timed in float32 only")
    module = _layer(layer, shape, seed)
    x = input_data(shape, dtype, seed)
    x = jnp.asarray(x.reshape(shape.n, -1) if layer == "linear" else x.transpose(0, 2, 3, 1))
    if isinstance(module, nnx.Module):
        graphdef, params = nnx.split(module)

        def apply(x_, p):
            return nnx.merge(graphdef, p)(x_)
    else:
        params = {}

        def apply(x_, p):
            return module(x_)

    out_shape = jax.eval_shape(apply, x, params).shape
    dout = jnp.asarray(np.random.default_rng(seed + 1).standard_normal(out_shape).astype(dtype))

    @jax.jit
    def compiled(x_, p, d):
        _, vjp = jax.vjp(apply, x_, p)
        return vjp(d)

    jax.block_until_ready(compiled(x, params, dout))  # compile before timing
    return lambda: jax.block_until_ready(compiled(x, params, dout))
