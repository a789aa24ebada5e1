"""One training step of a case's model in Keras: :mod:`.model`'s layers (the same conversions as the comparisons)
trained with ``keras.optimizers``: on TensorFlow a ``tf.function`` step (``tf.GradientTape``), on JAX and PyTorch
an eager step whose gradients come from :func:`.gradients.vjp` (``jax.vjp`` / ``torch.autograd``)."""

from __future__ import annotations

import keras
import numpy as np

from comparisons.cases import Case

from ..layouts import nchw_to_nhwc
from ..protocol import ADAM_EPS
from .gradients import numpy, vjp
from .model import KerasModel


class KerasTrainer:
    """``trainer(case, params, dtype, optimizer, lr)``: see :class:`comparisons.frameworks.protocol.Trainer`.

    In float64, Keras' float32 defaults would leak in (the optimizer's learning-rate variable, the loss, Adam's
    betas), so the loss and optimizer are built with ``floatx`` set to the dtype and the betas are given as
    numpy scalars of that dtype.
    """

    def __init__(self, case: Case, params: dict[str, np.ndarray], dtype: str, optimizer: str, lr: float) -> None:
        previous = keras.config.floatx()
        keras.config.set_floatx(dtype)
        try:
            sample = case.input_shape if case.single else case.input_shape[1:]
            self.model = KerasModel(case.specs, sample, dtype)
            self.model.load(params)
            self.variables = [v for layer in self.model.layers for v in layer.trainable_variables]
            self.loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype=dtype)
            # Keras casts Python-float betas via a float32 tensor (0.999 -> 0.99900001287), which moves
            # float64 updates by ~7e-6 relative; numpy scalars of the model's dtype keep them exact.
            real = np.dtype(dtype).type
            self.opt = (keras.optimizers.Adam(learning_rate=lr, beta_1=real(0.9), beta_2=real(0.999), epsilon=ADAM_EPS)
                        if optimizer == "adam" else keras.optimizers.SGD(learning_rate=lr))
            self.opt.build(self.variables)
        finally:
            keras.config.set_floatx(previous)
        backend = keras.backend.backend()
        self.name = "keras" if backend == "tensorflow" else f"keras-{backend}"
        if backend == "tensorflow":
            import tensorflow as tf

            self._step = tf.function(self._train_step)
            self._predict = tf.function(lambda x: self.model(x, training=False))
        else:
            self._step, self._predict = self._eager_step, lambda x: self.model(x, training=False)

    def _train_step(self, x, y):
        """The TensorFlow step: loss and gradients on a ``tf.GradientTape``, the update, the correct count."""
        import tensorflow as tf

        with tf.GradientTape() as tape:
            scores = self.model(x, training=True)
            loss = self.loss_fn(y, scores)
        grads = tape.gradient(loss, self.variables)
        self.opt.apply_gradients(zip(grads, self.variables, strict=True))
        correct = tf.reduce_sum(tf.cast(tf.argmax(scores, axis=1) == tf.cast(y, "int64"), "int32"))
        return loss, correct

    def _eager_step(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, int]:
        """The JAX / PyTorch step: :func:`.gradients.vjp` of the loss (batch norm's moving statistics updated as in
        the TensorFlow step), the update, the correct count."""
        def loss(xk):
            scores = self.model(xk, training=True)
            return self.loss_fn(y, scores), {"scores": scores}

        value, aux, _, grads = vjp(loss, x, self.variables, 1.0, self.model.variables)
        self.opt.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in grads], self.variables, strict=True))
        return value, int(np.sum(np.argmax(aux["scores"], axis=1) == y))

    def step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        loss, correct = self._step(nchw_to_nhwc(x), y)
        return float(loss), int(correct)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return numpy(self._predict(nchw_to_nhwc(x)))

    def params(self) -> dict[str, np.ndarray]:
        """Current parameters in the reference's layout."""
        return self.model.export()
