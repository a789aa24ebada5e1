"""One training step of a case's model in JAX: :mod:`.model`'s Flax modules (the same conversions as the
comparisons) trained by a jitted ``jax.value_and_grad`` step with optax.

``optax.adam(lr, b1=0.9, b2=0.999, eps=1e-8)`` is PyTorch's Adam: both divide the bias-corrected first moment
by ``sqrt(bias-corrected second moment) + eps`` (eps added after the correction, ``eps_root=0``), so the
reference needs no option (``reference_adam`` is empty). ``optax.sgd(lr)`` is plain SGD, as ``torch.optim.SGD``.
"""

from __future__ import annotations

import jax
import numpy as np
import optax
from flax import nnx

from comparisons.cases import Case

from ..layouts import nchw_to_nhwc
from ..protocol import ADAM_EPS
from .model import FlaxModel


def _train_step(graphdef, tx):
    """The jitted step ``(params, opt_state, rest, x, y) -> (params, opt_state, rest, loss, correct)``: optax's
    mean cross-entropy over integer labels, its gradient, one optimizer update."""

    def step(params, opt_state, rest, x, y):
        def loss_fn(p):
            module = nnx.merge(graphdef, p, rest)
            scores, _ = module(x)
            loss = optax.softmax_cross_entropy_with_integer_labels(scores, y).mean()
            return loss, (scores, nnx.state(module, nnx.Not(nnx.Param)))

        (loss, (scores, rest_)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, rest_, loss, (scores.argmax(1) == y).sum()

    return jax.jit(step)


class FlaxTrainer:
    """``trainer(case, params, dtype, optimizer, lr)``: see :class:`comparisons.frameworks.protocol.Trainer`."""

    name = "jax"

    def __init__(self, case: Case, params: dict[str, np.ndarray], dtype: str, optimizer: str, lr: float) -> None:
        sample = case.input_shape if case.single else case.input_shape[1:]
        self.model = FlaxModel(case.specs, sample, dtype, training=True, masks=False)
        self.model.load(params)
        self.keys = tuple(params)
        graphdef, self.params_state, self.rest = nnx.split(self.model.module, nnx.Param, ...)
        tx = optax.adam(lr, b1=0.9, b2=0.999, eps=ADAM_EPS) if optimizer == "adam" else optax.sgd(lr)
        self.opt_state = tx.init(self.params_state)
        self._step = _train_step(graphdef, tx)
        eval_graphdef, _, eval_rest = nnx.split(FlaxModel(case.specs, sample, dtype, training=False).module,
                                                nnx.Param, ...)
        self._predict = jax.jit(lambda p, x: nnx.merge(eval_graphdef, p, eval_rest)(x)[0])

    def step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        self.params_state, self.opt_state, self.rest, loss, correct = self._step(
            self.params_state, self.opt_state, self.rest, nchw_to_nhwc(x), y)
        return float(loss), int(correct)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self._predict(self.params_state, nchw_to_nhwc(x)))

    def params(self) -> dict[str, np.ndarray]:
        """Current parameters in the reference's layout."""
        nnx.update(self.model.module, self.params_state)
        return self.model.export(self.keys)
