"""The benchmarked layers in Keras 3 on TensorFlow: NHWC (TensorFlow's CPU convolution is channels-last only),
forward + ``GradientTape`` inside one ``tf.function`` (see :mod:`comparisons.bench.measure`). The other backends
run in a worker process (:mod:`.worker`), whose entries are not timed."""

from __future__ import annotations

import keras
import numpy as np

from comparisons.bench.measure import Step, Unavailable, input_data
from comparisons.bench.shapes import POOL, Shape

_THREADS: list[int] = []


def _set_threads(threads: int) -> None:
    """TensorFlow's thread pools, set once per process (TensorFlow refuses later changes)."""
    import tensorflow as tf

    if not _THREADS:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # already initialised by someone else: keep its setting
            pass
        _THREADS.append(tf.config.threading.get_intra_op_parallelism_threads())


def bench_step(layer: str, shape: Shape, dtype: str, threads: int, seed: int = 0) -> Step:
    """forward + backward of the Keras equivalent of ``layer`` (NHWC), compiled with ``tf.function``."""
    if dtype != "float32":
        raise Unavailable("frameworks are timed in float32 only")
    if keras.backend.backend() != "tensorflow":
        raise Unavailable(f"Keras on {keras.backend.backend()} is not timed (its entry runs in a worker process)")
    import tensorflow as tf

    _set_threads(threads)
    keras.utils.set_random_seed(seed)
    x = input_data(shape, dtype, seed)
    if layer == "conv":
        model = keras.layers.Conv2D(shape.filters, shape.kernel, padding="same" if shape.padding else "valid")
        if shape.padding not in (0, (shape.kernel - 1) // 2):
            raise Unavailable(f"Keras has no symmetric padding {shape.padding} for kernel {shape.kernel}")
    elif layer == "maxpool":
        model = keras.layers.MaxPooling2D(POOL)
    elif layer == "avgpool":
        model = keras.layers.AveragePooling2D(POOL)
    else:
        model = keras.layers.Dense(shape.filters)
    x = x.reshape(shape.n, -1) if layer == "linear" else x.transpose(0, 2, 3, 1).copy()
    xt = tf.constant(x)
    dout = tf.constant(np.random.default_rng(seed + 1).standard_normal(model(xt).shape).astype(dtype))

    @tf.function
    def compiled():
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = model(xt)
        return tape.gradient(y, [xt, *model.trainable_variables], output_gradients=dout)

    return compiled
