"""Global and adaptive max-pooling probes: Keras' AdaptiveMaxPooling2D gradient, and who gets a
tied maximum's gradient in global max pooling.

Channels-first arrays ``(1, 1, H, W)`` float64; the Keras sides transpose to channels-last.
"""

from __future__ import annotations

import os

import numpy as np

import reference as ref

from .base import compare_key, exact, import_keras, import_tf, import_torch, probe
from .isolation import run_isolated, step

ADAPTIVE = {"shape": (1, 1, 7, 5), "trials": 5}


def adaptive_input() -> np.ndarray:
    """``(1, 1, 7, 5)`` float64, seeded, with one (unique) maximum."""
    return np.random.default_rng(8).standard_normal(ADAPTIVE["shape"])


def one_hot_at_max(x: np.ndarray) -> np.ndarray:
    """The gradient of ``max(x)`` for a unique maximum: 1 there, 0 elsewhere."""
    return (np.arange(x.size) == np.argmax(x)).reshape(x.shape).astype(float)


def _grad_evidence(forward: float, grads: list[np.ndarray]) -> dict:
    """Forward value and, over repeated gradient evaluations, how many were finite / exactly the one-hot."""
    x = adaptive_input()
    want = one_hot_at_max(x)
    errors = [np.abs(g - want) for g in grads]
    finite = [e[np.isfinite(e)] for e in errors]
    return {"forward": forward, "input_max": float(x.max()), "trials": len(grads),
            "trials_finite": sum(bool(np.isfinite(g).all()) for g in grads),
            "trials_equal_one_hot": sum(bool((g == want).all()) for g in grads),
            "largest_finite_error": max(float(f.max(initial=0.0)) for f in finite),
            "nonfinite_values": sum(int((~np.isfinite(g)).sum()) for g in grads)}


def clean(evidence: dict) -> bool:
    """Every gradient exactly the one-hot, the forward the maximum, and no crash."""
    return (evidence.get("trials_equal_one_hot") == evidence.get("trials")
            and evidence.get("forward") == evidence.get("input_max") and "crashed" not in evidence)


