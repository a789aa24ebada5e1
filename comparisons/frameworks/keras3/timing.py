"""The benchmarked layers in Keras 3, on the backend Keras was imported with (see :mod:`comparisons.bench.measure`).

One Keras layer per benchmarked layer (``Conv2D``, ``MaxPooling2D``, ``AveragePooling2D``, ``Dense``), NHWC
(Keras' default layout; TensorFlow's CPU convolution is channels-last only), float32; forward + backward through
the backend's own autodiff, compiled the way a user of that backend compiles a training step:

- ``tensorflow``: the layer and a ``tf.GradientTape`` inside one ``tf.function``; TensorFlow's intra-op pool gets
  ``threads`` threads (once per process: TensorFlow refuses later changes).
- ``jax``: ``jax.vjp`` of the layer's ``stateless_call`` (a pure function of the input and the variables' values)
  inside one ``jax.jit``. XLA sizes its CPU pool when its process starts: ``threads`` must be that size (one
  thread, or every core the process may run on; the ``keras-jax`` worker's settings for the purpose ``time``
  choose it from :data:`comparisons.bench.measure.THREADS_VAR`), else :class:`~comparisons.bench.measure.Unavailable`.
- ``torch``: the layer called eagerly on torch tensors, ``torch.autograd.grad`` of the output with respect to the
  input and each variable's ``torch.nn.Parameter``; ``torch.set_num_threads(threads)``.

Every step returns ``(dx, *d variables)`` as backend tensors: ``dx`` shaped like the NHWC (or flattened) input,
then the gradient of each of the layer's ``trainable_variables`` (conv: kernel ``(kh, kw, C, F)`` and bias
``(F,)``; dense: kernel ``(D, F)`` and bias). The ``keras-jax`` and ``keras-torch`` entries run in a worker
process (:mod:`.worker`), where these steps are built and timed.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import keras
import numpy as np

from comparisons.bench.measure import Step, Unavailable, input_data
from comparisons.bench.shapes import Shape

from .kinds import keras_kind

_THREADS: list[int] = []


def _tensorflow_threads(threads: int) -> None:
    """TensorFlow's thread pools, set once per process (TensorFlow refuses later changes)."""
    import tensorflow as tf

    if not _THREADS:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # already initialised by someone else: keep its setting
            pass
        _THREADS.append(tf.config.threading.get_intra_op_parallelism_threads())


def xla_threads() -> int:
    """The threads of XLA's CPU pool in this process: one under ``--xla_cpu_multi_thread_eigen=false
    intra_op_parallelism_threads=1`` in ``XLA_FLAGS``, else every core the process may run on (what XLA sizes it
    to when the process starts)."""
    flags = os.environ.get("XLA_FLAGS", "").split()
    if "--xla_cpu_multi_thread_eigen=false" in flags and "intra_op_parallelism_threads=1" in flags:
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def keras_layer(layer: str, shape: Shape) -> keras.Sequential:
    """The Keras layers benchmarked for ``layer`` on ``shape``: the benchmarked layer's spec (:meth:`Shape.spec`) built
    by its kind's record in :data:`.kinds.KERAS_KINDS`, as for a comparison (weights zero: the time does not depend
    on them); Unavailable with the kind's reason when Keras cannot compute it."""
    s, sample_shape = shape.spec(layer), shape.sample_shape(layer)
    record = keras_kind(s.kind)
    reason = record.reason(s, sample_shape)
    if reason is not None:
        raise Unavailable(reason)
    return keras.Sequential(record.layers(s, "float32", sample_shape))


def bench_data(layer: str, shape: Shape, dtype: str, seed: int) -> np.ndarray:
    """The benchmark input in Keras' layout: NHWC ``(N, H, W, C)``, or ``(N, C*H*W)`` for ``linear`` (the flattened
    NCHW batch, as every implementation times it)."""
    x = input_data(shape, dtype, seed)
    return x.reshape(shape.n, -1) if layer == "linear" else x.transpose(0, 2, 3, 1).copy()


def _tensorflow_step(model, x: np.ndarray, dout: np.ndarray, threads: int) -> Step:
    import tensorflow as tf

    _tensorflow_threads(threads)
    xt, dt = tf.constant(x), tf.constant(dout)
    model(xt)  # builds the variables outside the tf.function

    @tf.function
    def compiled():
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = model(xt)
        return tape.gradient(y, [xt, *model.trainable_variables], output_gradients=dt)

    return compiled


def _jax_step(model, x: np.ndarray, dout: np.ndarray, threads: int) -> Step:
    import jax
    import jax.numpy as jnp

    pool = xla_threads()
    if threads != pool:
        raise Unavailable(f"XLA's CPU pool has {pool} threads here, fixed when the process starts (XLA sets one "
                          f"thread or every core): {threads} threads asked for")
    xj, dj = jnp.asarray(x), jnp.asarray(dout)
    model(xj)  # builds the variables
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]

    def apply(x_, values):
        return model.stateless_call(values, non_trainable, x_)[0]

    @jax.jit
    def compiled(x_, values, d):
        _, pullback = jax.vjp(apply, x_, values)
        dx, grads = pullback(d)
        return (dx, *grads)

    jax.block_until_ready(compiled(xj, trainable, dj))  # compile before timing
    return lambda: jax.block_until_ready(compiled(xj, trainable, dj))


def _torch_step(model, x: np.ndarray, dout: np.ndarray, threads: int) -> Step:
    import torch

    torch.set_num_threads(threads)
    xt = torch.from_numpy(x).requires_grad_(True)
    dt = torch.from_numpy(dout)
    model(xt)  # builds the variables
    values = [v.value for v in model.trainable_variables]  # the torch.nn.Parameter each variable computes with

    def step():
        return torch.autograd.grad(model(xt), [xt, *values], grad_outputs=dt)

    return step


STEPS: dict[str, Callable[..., Step]] = {"tensorflow": _tensorflow_step, "jax": _jax_step, "torch": _torch_step}


def bench_step(layer: str, shape: Shape, dtype: str, threads: int, seed: int = 0) -> Step:
    """forward + backward of the Keras equivalent of ``layer`` on ``shape`` on the backend Keras runs on (see the
    module docstring); the step returns ``(dx, *d variables)``."""
    if dtype != "float32":
        raise Unavailable("frameworks are timed in float32 only")
    backend = keras.backend.backend()
    if backend not in STEPS:
        raise Unavailable(f"Keras on {backend} has no benchmark step (steps: {', '.join(STEPS)})")
    keras.utils.set_random_seed(seed)
    model = keras_layer(layer, shape)
    x = bench_data(layer, shape, dtype, seed)
    out_shape = model.compute_output_shape(x.shape)
    dout = np.random.default_rng(seed + 1).standard_normal(out_shape).astype(dtype)
    return STEPS[backend](model, x, dout, threads)
