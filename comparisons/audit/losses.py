"""Loss probes: Keras' probability clipping vs cross-entropy on logits, and the logits form; label smoothing;
binary cross-entropy at probabilities exactly 0 and 1 (optax, the ``jax`` side, on their infinite logits).

Each batch row is the logits ``[gap, 0, 0]``; label 0 is a confident right answer and label 1 a
confident wrong one. Frameworks run in their default float32 (the binary cross-entropy probe in float64); the
reference in float64.
"""

from __future__ import annotations

import numpy as np

import reference as ref

from .base import compare_key, import_keras, import_optax, import_tf, import_torch, probe

GAPS = (5.0, 10.0, 20.0, 40.0)
K = 3


def logits() -> np.ndarray:
    """``(len(GAPS), K)`` float32: row ``i`` is ``[GAPS[i], 0, 0]``."""
    z = np.zeros((len(GAPS), K), np.float32)
    z[:, 0] = GAPS
    return z


def _torch_ce():
    torch = import_torch()
    out = {}
    for name, label in (("right", 0), ("wrong", 1)):
        z = torch.from_numpy(logits()).requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(z, torch.full((len(GAPS),), label), reduction="none")
        loss.sum().backward()
        out[f"loss_{name}"] = loss.detach().numpy()
        out[f"grad_norm_{name}"] = np.linalg.norm(z.grad.numpy(), axis=1)
    return {"gaps": GAPS, **out}


def _keras_ce(from_logits: bool):
    keras, tf = import_keras(), import_tf()
    out = {}
    for name, label in (("right", 0), ("wrong", 1)):
        z = tf.Variable(logits())
        with tf.GradientTape() as tape:
            target = tf.one_hot(tf.fill((len(GAPS),), label), K)
            pred = z if from_logits else tf.nn.softmax(z)
            loss = keras.losses.categorical_crossentropy(target, pred, from_logits=from_logits)
        out[f"loss_{name}"] = loss.numpy()
        out[f"grad_norm_{name}"] = np.linalg.norm(tape.gradient(loss, z).numpy(), axis=1)
    return {"gaps": GAPS, **out}


def _reference_ce():
    out = {}
    for name, label in (("right", 0), ("wrong", 1)):
        rows = [ref.softmax_cross_entropy(row[None].astype(np.float64), np.array([label])) for row in logits()]
        out[f"loss_{name}"] = [loss for loss, _ in rows]
        out[f"grad_norm_{name}"] = [float(np.linalg.norm(d)) for _, d in rows]
    return {"gaps": GAPS, **out}


def _ce_close(a, b) -> bool:
    # float32 losses: 1e-4 is ~1000 ulps, while clipped and unclipped losses differ by over 20%
    return np.allclose(a, b, rtol=1e-4, atol=1e-6)


# frameworks agree on both losses and the wrong label's gradient; the reference is matched on the wrong label's loss
_ce_verdict = compare_key("loss_wrong", "loss_right", "grad_norm_wrong", equal=_ce_close,
                          reference_keys=("loss_wrong",), reference_equal=_ce_close)


probe("loss-cce-probability-clipping", "categorical cross-entropy on probabilities: Keras clips at epsilon",
      "losses",
      f"Logits [gap, 0, 0] for gaps {GAPS}: PyTorch's cross_entropy on logits vs Keras' "
      "categorical_crossentropy(from_logits=False) on softmax probabilities, for the right label (0) and "
      "a wrong one (1), with the gradient norm w.r.t. the logits.",
      "Keras clips probabilities to [epsilon, 1 - epsilon] (keras.config.epsilon(), 1e-7) before the log: "
      "a confidently wrong prediction costs at most -log(1e-7) = 16.12 and, once clipped, sends no "
      "gradient at all, while PyTorch's loss keeps growing with the logit gap and keeps its gradient. A "
      "confidently right one costs at least about 1e-7 in Keras. Port a softmax + "
      "categorical_crossentropy head as logits + from_logits=True (or PyTorch's cross_entropy).",
      frameworks={"torch": _torch_ce,
                  "keras": lambda: {**_keras_ce(False), "epsilon": import_keras().config.epsilon()}},
      reference=_reference_ce, verdict=_ce_verdict)


probe("loss-cce-from-logits", "categorical cross-entropy on logits in both", "losses",
      "The same logits as loss-cce-probability-clipping, with Keras' from_logits=True.",
      "On logits the two agree to float32 rounding, including the gradient of confidently wrong "
      "predictions: keep models emitting logits and put the softmax in the loss. Both reduce a batch "
      "by its mean by default (PyTorch reduction='mean', Keras 'sum_over_batch_size').",
      frameworks={"torch": _torch_ce, "keras": lambda: _keras_ce(True)}, reference=_reference_ce,
      verdict=_ce_verdict)