def _adaptive_keras_child():
    """Runs in a child process (see isolation.py): float64 forward and gradients, then a float32 forward
    (the one that died with SIGFPE under TensorFlow's default oneDNN kernels)."""
    keras, tf = import_keras(), import_tf()
    h = ADAPTIVE["shape"][2]
    try:  # Keras' private helper: the two window sizes it pools with along an axis
        from keras.src.backend.tensorflow.nn import compute_adaptive_pooling_window_sizes

        windows = compute_adaptive_pooling_window_sizes(h, 1)
    except ImportError:
        windows = "unavailable (keras.src moved)"
    yield step("float64 forward and gradient", window_rows_small_big=windows, input_rows=h,
               onednn_opts=os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset (on by default)"))
    x = adaptive_input().transpose(0, 2, 3, 1)
    layer = keras.layers.AdaptiveMaxPooling2D(1, dtype="float64")
    xv = tf.Variable(x)
    grads = []
    for _ in range(ADAPTIVE["trials"]):
        with tf.GradientTape() as tape:
            y = layer(xv)
            total = tf.reduce_sum(y)
        grads.append(tape.gradient(total, xv).numpy().transpose(0, 3, 1, 2))
    yield step("float32 forward", **_grad_evidence(float(y.numpy().ravel()[0]), grads))
    out32 = keras.layers.AdaptiveMaxPooling2D(1)(x.astype(np.float32))
    yield step("done", float32_forward=float(np.asarray(out32).ravel()[0]))


def _adaptive_torch():
    torch = import_torch()
    grads = []
    for _ in range(ADAPTIVE["trials"]):
        xt = torch.from_numpy(adaptive_input()).requires_grad_(True)
        y = torch.nn.AdaptiveMaxPool2d(1)(xt)
        y.sum().backward()
        grads.append(xt.grad.numpy())
    return _grad_evidence(float(y.detach().numpy().ravel()[0]), grads)


def _adaptive_reference():
    grads = []
    for _ in range(ADAPTIVE["trials"]):
        layer = ref.AdaptiveMaxPool2d(1)
        y = layer.forward(adaptive_input())
        grads.append(layer.backward(np.ones_like(y)))
    return _grad_evidence(float(y.ravel()[0]), grads)


probe("adaptive-maxpool-gradient-keras", "adaptive max pooling to 1x1: Keras' gradient", "pooling",
      f"AdaptiveMaxPooling2D(1) (Keras, float64) and nn.AdaptiveMaxPool2d(1) on a {ADAPTIVE['shape'][2:]} "
      f"map with a unique maximum, gradient of the output evaluated {ADAPTIVE['trials']} times: finite? exactly "
      "the one-hot at the maximum? Keras runs in a separate process, and also tries a float32 forward.",
      "Keras 3's TensorFlow backend pools with two windows per axis (sizes 'small' and 'small + 1'); to one "
      "output the larger one is longer than the input, its pool is empty, and the gradient of that empty "
      "pool is uninitialised memory added to the right one-hot (values like 1e+277, changing from call to "
      "call). In float32 with TensorFlow's default oneDNN kernels the forward itself killed the process "
      "(SIGFPE). Use GlobalMaxPooling2D(keepdims=True) for a 1x1 output, and check any other output size "
      "against PyTorch's AdaptiveMaxPool2d or the reference before training with it.",
      frameworks={"torch": _adaptive_torch, "keras": lambda: run_isolated(_adaptive_keras_child)},
      reference=_adaptive_reference, verdict=compare_key(clean))


# -- ties in global max pooling -----------------------------------------------------------
TIES = {"hw": 3, "tied_at": ((0, 1), (1, 2), (2, 0))}


def tie_plane() -> np.ndarray:
    """``(1, 1, 3, 3)`` float64: 2.0 at three cells (row-major flat 1, 5, 6), 0 elsewhere."""
    x = np.zeros((1, 1, TIES["hw"], TIES["hw"]))
    for i, j in TIES["tied_at"]:
        x[0, 0, i, j] = 2.0
    return x


def _torch_grad(fn) -> np.ndarray:
    xt = import_torch().from_numpy(tie_plane()).requires_grad_(True)
    fn(xt).sum().backward()
    return xt.grad.numpy()[0, 0]


def _ties_torch():
    torch = import_torch()
    return {"layer_grad": _torch_grad(torch.nn.AdaptiveMaxPool2d(1)),
            "max_pool2d_grad": _torch_grad(lambda t: torch.nn.functional.max_pool2d(t, TIES["hw"])),
            "amax_grad": _torch_grad(lambda t: t.amax(dim=(2, 3)))}


def _ties_keras():
    keras, tf = import_keras(), import_tf()
    xv = tf.Variable(tie_plane().transpose(0, 2, 3, 1))
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(keras.layers.GlobalMaxPooling2D(dtype="float64")(xv))
    with tf.GradientTape() as tape_reduce:
        total_reduce = tf.reduce_sum(tf.reduce_max(xv, axis=(1, 2)))
    return {"layer_grad": tape.gradient(total, xv).numpy()[0, :, :, 0],
            "reduce_max_grad": tape_reduce.gradient(total_reduce, xv).numpy()[0, :, :, 0]}


def _ties_reference():
    layer = ref.GlobalMaxPool2d()
    y = layer.forward(tie_plane())
    adaptive = ref.AdaptiveMaxPool2d(1)
    ya = adaptive.forward(tie_plane())
    return {"layer_grad": layer.backward(np.ones_like(y))[0, 0],
            "adaptive_max_pool_grad": adaptive.backward(np.ones_like(ya))[0, 0]}


probe("global-maxpool-ties", "global max pooling: who gets a tied maximum's gradient", "pooling",
      f"A {TIES['hw']}x{TIES['hw']} map with the maximum 2.0 at three cells {TIES['tied_at']}: the input "
      "gradient of the pooled sum. layer_grad is PyTorch's nn.AdaptiveMaxPool2d(1), Keras' GlobalMaxPooling2D "
      "and the reference's GlobalMaxPool2d; the other rows are the alternatives each framework offers.",
      "Keras' GlobalMaxPooling2D (TensorFlow's reduce_max) and PyTorch's amax/max over dims split the gradient "
      "evenly among tied maxima (1/3 each here); PyTorch's AdaptiveMaxPool2d(1) and MaxPool2d over the whole "
      "map give all of it to the first maximum in row-major order, as the reference's GlobalMaxPool2d. The "
      "forward outputs agree; gradients differ wherever a channel's maximum is tied (all-zero channels "
      "after ReLU). Port GlobalMaxPooling2D as x.amax(dim=(2, 3)) to keep Keras' gradients.",
      frameworks={"torch": _ties_torch, "keras": _ties_keras}, reference=_ties_reference,
      verdict=compare_key("layer_grad", reference_equal=exact))
