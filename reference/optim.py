"""Optimizers on a ``params`` mapping, updated in place from a ``grads`` mapping with the same keys.

``params`` is e.g. ``Sequential.params`` (``{"0.weight": array, ...}``); ``step(grads)``
reads ``grads[key]`` for every key and changes each ``params[key]`` array in place, so
layers holding those arrays see the new values (the arrays are looked up once, at
construction, as ``torch.optim`` holds its tensors). State (momentum, moments) is kept per
key in the parameters' dtype. Formulas are PyTorch's (``torch.optim.SGD``/``Adam``);
``Adam(eps_hat=True)`` is Keras'/TensorFlow's variant (see :class:`Adam`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import numpy as np


class Optimizer:
    """Shared bookkeeping: the parameter keys, and the check of each step's gradients."""

    def __init__(self, params: Mapping[str, np.ndarray], lr: float) -> None:
        where = type(self).__name__
        if not isinstance(params, Mapping) or not len(params):
            raise ValueError(f"{where}: params must be a non-empty mapping name -> array, got {params!r}")
        for key, value in params.items():
            if not isinstance(value, np.ndarray) or not np.issubdtype(value.dtype, np.floating):
                raise TypeError(f"{where}: params[{key!r}] must be a float ndarray (updated in place), "
                                f"got {type(value).__name__} {getattr(value, 'dtype', '')}")
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not 0 < lr < math.inf:
            raise ValueError(f"{where}: lr must be a finite number > 0, got {lr!r}")
        self.params = params
        self.keys = list(params)
        # The arrays themselves, looked up once (as torch.optim holds its tensors): replacing an
        # entry of ``params`` later is not seen, updating an array in place is.
        self.arrays = [params[key] for key in self.keys]
        self.lr = float(lr)
        self.iterations = 0

    def _pairs(self, grads: Mapping[str, np.ndarray]):
        """``(key, param, grad)`` for every key; raises if a gradient is missing or misshapen."""
        for key, p in zip(self.keys, self.arrays, strict=True):
            try:
                g = grads[key]
            except KeyError:
                raise KeyError(f"{type(self).__name__}.step: grads has no entry {key!r} "
                               f"(params keys: {self.keys})") from None
            if g.shape != p.shape:
                raise ValueError(f"{type(self).__name__}.step: grads[{key!r}] must have shape {p.shape}, "
                                 f"got shape {g.shape}")
            yield key, p, g

    def _zeros(self) -> dict[str, np.ndarray]:
        return {key: np.zeros_like(p) for key, p in zip(self.keys, self.arrays, strict=True)}


class SGD(Optimizer):
    """``SGD(params, lr, momentum=0.0, nesterov=False, weight_decay=0.0)``, as ``torch.optim.SGD``
    (dampening 0)::

        g = grad + weight_decay * p          (L2 added to the gradient, PyTorch's coupling)
        b = momentum * b + g                 (b = g on the first step)
        p -= lr * (g + momentum * b  if nesterov else  b)

    Keras' ``SGD`` keeps ``m = momentum * m - lr * g`` instead: the same iterates for a
    constant ``lr``, up to rounding. Its ``weight_decay`` is decoupled, not L2.
    """

    def __init__(self, params: Mapping[str, np.ndarray], lr: float, momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        if momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: momentum and weight_decay must be >= 0, got {momentum}, {weight_decay}")
        if nesterov and momentum == 0:
            raise ValueError("SGD: nesterov=True needs momentum > 0, got momentum=0")
        self.momentum, self.nesterov, self.weight_decay = float(momentum), bool(nesterov), float(weight_decay)
        self.buffers = self._zeros() if self.momentum else {}

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        """One update of every parameter, in place."""
        mu = self.momentum
        for key, p, g in self._pairs(grads):
            if self.weight_decay:
                g = g + self.weight_decay * p
            if mu:
                b = self.buffers[key]
                if self.iterations:
                    b *= mu
                    b += g
                else:
                    b[...] = g
                g = g + mu * b if self.nesterov else b
            p -= self.lr * g
        self.iterations += 1


class Adam(Optimizer):
    """``Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, eps_hat=False)``.

    With ``t`` the step number (from 1), ``m = b1 m + (1-b1) g``, ``v = b2 v + (1-b2) g^2`` and
    bias corrections ``c1 = 1 - b1^t``, ``c2 = 1 - b2^t``:

    - ``eps_hat=False`` (``torch.optim.Adam``, Algorithm 1 of Kingma & Ba):
      ``p -= lr/c1 * m / (sqrt(v)/sqrt(c2) + eps)``.
    - ``eps_hat=True`` (``keras.optimizers.Adam``, ``tf.raw_ops.ApplyAdam``; the paper's
      section 2 "epsilon hat" reordering): ``p -= lr*sqrt(c2)/c1 * m / (sqrt(v) + eps)``,
      i.e. eps enters before the bias correction and acts as ``eps/sqrt(c2)``, which is
      much larger than ``eps`` in the first steps. Keras' default eps is 1e-7, PyTorch's 1e-8.
    """

    def __init__(self, params: Mapping[str, np.ndarray], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, eps_hat: bool = False) -> None:
        super().__init__(params, lr)
        b1, b2 = betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1) or not eps >= 0:
            raise ValueError(f"Adam: betas must be in [0, 1) and eps >= 0, got betas={betas}, eps={eps}")
        self.beta1, self.beta2, self.eps, self.eps_hat = float(b1), float(b2), float(eps), bool(eps_hat)
        # One flat buffer per moment (a batch-1 step is bound by numpy call overhead, not by
        # arithmetic): each step is a dozen whole-buffer operations, not a dozen per parameter.
        arrays = self.arrays
        dtype = np.result_type(*arrays)
        ends = np.cumsum([a.size for a in arrays])
        self._grad = np.empty(int(ends[-1]), dtype)
        self._m, self._v = np.zeros_like(self._grad), np.zeros_like(self._grad)
        bounds = list(zip(ends - [a.size for a in arrays], ends, strict=True))
        self.m = {k: self._m[s:e].reshape(a.shape) for k, a, (s, e) in zip(self.keys, arrays, bounds, strict=True)}
        self.v = {k: self._v[s:e].reshape(a.shape) for k, a, (s, e) in zip(self.keys, arrays, bounds, strict=True)}
        self._bounds = bounds

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        """One update of every parameter, in place.

        Both variants are computed as ``p -= lr*sqrt(c2)/c1 * m / (sqrt(v) + eps')`` with
        ``eps' = eps*sqrt(c2)`` for PyTorch's form (algebraically equal, differs by rounding).
        """
        self.iterations += 1
        t, b1, b2 = self.iterations, self.beta1, self.beta2
        c1, c2 = 1.0 - b1**t, 1.0 - b2**t
        g, m, v = self._grad, self._m, self._v
        np.concatenate([grad.reshape(-1) for _, _, grad in self._pairs(grads)], out=g)
        m *= b1
        m += (1.0 - b1) * g
        g *= g
        g *= 1.0 - b2
        v *= b2
        v += g
        denom = np.sqrt(v)
        denom += self.eps if self.eps_hat else self.eps * c2**0.5
        np.divide(m, denom, out=denom)
        denom *= self.lr * c2**0.5 / c1
        for p, (start, end) in zip(self.arrays, self._bounds, strict=True):
            p -= denom[start:end].reshape(p.shape)
