"""One training step of the tutorial's CNN in the reference, PyTorch or Keras, behind one interface.

``make_trainer(framework, case, params, dtype, optimizer, lr)`` returns an object with
``step(x, y) -> (loss, correct)`` (one optimizer update on a batch ``x (N, 1, 28, 28)``,
``y (N,)``; ``loss`` the batch's mean cross-entropy before the update, ``correct`` how many
of the batch it classified right) and ``predict(x) -> scores (N, 10)``. Data always
arrives channels-first as numpy; the Keras trainer converts it (and the initial weights)
with :mod:`comparisons.layouts`. Optimizer conventions are matched explicitly:
Keras' Adam gets ``epsilon=1e-8`` and the reference uses ``Adam(eps_hat=...)`` only
when asked (see :class:`reference.optim.Adam`).
"""

from __future__ import annotations

import numpy as np

import reference as ref
from reference.optim import SGD, Adam

from .cases import Case, build_reference
from .frameworks import FRAMEWORKS, load_adapter, quiet_tensorflow
from .layouts import dense_rows_chw_to_hwc, linear_from_torch, nchw_to_nhwc, oihw_to_hwio

OPTIMIZERS = ("adam", "sgd")
ADAM_EPS = 1e-8  # PyTorch's default; Keras' default is 1e-7, so Keras is given this value


class ReferenceTrainer:
    """The reference model (``Sequential``) with :mod:`reference.optim`."""

    name = "reference"

    def __init__(self, case: Case, params: dict[str, np.ndarray], dtype: str, optimizer: str, lr: float,
                 impl: str = "im2col", eps_hat: bool = False) -> None:
        self.model = build_reference(case, impl, dtype)
        for key, value in params.items():
            self.model.params[key][...] = value
        self.dtype = np.dtype(dtype)
        self.opt = (Adam(self.model.params, lr, eps=ADAM_EPS, eps_hat=eps_hat) if optimizer == "adam"
                    else SGD(self.model.params, lr))

    def step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        scores = self.model.forward(x)
        loss, dscores = ref.softmax_cross_entropy(scores, y)
        self.model.backward(dscores)
        self.opt.step(self.model.grads)
        return loss, int((scores.argmax(axis=1) == y).sum())

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.model.forward(x)

    def params(self) -> dict[str, np.ndarray]:
        return {k: np.array(v) for k, v in self.model.params.items()}


class TorchTrainer:
    """``torch_adapter.build``'s ``nn.Sequential`` with ``torch.optim``."""

    name = "torch"

    def __init__(self, case: Case, params: dict[str, np.ndarray], dtype: str, optimizer: str, lr: float) -> None:
        import torch
        import torch.nn.functional as F

        self.torch, self.F = torch, F
        self.model = load_adapter("torch").build(case, params, dtype)
        self.opt = (torch.optim.Adam(self.model.parameters(), lr=lr, eps=ADAM_EPS) if optimizer == "adam"
                    else torch.optim.SGD(self.model.parameters(), lr=lr))

    def step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        scores = self.model(self.torch.from_numpy(x))
        target = self.torch.from_numpy(y)
        loss = self.F.cross_entropy(scores, target)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss.item(), int((scores.argmax(1) == target).sum())

    def predict(self, x: np.ndarray) -> np.ndarray:
        with self.torch.no_grad():
            return self.model(self.torch.from_numpy(x)).numpy()

    def params(self) -> dict[str, np.ndarray]:
        """Current parameters in the reference's layout (``nn.Linear.weight`` transposed back)."""
        out = {}
        for key, value in self.model.named_parameters():
            value = value.detach().numpy().copy()
            is_linear = isinstance(self.model[int(key.split(".")[0])], self.torch.nn.Linear)
            out[key] = linear_from_torch(value) if is_linear and key.endswith("weight") else value
        return out


