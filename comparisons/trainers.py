"""One training step of a case's model in the reference or any registered framework, behind one interface.

``make_trainer(framework, case, params, dtype, optimizer, lr)`` returns a
:class:`~comparisons.frameworks.protocol.Trainer`: ``step(x, y) -> (loss, correct)`` (one optimizer update on a
batch ``x (N, C, H, W)``, ``y (N,)``; ``loss`` the batch's mean cross-entropy before the update, ``correct`` how
many of the batch it classified right) and ``predict(x) -> scores (N, classes)``. Data always arrives
channels-first as numpy; each framework's trainer converts it. Optimizer conventions are matched explicitly:
every Adam gets ``eps=1e-8`` (:data:`~comparisons.frameworks.protocol.ADAM_EPS`) and the reference uses
``Adam(eps_hat=...)`` only when asked (see :class:`reference.optim.Adam`).
"""

from __future__ import annotations

import numpy as np

import reference as ref
from reference.optim import SGD, Adam

from . import frameworks
from .cases import Case, build_reference
from .frameworks.protocol import ADAM_EPS, OPTIMIZERS


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


def make_trainer(framework: str, case: Case, params: dict[str, np.ndarray], dtype: str, optimizer: str,
                 lr: float, **reference_options):
    """A trainer for ``framework`` (``"reference"`` or a registered framework) starting from ``params``."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"make_trainer: optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if framework == "reference":
        return ReferenceTrainer(case, params, dtype, optimizer, lr, **reference_options)
    if framework not in frameworks.NAMES:
        raise ValueError(f"make_trainer: framework must be one of {('reference', *frameworks.NAMES)}, "
                         f"got {framework!r}")
    return frameworks.load(framework).trainer(case, params, dtype, optimizer, lr)
