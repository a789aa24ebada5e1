"""Forward and backward of a Keras computation through the autodiff of the backend Keras runs on.

:func:`vjp` is the one entry point: ``vjp(fn, x, variables, cotangent)`` calls ``fn(x) -> (target, aux)`` with
``x`` a backend tensor (an NHWC batch ``(N, H, W, C)`` or ``(N, D)``), and returns ``target``, ``aux`` (a dict
of tensors computed on the way, e.g. the forward output when the target is a loss), the input gradient ``dx``
(shaped like ``x``) and the gradient of each of ``variables`` (shaped like the variable), all as numpy arrays:
the vector-Jacobian product of ``target`` with ``cotangent`` (shaped like ``target``; a scalar for a scalar
loss). Per backend (``keras.backend.backend()``):

- ``tensorflow``: ``tf.GradientTape`` watching ``x``, ``output_gradients=cotangent``.
- ``jax``: ``jax.vjp`` of a pure function of ``(x, variable values)``: ``fn`` runs inside a
  ``keras.StatelessScope`` mapping each variable to its traced value; the values the scope collects for the other
  variables (batch norm's moving statistics, updated in training mode) are assigned back afterwards, so the
  model's state after :func:`vjp` is what TensorFlow's eager call leaves.
- ``torch``: ``torch.autograd.grad`` of ``target`` with respect to ``x`` (a leaf requiring grad) and each
  variable's ``.value`` (the ``torch.nn.Parameter`` Keras computes with).

Every array crosses as numpy (``keras.ops.convert_to_numpy``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np

Fn = Callable[[object], tuple[object, dict[str, object]]]
Result = tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, list[np.ndarray]]


def numpy(tensor) -> np.ndarray:
    """A backend tensor (or variable) as a numpy array."""
    return np.asarray(keras.ops.convert_to_numpy(tensor))


def _numpy_all(target, aux: dict, dx, grads) -> Result:
    return numpy(target), {k: numpy(v) for k, v in aux.items()}, numpy(dx), [numpy(g) for g in grads]


def _tensorflow(fn: Fn, x: np.ndarray, variables: Sequence, cotangent: np.ndarray) -> Result:
    import tensorflow as tf

    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        target, aux = fn(xt)
    grads = tape.gradient(target, [xt, *variables], output_gradients=tf.constant(cotangent, dtype=target.dtype))
    return _numpy_all(target, aux, grads[0], grads[1:])


def _jax(fn: Fn, x: np.ndarray, variables: Sequence, cotangent: np.ndarray, state: Sequence) -> Result:
    import jax

    others = [v for v in state if all(v is not w for w in variables)]

    def pure(xj, values):
        mapping = [*zip(variables, values, strict=True), *((v, v.value) for v in others)]
        with keras.StatelessScope(state_mapping=mapping) as scope:
            target, aux = fn(xj)
        return target, (aux, [scope.get_current_value(v) for v in others])

    target, pullback, (aux, updates) = jax.vjp(pure, jax.numpy.asarray(x), [v.value for v in variables],
                                               has_aux=True)
    dx, grads = pullback(jax.numpy.asarray(cotangent, dtype=target.dtype))
    for variable, value in zip(others, updates, strict=True):
        if value is not None:
            variable.assign(value)
    return _numpy_all(target, aux, dx, grads)


def _torch(fn: Fn, x: np.ndarray, variables: Sequence, cotangent: np.ndarray) -> Result:
    import torch

    xt = keras.ops.convert_to_tensor(x).clone().requires_grad_(True)
    target, aux = fn(xt)
    values = [v.value for v in variables]
    seed = torch.as_tensor(np.asarray(cotangent), dtype=target.dtype, device=target.device)
    grads = torch.autograd.grad(target, [xt, *values], grad_outputs=seed)
    return _numpy_all(target.detach(), {k: v.detach() for k, v in aux.items()}, grads[0], grads[1:])


def vjp(fn: Fn, x: np.ndarray, variables: Sequence, cotangent, state: Sequence = ()) -> Result:
    """``(target, aux, dx, [d variable])`` of ``fn`` at ``x`` (see the module docstring); ``state``: every
    variable ``fn`` may read or update (the jax backend maps them in its stateless scope)."""
    backend = keras.backend.backend()
    cotangent = np.asarray(cotangent)
    if backend == "tensorflow":
        return _tensorflow(fn, x, variables, cotangent)
    if backend == "jax":
        return _jax(fn, x, variables, cotangent, state)
    if backend == "torch":
        return _torch(fn, x, variables, cotangent)
    raise ValueError(f"gradients.vjp: Keras backend {backend!r} is not one of tensorflow, jax, torch")
