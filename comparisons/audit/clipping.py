"""Gradient-clipping probes: what a norm clip spans (each variable or all of them), the epsilon PyTorch adds to
the norm, and clipping by value; PyTorch (``torch.nn.utils``), Keras (the optimizers' ``clipnorm``,
``global_clipnorm``, ``clipvalue``) and optax (the ``jax`` side).

Two float64 gradient arrays, ``a`` (2,) and ``b`` (2,). Keras clips inside ``optimizer.apply``: its side reads
the clipped gradients off one step of ``SGD(learning_rate=1.0)`` from zero (float32 holds 1.0 exactly, so the
step is minus the clipped gradient). The reference side uses ``reference.clipping``.
"""

from __future__ import annotations

import numpy as np

from reference import clip_grad_norm, clip_grad_value

from .base import compare_key, import_keras, import_optax, import_torch, probe

# norms 5 and 12, global norm 13: the global clip at 6.5 halves both arrays, the per-variable one leaves a alone
GRADS = {"a": (3.0, 4.0), "b": (0.0, 12.0)}
MAX_NORM = 6.5


def grads(scale: float = 1.0) -> dict[str, np.ndarray]:
    """The probes' gradients, times ``scale``, as float64 arrays."""
    return {key: scale * np.array(g, np.float64) for key, g in GRADS.items()}


def total_norm(g: dict[str, np.ndarray]) -> float:
    return float(np.sqrt(sum(float(np.sum(a * a)) for a in g.values())))


def torch_clipped(g: dict[str, np.ndarray], how: str, limit: float) -> dict[str, np.ndarray]:
    """``g`` after ``torch.nn.utils.clip_grad_norm_`` (``how="norm"``) or ``clip_grad_value_`` (``"value"``)."""
    torch = import_torch()
    params = [torch.nn.Parameter(torch.zeros(len(a), dtype=torch.float64)) for a in g.values()]
    for p, a in zip(params, g.values(), strict=True):
        p.grad = torch.tensor(a, dtype=torch.float64)
    clip = torch.nn.utils.clip_grad_norm_ if how == "norm" else torch.nn.utils.clip_grad_value_
    clip(params, limit)
    return {key: p.grad.numpy().copy() for key, p in zip(g, params, strict=True)}


def keras_clipped(g: dict[str, np.ndarray], **clip) -> dict[str, np.ndarray]:
    """``g`` as Keras' optimizer clips it with ``clip`` (``clipnorm=``, ``global_clipnorm=`` or ``clipvalue=``):
    minus one step of ``SGD(learning_rate=1.0, **clip)`` from zero."""
    keras = import_keras()
    variables = [keras.Variable(np.zeros(len(a)), dtype="float64") for a in g.values()]
    keras.optimizers.SGD(1.0, **clip).apply([np.array(a) for a in g.values()], variables)
    return {key: 0.0 - np.array(v.numpy()) for key, v in zip(g, variables, strict=True)}  # 0.0 - : no -0.0


def optax_clipped(g: dict[str, np.ndarray], transform: str, limit: float) -> dict[str, np.ndarray]:
    """``g`` after the optax transformation ``optax.<transform>(limit)`` (``clip_by_global_norm``, ``clip``)."""
    jnp, optax = import_optax()
    tx = getattr(optax, transform)(limit)
    tree = {key: jnp.asarray(a) for key, a in g.items()}
    updates, _ = tx.update(tree, tx.init(tree))
    return {key: np.asarray(updates[key]) for key in g}


def reference_clipped(g: dict[str, np.ndarray], how: str, limit: float, **switches) -> dict[str, np.ndarray]:
    """``g`` after ``reference.clip_grad_norm`` (``how="norm"``, with its keyword ``switches``) or
    ``clip_grad_value``."""
    g = {key: a.copy() for key, a in g.items()}
    if how == "norm":
        clip_grad_norm(g, limit, **switches)
    else:
        clip_grad_value(g, limit)
    return g


