"""RMSprop, Adagrad and AdamW, as ``torch.optim`` computes them, with keyword-only switches for Keras' forms.

Like :mod:`reference.optim`: ``step(grads)`` updates every ``params[key]`` array in place from ``grads[key]``;
state is kept per key in the parameters' dtype. ``g`` below is the gradient plus ``weight_decay * p`` (L2,
PyTorch's coupling; Keras' ``weight_decay`` is decoupled, as AdamW's).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .optim import Adam, Optimizer
from .validation import check_bool, check_real


class RMSprop(Optimizer):
    """``RMSprop(params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False, *,
    eps_in_sqrt=False, momentum_holds_lr=False)``, as ``torch.optim.RMSprop``::

        v = alpha * v + (1 - alpha) * g**2
        a = a + (1 - alpha) * (g - a)                   (centered only)
        d = sqrt(v - a**2 if centered else v) + eps
        b = momentum * b + g / d;  p -= lr * b           (momentum > 0)
        p -= lr * g / d                                  (otherwise)

    Keras' ``RMSprop(rho=alpha, epsilon=eps)``: ``eps_in_sqrt=True`` (``d = sqrt(v [- a**2] + eps)``) and
    ``momentum_holds_lr=True`` (``b = momentum * b + lr * g / d;  p -= b``: the same iterates for a constant
    ``lr``, up to rounding). Keras' defaults differ: ``lr=1e-3``, ``rho=0.9``, ``epsilon=1e-7``.
    """

    def __init__(self, params: Mapping[str, np.ndarray], lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False, *,
                 eps_in_sqrt: bool = False, momentum_holds_lr: bool = False) -> None:
        super().__init__(params, lr)
        where = "RMSprop"
        self.alpha = check_real(alpha, where, "alpha", minimum=0.0, maximum=1.0)
        self.eps = check_real(eps, where, "eps", minimum=0.0)
        self.weight_decay = check_real(weight_decay, where, "weight_decay", minimum=0.0)
        self.momentum = check_real(momentum, where, "momentum", minimum=0.0)
        self.centered = check_bool(centered, where, "centered")
        self.eps_in_sqrt = check_bool(eps_in_sqrt, where, "eps_in_sqrt")
        self.momentum_holds_lr = check_bool(momentum_holds_lr, where, "momentum_holds_lr")
        self.square_avg = self._zeros()
        self.grad_avg = self._zeros() if self.centered else {}
        self.momentum_buffer = self._zeros() if self.momentum else {}

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        """One update of every parameter, in place."""
        alpha = self.alpha
        for key, p, g in self._pairs(grads):
            if self.weight_decay:
                g = g + self.weight_decay * p
            v = self.square_avg[key]
            v *= alpha
            v += (1 - alpha) * g * g
            var = v
            if self.centered:
                a = self.grad_avg[key]
                a += (1 - alpha) * (g - a)
                var = v - a * a
            d = np.sqrt(var + self.eps) if self.eps_in_sqrt else np.sqrt(var) + self.eps
            if self.momentum:
                b = self.momentum_buffer[key]
                b *= self.momentum
                if self.momentum_holds_lr:
                    b += self.lr * g / d
                    p -= b
                else:
                    b += g / d
                    p -= self.lr * b
            elif self.momentum_holds_lr:
                p -= self.lr * g / d
            else:
                p -= self.lr * (g / d)
        self.iterations += 1


class Adagrad(Optimizer):
    """``Adagrad(params, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10, *,
    eps_in_sqrt=False)``, as ``torch.optim.Adagrad``; with ``t`` the step number (from 1)::

        s += g**2                                   (s starts at initial_accumulator_value)
        p -= lr / (1 + (t - 1) * lr_decay) * g / (sqrt(s) + eps)

    Keras' ``Adagrad(epsilon=eps, initial_accumulator_value=...)``: ``eps_in_sqrt=True``
    (``g / sqrt(s + eps)``); Keras' defaults differ: ``lr=1e-3``, ``initial_accumulator_value=0.1``,
    ``epsilon=1e-7``, and it has no ``lr_decay``.
    """

    def __init__(self, params: Mapping[str, np.ndarray], lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0, eps: float = 1e-10, *,
                 eps_in_sqrt: bool = False) -> None:
        super().__init__(params, lr)
        where = "Adagrad"
        self.lr_decay = check_real(lr_decay, where, "lr_decay", minimum=0.0)
        self.weight_decay = check_real(weight_decay, where, "weight_decay", minimum=0.0)
        self.initial_accumulator_value = check_real(initial_accumulator_value, where, "initial_accumulator_value",
                                                    minimum=0.0)
        self.eps = check_real(eps, where, "eps", minimum=0.0)
        self.eps_in_sqrt = check_bool(eps_in_sqrt, where, "eps_in_sqrt")
        self.sum = {key: np.full_like(p, self.initial_accumulator_value) for key, p in zip(self.keys, self.arrays,
                                                                                          strict=True)}

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        """One update of every parameter, in place."""
        pairs = list(self._pairs(grads))
        self.iterations += 1
        clr = self.lr / (1 + (self.iterations - 1) * self.lr_decay)
        for key, p, g in pairs:
            if self.weight_decay:
                g = g + self.weight_decay * p
            s = self.sum[key]
            s += g * g
            if self.eps_in_sqrt:
                p -= clr * g / np.sqrt(s + self.eps)
            else:
                p -= clr * (g / (np.sqrt(s) + self.eps))


class AdamW(Adam):
    """``AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, *, eps_hat=False)``, as
    ``torch.optim.AdamW``: ``p *= 1 - lr * weight_decay`` (decoupled decay), then :class:`Adam`'s step.
    Keras' ``AdamW`` (``p -= p * weight_decay * lr`` first, then its Adam): ``eps_hat=True`` (see :class:`Adam`);
    its default ``weight_decay`` is 0.004 and ``epsilon`` 1e-7.
    """

    def __init__(self, params: Mapping[str, np.ndarray], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, *, eps_hat: bool = False) -> None:
        super().__init__(params, lr, betas, eps, eps_hat)
        self.weight_decay = check_real(weight_decay, "AdamW", "weight_decay", minimum=0.0)

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        """One update of every parameter, in place (the gradients checked before anything changes)."""
        self._gradients(grads)
        decay = 1.0 - self.lr * self.weight_decay
        for p in self.arrays:
            p *= decay
        super().step(grads)