class KerasTrainer:
    """A channels-last ``keras.Sequential`` of the same layers, trained by a ``tf.function`` step.

    In float64, Keras' float32 defaults would leak in (the optimizer's learning-rate variable,
    the loss, Adam's betas), so the model, loss and optimizer are built with ``floatx`` set to
    the dtype and the betas are given as numpy scalars of that dtype.
    """

    name = "keras"

    def __init__(self, case: Case, params: dict[str, np.ndarray], dtype: str, optimizer: str, lr: float) -> None:
        quiet_tensorflow()
        import keras
        import tensorflow as tf

        self.tf = tf
        previous = keras.config.floatx()
        keras.config.set_floatx(dtype)
        try:
            self.model, self.feature_shape = _keras_model(keras, case, dtype)
            _set_keras_weights(self.model, params, self.feature_shape)
            self.loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype=dtype)
            # Keras casts Python-float betas via a float32 tensor (0.999 -> 0.99900001287), which moves
            # float64 updates by ~7e-6 relative; numpy scalars of the model's dtype keep them exact.
            real = np.dtype(dtype).type
            self.opt = (keras.optimizers.Adam(learning_rate=lr, beta_1=real(0.9), beta_2=real(0.999), epsilon=ADAM_EPS)
                        if optimizer == "adam" else keras.optimizers.SGD(learning_rate=lr))
            self.opt.build(self.model.trainable_variables)
        finally:
            keras.config.set_floatx(previous)
        self._step = tf.function(self._train_step)
        self._predict = tf.function(lambda x: self.model(x, training=False))

    def _train_step(self, x, y):
        with self.tf.GradientTape() as tape:
            scores = self.model(x, training=True)
            loss = self.loss_fn(y, scores)
        grads = tape.gradient(loss, self.model.trainable_variables)
        self.opt.apply_gradients(zip(grads, self.model.trainable_variables, strict=True))
        correct = self.tf.reduce_sum(self.tf.cast(self.tf.argmax(scores, axis=1) == self.tf.cast(y, "int64"),
                                                  "int32"))
        return loss, correct

    def step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        loss, correct = self._step(nchw_to_nhwc(x), y)
        return float(loss), int(correct)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self._predict(nchw_to_nhwc(x)).numpy()


def _keras_model(keras, case: Case, dtype: str):
    """The case's layers channels-last; returns the model and the feature shape ``(C, H, W)`` at Flatten."""
    layers, shape = [], case.input_shape[-3:]  # (C, H, W)
    c, h, w = shape
    for s in case.specs:
        kw = s.kwargs
        if s.kind == "conv":
            if kw["padding"] or kw["stride"] != 1 or kw["dilation"] != 1:
                raise ValueError(f"KerasTrainer: only unpadded stride-1 convolutions are built, got {s}")
            k = kw["kernel_size"]
            layers.append(keras.layers.Conv2D(kw["out_channels"], k, use_bias=kw["bias"], dtype=dtype))
            c, h, w = kw["out_channels"], h - k + 1, w - k + 1
        elif s.kind == "relu":
            layers.append(keras.layers.ReLU(dtype=dtype))
        elif s.kind == "maxpool":
            k = kw["kernel_size"]
            layers.append(keras.layers.MaxPooling2D(k, strides=kw["stride"], dtype=dtype))
            c, h, w = c, h // k, w // k
        elif s.kind == "flatten":
            layers.append(keras.layers.Flatten(dtype=dtype))
            shape = (c, h, w)
        elif s.kind == "linear":
            layers.append(keras.layers.Dense(kw["out_features"], use_bias=kw["bias"], dtype=dtype))
        else:
            raise ValueError(f"KerasTrainer: unsupported layer kind {s.kind!r}")
    ci, hi, wi = case.input_shape[-3:]
    model = keras.Sequential([keras.Input((hi, wi, ci), dtype=dtype), *layers])
    return model, shape


def _set_keras_weights(model, params: dict[str, np.ndarray], feature_shape) -> None:
    """Reference parameters (OIHW conv, ``(in, out)`` dense after a C,H,W flatten) -> Keras layers."""
    with_weights = [layer for layer in model.layers if layer.weights]
    keys = sorted({k.split(".")[0] for k in params}, key=int)
    for layer, index in zip(with_weights, keys, strict=True):
        w = params[f"{index}.weight"]
        w = oihw_to_hwio(w) if w.ndim == 4 else dense_rows_chw_to_hwc(w, chw=feature_shape)
        bias = params.get(f"{index}.bias")
        layer.set_weights([w] if bias is None else [w, bias])


def make_trainer(framework: str, case: Case, params: dict[str, np.ndarray], dtype: str, optimizer: str,
                 lr: float, **reference_options):
    """A trainer for ``framework`` in ``("reference", *FRAMEWORKS)`` starting from ``params``."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"make_trainer: optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if framework == "reference":
        return ReferenceTrainer(case, params, dtype, optimizer, lr, **reference_options)
    if framework == "torch":
        return TorchTrainer(case, params, dtype, optimizer, lr)
    if framework == "keras":
        return KerasTrainer(case, params, dtype, optimizer, lr)
    raise ValueError(f"make_trainer: framework must be one of {('reference', *FRAMEWORKS)}, got {framework!r}")