def _norms(clipped: dict[str, np.ndarray]) -> dict[str, float]:
    return {key: float(np.linalg.norm(a)) for key, a in clipped.items()}


# -- clipnorm: per variable or global ------------------------------------------------
def _scope_evidence(api: str, clipped: dict[str, np.ndarray]) -> dict:
    return {"api": api, "clipped": clipped, "norms_after": _norms(clipped),
            "total_norm_after": total_norm(clipped)}


def _scope_torch():
    return _scope_evidence(f"clip_grad_norm_(params, {MAX_NORM})", torch_clipped(grads(), "norm", MAX_NORM))


def _scope_keras():
    return {**_scope_evidence(f"clipnorm={MAX_NORM}", keras_clipped(grads(), clipnorm=MAX_NORM)),
            "global_clipnorm": keras_clipped(grads(), global_clipnorm=MAX_NORM)}


def _scope_optax():
    return _scope_evidence(f"clip_by_global_norm({MAX_NORM})", optax_clipped(grads(), "clip_by_global_norm", MAX_NORM))


def _scope_reference():
    return {**_scope_evidence(f"clip_grad_norm(grads, {MAX_NORM})", reference_clipped(grads(), "norm", MAX_NORM)),
            "per_array": reference_clipped(grads(), "norm", MAX_NORM, per_array=True, norm_eps=0.0)}


def _clipped_close(a: dict, b: dict) -> bool:
    # the scopes give arrays 2x apart (a kept whole or halved); 1e-6 absorbs PyTorch's norm epsilon (7.7e-8
    # relative here), which clip-norm-epsilon compares on its own
    return a.keys() == b.keys() and all(np.allclose(a[k], b[k], rtol=1e-6, atol=0.0) for k in a)


probe("clip-norm-scope", "clipnorm: each variable's norm or the global norm", "optimizers",
      f"Gradients a={GRADS['a']} (norm 5) and b={GRADS['b']} (norm 12), global norm 13, clipped at {MAX_NORM} "
      "by the norm clip each framework documents first: PyTorch's clip_grad_norm_, Keras' optimizer "
      "clipnorm= (and, for comparison, global_clipnorm=), optax.clip_by_global_norm: the clipped arrays and "
      "their norms.",
      "PyTorch's clip_grad_norm_(params, max_norm) and optax.clip_by_global_norm scale every gradient by one "
      "factor from the global norm (here both arrays halve). Keras' clipnorm clips each variable by its own "
      "norm: a (norm 5) is left alone, b is cut to norm 6.5, so the clipped gradient points elsewhere and "
      "its total norm can reach max_norm * sqrt(number of variables). Port PyTorch's clip_grad_norm_ to "
      "Keras as global_clipnorm= (not clipnorm=); the reference's clip_grad_norm(per_array=True) is Keras' "
      "clipnorm.",
      frameworks={"torch": _scope_torch, "keras": _scope_keras, "jax": _scope_optax}, reference=_scope_reference,
      verdict=compare_key("clipped", equal=_clipped_close, reference_equal=_clipped_close))


# -- the epsilon in the clip factor ------------------------------------------------------
# (gradient scale, max_norm): the global norm above max_norm, small gradients (the epsilon is a visible share
# of their norm), and the global norm exactly at max_norm (no clip is due)
EPS_CASES = {"norm 13 > max_norm 6.5": (1.0, 6.5), "norm 1.3e-05 > max_norm 6.5e-06": (1e-6, 6.5e-6),
             "norm 13 = max_norm 13": (1.0, 13.0)}


def _factors(clip) -> dict:
    """For each case the factor the clip applied (norm after / norm before) and, from the first case, the
    epsilon it implies in ``max_norm / (norm + eps)``."""
    factors = {}
    for name, (scale, limit) in EPS_CASES.items():
        g = grads(scale)
        factors[name] = total_norm(clip(g, limit)) / total_norm(g)
    scale, limit = EPS_CASES["norm 13 > max_norm 6.5"]
    return {"factor": factors, "eps_read": limit / factors["norm 13 > max_norm 6.5"] - total_norm(grads(scale))}