# -- label smoothing ----------------------------------------------------------------
SMOOTH = {"n": 4, "classes": 5, "label_smoothing": (0.0, 0.1, 0.3)}


def smoothing_batch() -> tuple[np.ndarray, np.ndarray]:
    """``scores (4, 5)`` float64 logits and ``labels (4,)`` int64, seeded."""
    rng = np.random.default_rng(9)
    return 2.0 * rng.standard_normal((SMOOTH["n"], SMOOTH["classes"])), rng.integers(0, SMOOTH["classes"], SMOOTH["n"])


def _smooth_close(a: dict, b: dict) -> bool:
    """The loss and gradient norm of one smoothing value, to float64 rounding."""
    return np.allclose(list(a.values()), list(b.values()), rtol=1e-10)


def _smooth_torch():
    torch = import_torch()
    z, y = smoothing_batch()
    out = {}
    for ls in SMOOTH["label_smoothing"]:
        zt = torch.from_numpy(z).requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(zt, torch.from_numpy(y), label_smoothing=ls)
        loss.backward()
        out[f"ls={ls}"] = {"loss": loss.item(), "grad_norm": float(np.linalg.norm(zt.grad.numpy()))}
    return out


def _smooth_keras():
    import inspect

    keras, tf = import_keras(), import_tf()
    z, y = smoothing_batch()
    out = {}
    for ls in SMOOTH["label_smoothing"]:
        zv = tf.Variable(z)
        with tf.GradientTape() as tape:
            loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=ls, dtype="float64")(
                np.eye(SMOOTH["classes"])[y], zv)
        out[f"ls={ls}"] = {"loss": float(loss), "grad_norm": float(np.linalg.norm(tape.gradient(loss, zv).numpy()))}
    params = inspect.signature(keras.losses.SparseCategoricalCrossentropy).parameters
    return {**out, "sparse_has_label_smoothing": "label_smoothing" in params}


def _smooth_reference():
    z, y = smoothing_batch()
    out = {}
    for ls in SMOOTH["label_smoothing"]:
        loss, d = ref.softmax_cross_entropy(z, y, label_smoothing=ls)
        out[f"ls={ls}"] = {"loss": loss, "grad_norm": float(np.linalg.norm(d))}
    return out


probe("cross-entropy-label-smoothing", "cross-entropy with label smoothing", "losses",
      f"Float64 logits ({SMOOTH['n']}, {SMOOTH['classes']}) and integer labels: PyTorch's cross_entropy("
      "label_smoothing=ls) vs Keras' CategoricalCrossentropy(from_logits=True, label_smoothing=ls) on the "
      f"one-hot labels, for ls in {SMOOTH['label_smoothing']}: the mean loss and the gradient norm w.r.t. the "
      "logits; and whether SparseCategoricalCrossentropy takes label_smoothing at all.",
      "Both smooth the target to y*(1 - ls) + ls/C (C classes) and agree to float64 rounding. Keras' "
      "SparseCategoricalCrossentropy has no label_smoothing argument: a PyTorch model trained with "
      "cross_entropy(..., label_smoothing=ls) on integer labels ports to one-hot labels and "
      "CategoricalCrossentropy(label_smoothing=ls).",
      frameworks={"torch": _smooth_torch, "keras": _smooth_keras}, reference=_smooth_reference,
      verdict=compare_key(*(f"ls={ls}" for ls in SMOOTH["label_smoothing"]), equal=_smooth_close,
                          reference_equal=_smooth_close))


# -- binary cross-entropy at probabilities 0 and 1 ------------------------------------------
# (probability, target): each probability exactly 0 and 1 against each target; optax's loss takes logits, and
# the logits of probabilities 0 and 1 are -inf and +inf
BCE_EDGES = ((0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0))


def _edge_names() -> list[str]:
    return [f"p={p:g},t={t:g}" for p, t in BCE_EDGES]


def number(x: float) -> float | str:
    """``x`` as a float, or ``"nan"``, ``"inf"``, ``"-inf"`` (evidence stays plain JSON)."""
    x = float(x)
    return x if np.isfinite(x) else str(x)


def _per_edge(values) -> dict[str, float | str]:
    return {name: number(v) for name, v in zip(_edge_names(), values, strict=True)}


