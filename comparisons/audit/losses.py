"""Loss probes: Keras' probability clipping vs cross-entropy on logits, and the logits form.

Each batch row is the logits ``[gap, 0, 0]``; label 0 is a confident right answer and label 1 a
confident wrong one. Frameworks run in their default float32; the reference in float64.
"""

from __future__ import annotations

import numpy as np

import reference as ref

from .base import follows_label, import_keras, import_tf, import_torch, probe

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


def _ce_verdict(t, k, r):
    def close(a, b):
        return a is not None and b is not None and np.allclose(a, b, rtol=1e-4, atol=1e-6)

    differs = not (close(t.get("loss_wrong"), k.get("loss_wrong")) and close(t.get("loss_right"), k.get("loss_right"))
                   and close(t.get("grad_norm_wrong"), k.get("grad_norm_wrong")))
    ref_t, ref_k = close(r.get("loss_wrong"), t.get("loss_wrong")), close(r.get("loss_wrong"), k.get("loss_wrong"))
    return differs, follows_label(ref_t, ref_k)


@probe("loss-cce-probability-clipping", "categorical cross-entropy on probabilities: Keras clips at epsilon",
       "losses",
       f"Logits [gap, 0, 0] for gaps {GAPS}: PyTorch's cross_entropy on logits vs Keras' "
       "categorical_crossentropy(from_logits=False) on softmax probabilities, for the right label (0) and "
       "a wrong one (1), with the gradient norm w.r.t. the logits.",
       "Keras clips probabilities to [epsilon, 1 - epsilon] (keras.config.epsilon(), 1e-7) before the log: "
       "a confidently wrong prediction costs at most -log(1e-7) = 16.12 and, once clipped, sends no "
       "gradient at all, while PyTorch's loss keeps growing with the logit gap and keeps its gradient. A "
       "confidently right one costs at least about 1e-7 in Keras. Port a softmax + "
       "categorical_crossentropy head as logits + from_logits=True (or PyTorch's cross_entropy).",
       torch=_torch_ce, keras=lambda: {**_keras_ce(False), "epsilon": import_keras().config.epsilon()},
       reference=_reference_ce)
def _clip_verdict(t, k, r):
    return _ce_verdict(t, k, r)


@probe("loss-cce-from-logits", "categorical cross-entropy on logits in both", "losses",
       "The same logits as loss-cce-probability-clipping, with Keras' from_logits=True.",
       "On logits the two agree to float32 rounding, including the gradient of confidently wrong "
       "predictions: keep models emitting logits and put the softmax in the loss. Both reduce a batch "
       "by its mean by default (PyTorch reduction='mean', Keras 'sum_over_batch_size').",
       torch=_torch_ce, keras=lambda: _keras_ce(True), reference=_reference_ce)
def _logits_verdict(t, k, r):
    return _ce_verdict(t, k, r)
