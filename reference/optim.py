"""Optimizers on a ``params`` mapping, updated in place from a ``grads`` mapping with the same keys.

``params`` is e.g. ``Sequential.params`` (``{"0.weight": array, ...}``); ``step(grads)``
reads ``grads[key]`` for every key and changes each ``params[key]`` array in place, so
layers holding those arrays see the new values (the arrays are looked up once, at
construction, as ``torch.optim`` holds its tensors). State (momentum, moments) is kept per
key in the parameters' dtype. Formulas are PyTorch's (``torch.optim.SGD``/``Adam``);
``Adam(eps_hat=True)`` is Keras'/TensorFlow's variant (see :class:`Adam`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .validation import check_array_mapping, check_bool, check_gradients, check_real, check_real_pair


class Optimizer:
    """Shared bookkeeping: the parameter keys, and the check of each step's gradients.

    Copies (``copy.deepcopy``) and pickles continue exactly as the original would: each optimizer's
    state is plain arrays, and the ones that are views of a flat buffer (:class:`Adam`'s moments) are
    rebuilt on the copied buffer (:meth:`__setstate__`). Copied together with the model
    (``copy.deepcopy((model, opt))``) the copy updates the copied model's arrays.
    """

    def __init__(self, params: Mapping[str, np.ndarray], lr: float) -> None:
        where = type(self).__name__
        check_array_mapping(params, where, "params")
        self.params = params
        self.keys = list(params)
        # The arrays themselves, looked up once (as torch.optim holds its tensors): replacing an
        # entry of ``params`` later is not seen, updating an array in place is.
        self.arrays = [params[key] for key in self.keys]
        self.lr = check_real(lr, where, "lr", minimum=0, min_inclusive=False)
        self.iterations = 0

    def _gradients(self, grads: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """``grads[key]`` for every key, in order; raises naming the key if one is missing or is not a float
        array of its parameter's shape (:func:`reference.validation.check_gradients`)."""
        return check_gradients(grads, dict(zip(self.keys, self.arrays, strict=True)), f"{type(self).__name__}.step")

    def _pairs(self, grads: Mapping[str, np.ndarray]):
        """``(key, param, grad)`` for every key, the gradients checked first."""
        return zip(self.keys, self.arrays, self._gradients(grads), strict=True)

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
        self.momentum = check_real(momentum, "SGD", "momentum", minimum=0)
        self.nesterov = check_bool(nesterov, "SGD", "nesterov")
        self.weight_decay = check_real(weight_decay, "SGD", "weight_decay", minimum=0)
        if self.nesterov and self.momentum == 0:
            raise ValueError("SGD: nesterov=True needs momentum > 0, got momentum=0")
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
        self.beta1, self.beta2 = check_real_pair(betas, "Adam", "betas", minimum=0, maximum=1, max_inclusive=False)
        self.eps = check_real(eps, "Adam", "eps", minimum=0)
        self.eps_hat = check_bool(eps_hat, "Adam", "eps_hat")
        # One flat buffer per moment (a batch-1 step is bound by numpy call overhead, not by
        # arithmetic): each step is a dozen whole-buffer operations, not a dozen per parameter.
        ends = np.cumsum([a.size for a in self.arrays])
        self._bounds = list(zip((ends - [a.size for a in self.arrays]).tolist(), ends.tolist(), strict=True))
        self._m = np.zeros(int(ends[-1]), np.result_type(*self.arrays))
        self._v = np.zeros_like(self._m)
        self._views()

    def _views(self) -> None:
        """``m``/``v``: per-key views of the flat moments ``_m``/``_v``; ``_grad``: the step's scratch buffer."""
        self._grad = np.empty_like(self._m)
        shaped = list(zip(self.keys, self.arrays, self._bounds, strict=True))
        self.m = {k: self._m[s:e].reshape(a.shape) for k, a, (s, e) in shaped}
        self.v = {k: self._v[s:e].reshape(a.shape) for k, a, (s, e) in shaped}

    def __getstate__(self) -> dict:
        """The state without the views (a copied view is an array of its own): :meth:`__setstate__` rebuilds
        them on the copied flat buffers."""
        state = self.__dict__.copy()
        for name in ("m", "v", "_grad"):
            del state[name]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._views()

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        """One update of every parameter, in place.

        Both variants are computed as ``p -= lr*sqrt(c2)/c1 * m / (sqrt(v) + eps')`` with
        ``eps' = eps*sqrt(c2)`` for PyTorch's form (algebraically equal, differs by rounding).
        """
        g, m, v = self._grad, self._m, self._v
        np.concatenate([grad.reshape(-1) for grad in self._gradients(grads)], out=g)
        self.iterations += 1
        t, b1, b2 = self.iterations, self.beta1, self.beta2
        c1, c2 = 1.0 - b1**t, 1.0 - b2**t
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