def _eps_torch():
    return {"api": "clip_grad_norm_", **_factors(lambda g, m: torch_clipped(g, "norm", m))}


def _eps_keras():
    return {"api": "global_clipnorm=", **_factors(lambda g, m: keras_clipped(g, global_clipnorm=m))}


def _eps_optax():
    return {"api": "clip_by_global_norm", **_factors(lambda g, m: optax_clipped(g, "clip_by_global_norm", m))}


def _eps_reference():
    return {"api": "clip_grad_norm", **_factors(lambda g, m: reference_clipped(g, "norm", m)),
            "factor_norm_eps_0": _factors(lambda g, m: reference_clipped(g, "norm", m, norm_eps=0.0))["factor"]}


def _factors_close(a: dict, b: dict) -> bool:
    # float64 ratios of norms: ~1e-15; the epsilon moves the first case's factor by 7.7e-8 relative
    return a.keys() == b.keys() and np.allclose(list(a.values()), list(b.values()), rtol=1e-12, atol=0.0)


probe("clip-norm-epsilon", "global norm clipping: the epsilon PyTorch adds to the norm", "optimizers",
      f"The global norm clip of the clip-norm-scope gradients, scaled, in three cases {list(EPS_CASES)}: the "
      "factor applied (norm after / norm before) and the epsilon the first case implies in "
      "max_norm / (norm + eps); PyTorch's clip_grad_norm_, Keras' global_clipnorm=, optax.clip_by_global_norm.",
      "PyTorch multiplies by max_norm / (total_norm + 1e-6) (clamped to 1): the clipped norm is always a little "
      "under max_norm, gradients whose norm equals max_norm are still scaled (by 1 - 1e-6/norm), and with "
      "small gradients and a small max_norm the 1e-6 is a real share (norm 1.3e-5 clipped at 6.5e-6 gives "
      "0.464 instead of 0.5). Keras and optax divide by the norm itself. Only the small-norm regime matters in "
      "practice; the reference's clip_grad_norm(norm_eps=0) is the Keras/optax form.",
      frameworks={"torch": _eps_torch, "keras": _eps_keras, "jax": _eps_optax}, reference=_eps_reference,
      verdict=compare_key("factor", equal=_factors_close, reference_equal=_factors_close))


# -- clipping by value ----------------------------------------------------------------------
VALUE = {"grads": {"a": (-3.0, -0.5, 0.0, 0.5, 3.0), "b": (1.0, -1.5)}, "clip": 1.0}


def _value_grads() -> dict[str, np.ndarray]:
    return {key: np.array(g, np.float64) for key, g in VALUE["grads"].items()}


def _value_close(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)  # a clamp is exact


probe("clip-value", "clipping by value", "optimizers",
      f"Gradients {VALUE['grads']} clipped to [-{VALUE['clip']}, {VALUE['clip']}]: PyTorch's clip_grad_value_, "
      "Keras' optimizer clipvalue=, optax.clip.",
      "All three clamp every element to [-v, v], exactly. In Keras clipvalue, clipnorm and global_clipnorm "
      "are exclusive (one per optimizer); in PyTorch and optax the clips compose (call both, or chain them).",
      frameworks={"torch": lambda: {"clipped": torch_clipped(_value_grads(), "value", VALUE["clip"])},
                  "keras": lambda: {"clipped": keras_clipped(_value_grads(), clipvalue=VALUE["clip"])},
                  "jax": lambda: {"clipped": optax_clipped(_value_grads(), "clip", VALUE["clip"])}},
      reference=lambda: {"clipped": reference_clipped(_value_grads(), "value", VALUE["clip"])},
      verdict=compare_key("clipped", equal=_value_close, reference_equal=_value_close))
