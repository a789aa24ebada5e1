"""The benchmarked layers in JAX/Flax: NHWC (Flax's layout), forward + backward as one ``jax.jit`` of
``jax.vjp`` (see :mod:`comparisons.bench.measure`). XLA sizes its CPU thread pool when the process starts,
so ``threads`` is not applied here: the step uses XLA's default pool (every core)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from comparisons.bench.measure import Step, Unavailable, input_data
from comparisons.bench.shapes import Shape

from .model import FlaxModel


def bench_step(layer: str, shape: Shape, dtype: str, threads: int, seed: int = 0) -> Step:
    """forward + backward of ``layer`` built as for a comparison (:class:`.model.FlaxModel`: the Flax module of
    its kind, NHWC), compiled with ``jax.jit``."""
    if dtype != "float32":
        raise Unavailable("frameworks are timed in float32 only")
    model = FlaxModel((shape.spec(layer),), shape.sample_shape(layer), dtype, training=True, seed=seed)
    x = input_data(shape, dtype, seed).reshape(shape.n, *shape.sample_shape(layer))
    x = jnp.asarray(model.to_flax(x))
    graphdef, params = nnx.split(model.module)

    def apply(x_, p):
        return nnx.merge(graphdef, p)(x_)[0]  # the output, without a max pool's (absent) indices

    out_shape = jax.eval_shape(apply, x, params).shape
    dout = jnp.asarray(np.random.default_rng(seed + 1).standard_normal(out_shape).astype(dtype))

    @jax.jit
    def compiled(x_, p, d):
        _, vjp = jax.vjp(apply, x_, p)
        return vjp(d)

    jax.block_until_ready(compiled(x, params, dout))  # compile before timing
    return lambda: jax.block_until_ready(compiled(x, params, dout))
