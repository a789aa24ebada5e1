"""One training step of a case's model in Keras: :mod:`.model`'s layers (the same conversions as the comparisons)
trained with ``keras.optimizers``: on TensorFlow a ``tf.function`` step (``tf.GradientTape``), on JAX and PyTorch
an eager step whose gradients come from :func:`.gradients.vjp` (``jax.vjp`` / ``torch.autograd``).
:func:`keras_optimizer` builds the Keras optimizer of a reference optimizer (SGD, Adam, AdamW, RMSprop, Adagrad) and
Keras' gradient clipping, with every value exact in the model's dtype."""

from __future__ import annotations

import contextlib

import keras
import numpy as np

from comparisons.cases import Case

from ..layouts import nchw_to_nhwc
from ..protocol import ADAM_EPS
from .gradients import numpy, vjp
from .model import KerasModel


@contextlib.contextmanager
def floatx(dtype: str):
    """Keras' default float type set to ``dtype`` inside the block (the type of an optimizer's learning-rate and
    iteration variables, and of a loss's result), restored after it."""
    previous = keras.config.floatx()
    keras.config.set_floatx(dtype)
    try:
        yield
    finally:
        keras.config.set_floatx(previous)


# The Keras optimizer of each reference optimizer, and the reference's keyword names it takes (PyTorch's) -> Keras'.
# What Keras has no keyword for is refused: PyTorch's (and the reference's) weight_decay in SGD, Adam, RMSprop and
# Adagrad is an L2 term added to the gradient, Keras' is decoupled (AdamW's only); Adagrad's lr_decay does not exist
# in Keras.
KERAS_OPTIMIZERS = {
    "sgd": (keras.optimizers.SGD, {"lr": "learning_rate", "momentum": "momentum"}),
    "adam": (keras.optimizers.Adam, {"lr": "learning_rate", "eps": "epsilon"}),
    "adamw": (keras.optimizers.AdamW, {"lr": "learning_rate", "eps": "epsilon", "weight_decay": "weight_decay"}),
    "rmsprop": (keras.optimizers.RMSprop, {"lr": "learning_rate", "alpha": "rho", "eps": "epsilon",
                                           "momentum": "momentum", "centered": "centered"}),
    "adagrad": (keras.optimizers.Adagrad, {"lr": "learning_rate", "eps": "epsilon",
                                           "initial_accumulator_value": "initial_accumulator_value"}),
}
CLIPPING = ("clipnorm", "global_clipnorm", "clipvalue")  # Keras' own names, passed as they are


def keras_optimizer(name: str, dtype: str, **options) -> keras.optimizers.Optimizer:
    """The Keras optimizer computing the reference optimizer ``name`` (a key of :data:`KERAS_OPTIMIZERS`) with the
    reference's keyword ``options`` (PyTorch's names: ``lr``, ``betas``, ``alpha``, ``eps``, ...; the reference's
    Keras switches ``eps_hat``, ``eps_in_sqrt``, ``momentum_holds_lr`` are what Keras computes and are not
    options here), plus Keras' gradient clipping (``clipnorm``, ``global_clipnorm``, ``clipvalue``).

    Keras' defaults are not PyTorch's, so every value is given explicitly: a missing option takes the reference's
    default for it. Built with ``floatx`` = ``dtype`` and, in float64, every real option as a numpy float64:
    Keras casts a Python float through a float32 tensor (Adam's beta_2 0.999 -> 0.99900001287, which moves float64
    updates by ~7e-6 relative). ValueError naming an option Keras has no equivalent for."""
    if name not in KERAS_OPTIMIZERS:
        raise ValueError(f"keras_optimizer: name must be one of {tuple(KERAS_OPTIMIZERS)}, got {name!r}")
    make, names = KERAS_OPTIMIZERS[name]
    # numpy float64 scalars in float64 (a subclass of float, which Keras' learning rate must be); Python floats in
    # float32, which Keras rounds to float32 itself (a numpy float32 is not a float: Keras refuses it)
    real = np.float64 if np.dtype(dtype) == np.float64 else float
    kwargs = {key: real(value) for key, value in options.items() if key in CLIPPING}
    for key, value in options.items():
        if key in CLIPPING:
            continue
        if key == "betas" and name in ("adam", "adamw"):
            kwargs["beta_1"], kwargs["beta_2"] = real(value[0]), real(value[1])
        elif key in names:
            kwargs[names[key]] = value if isinstance(value, bool) else real(value)
        else:
            raise ValueError(f"keras_optimizer: Keras' {make.__name__} has no equivalent of the reference's {key}="
                             f"{value!r} (it takes {tuple(names)}" + (", betas" if name in ("adam", "adamw") else "")
                             + f", {', '.join(CLIPPING)})")
    with floatx(dtype):
        return make(**{**_reference_defaults(name, real), **kwargs})


def _reference_defaults(name: str, real) -> dict:
    """The reference's (PyTorch's) defaults of optimizer ``name`` in Keras' keywords, numpy scalars of ``real``."""
    defaults = {"sgd": {"learning_rate": 1e-3},
                "adam": {"learning_rate": 1e-3, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8},
                "adamw": {"learning_rate": 1e-3, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8,
                          "weight_decay": 1e-2},
                "rmsprop": {"learning_rate": 1e-2, "rho": 0.99, "epsilon": 1e-8},
                "adagrad": {"learning_rate": 1e-2, "epsilon": 1e-10, "initial_accumulator_value": 0.0}}[name]
    return {key: real(value) for key, value in defaults.items()}


class KerasTrainer:
    """``trainer(case, params, dtype, optimizer, lr)``: see :class:`comparisons.frameworks.protocol.Trainer`.

    In float64, Keras' float32 defaults would leak in (the optimizer's learning-rate variable, the loss, Adam's
    betas), so the loss and optimizer are built with ``floatx`` set to the dtype (:func:`keras_optimizer`).
    """

    def __init__(self, case: Case, params: dict[str, np.ndarray], dtype: str, optimizer: str, lr: float) -> None:
        with floatx(dtype):
            sample = case.input_shape if case.single else case.input_shape[1:]
            self.model = KerasModel(case.specs, sample, dtype)
            self.model.load(params)
            self.variables = [v for layer in self.model.layers for v in layer.trainable_variables]
            self.loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype=dtype)
            options = {"lr": lr, "eps": ADAM_EPS} if optimizer == "adam" else {"lr": lr}
            self.opt = keras_optimizer(optimizer, dtype, **options)
            self.opt.build(self.variables)
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