def _edge_arrays() -> tuple[np.ndarray, np.ndarray]:
    """``(probs, targets)``: float64 ``(4,)`` arrays, one element per BCE_EDGES case."""
    return np.array([p for p, _ in BCE_EDGES]), np.array([t for _, t in BCE_EDGES])


def _bce_torch():
    torch = import_torch()
    p, t = (torch.from_numpy(a) for a in _edge_arrays())
    p.requires_grad_(True)
    loss = torch.nn.functional.binary_cross_entropy(p, t, reduction="none")
    loss.sum().backward()
    return {"input": "probabilities", "loss": _per_edge(loss.detach().numpy()), "dloss_dp": _per_edge(p.grad.numpy())}


def _bce_keras():
    keras, tf = import_keras(), import_tf()
    p, t = _edge_arrays()
    pv = tf.Variable(p[:, None])
    with tf.GradientTape() as tape:
        loss = keras.losses.binary_crossentropy(t[:, None], pv)  # the mean over the last axis, of size 1
    return {"input": "probabilities", "epsilon": keras.config.epsilon(), "loss": _per_edge(loss.numpy()),
            "dloss_dp": _per_edge(tape.gradient(loss, pv).numpy()[:, 0])}


def _bce_optax():
    jnp, optax = import_optax()
    import jax

    p, t = _edge_arrays()
    with np.errstate(divide="ignore"):
        x = jnp.asarray(np.log(p) - np.log1p(-p))  # the logits of 0 and 1: -inf and +inf

    def loss(z):
        return optax.losses.sigmoid_binary_cross_entropy(z, jnp.asarray(t))

    return {"input": "logits", "logits": _per_edge(x), "loss": _per_edge(loss(x)),
            "dloss_dlogit": _per_edge(jax.grad(lambda z: loss(z).sum())(x))}


def _bce_reference():
    p, t = _edge_arrays()
    loss, d = ref.binary_cross_entropy(p, t, reduction="none")
    loss_k, d_k = ref.binary_cross_entropy(p, t, reduction="none", clip_epsilon=1e-7)
    return {"input": "probabilities", "loss": _per_edge(loss), "dloss_dp": _per_edge(d),
            "clip_epsilon=1e-7": {"loss": _per_edge(loss_k), "dloss_dp": _per_edge(d_k)}}


def _edges_close(a: dict, b: dict) -> bool:
    """Per case: the same non-finite name, or floats to 1e-12 relative (the clamped and clipped losses are
    100 vs 16.1, the gradients 1e12 vs 0)."""
    def same(x, y):
        if isinstance(x, str) or isinstance(y, str):
            return x == y
        return bool(np.isclose(x, y, rtol=1e-12, atol=0.0))

    return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)


probe("loss-bce-probability-edges", "binary cross-entropy at probabilities 0 and 1", "losses",
      f"Binary cross-entropy per element (float64) at probabilities exactly 0 and 1 with targets 0 and 1 "
      f"({', '.join(_edge_names())}): PyTorch's binary_cross_entropy and Keras' binary_crossentropy (what "
      "BinaryCrossentropy() averages) on the probabilities, with the gradient w.r.t. each probability; "
      "optax.losses.sigmoid_binary_cross_entropy (logits only) on their logits, -inf and +inf, with the "
      "gradient w.r.t. each logit.",
      "PyTorch clamps each log at -100: a certain wrong prediction costs exactly 100, a certain right one 0, "
      "and the gradient (p - t) / max(p(1 - p), 1e-12) is +-1e12 when wrong. Keras clips p to [1e-7, 1 - 1e-7] "
      "(keras.config.epsilon()): wrong costs -log(1e-7) = 16.12, right about 1e-7, and no gradient at all "
      "flows at 0 or 1, so a saturated sigmoid output never recovers. optax has only the logits form; at "
      "infinite logits a right prediction gives nan (0 * inf) and a wrong one inf, while the gradient "
      "sigmoid(x) - t stays finite. Losses of saturated models (and their mean) are therefore not comparable "
      "across frameworks; port with logits (BCE-with-logits, from_logits=True) and finite ones. The "
      "reference follows PyTorch; its binary_cross_entropy(clip_epsilon=1e-7) is Keras' form.",
      frameworks={"torch": _bce_torch, "keras": _bce_keras, "jax": _bce_optax}, reference=_bce_reference,
      verdict=compare_key("loss", equal=_edges_close, reference_keys=("loss", "dloss_dp"),
                          reference_equal=_edges_close))
