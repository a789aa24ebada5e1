"""Pooling probes: max-pool tie gradients, padding in max and average pooling, pooled output sizes,
a dilated window lying in the padding.

Channels-first arrays ``(N, C, H, W)`` everywhere; the Keras sides transpose to channels-last
and back.
"""

from __future__ import annotations

import numpy as np

import reference as ref

from .base import MISSING, compare_key, exact, import_keras, import_tf, import_torch, probe
from .isolation import run_isolated, step


def tie_input() -> np.ndarray:
    """``(1, 1, 4, 4)``: four 2x2 windows with ties: all equal; anti-diagonal; diagonal; bottom row."""
    windows = [[[1, 1], [1, 1]], [[0, 1], [1, 0]], [[1, 0], [0, 1]], [[0, 0], [1, 1]]]
    x = np.zeros((4, 4), np.float32)
    for n, win in enumerate(windows):
        r, c = divmod(n, 2)
        x[2 * r: 2 * r + 2, 2 * c: 2 * c + 2] = win
    return x.reshape(1, 1, 4, 4)


def grad_winners(grad: np.ndarray, k: int = 2) -> list[list[int]]:
    """For each non-overlapping ``k x k`` window of ``grad (H, W)`` (row-major), the row-major
    offsets inside the window that received gradient."""
    h, w = grad.shape
    return [np.flatnonzero(grad[i: i + k, j: j + k].reshape(-1)).tolist()
            for i in range(0, h, k) for j in range(0, w, k)]


def _torch_pool_grad(x: np.ndarray, k: int, s: int) -> np.ndarray:
    torch = import_torch()
    xt = torch.from_numpy(x).requires_grad_(True)
    torch.nn.functional.max_pool2d(xt, k, s).sum().backward()
    return xt.grad.numpy()


def _keras_pool_grad(x: np.ndarray, k: int, s: int) -> np.ndarray:
    keras, tf = import_keras(), import_tf()
    xv = tf.Variable(x.transpose(0, 2, 3, 1))
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(keras.layers.MaxPooling2D(k, s)(xv))
    return tape.gradient(y, xv).numpy().transpose(0, 3, 1, 2)


def _ref_pool_grad(x: np.ndarray, k: int, s: int, impl: str) -> np.ndarray:
    layer = ref.MaxPool2d(k, stride=s, impl=impl)
    out = layer.forward(x)
    return layer.backward(np.ones_like(out))


OVERLAP = {"hw": 4, "k": 2, "s": 1}


def _tie_evidence(grad_fn) -> dict:
    overlap = grad_fn(np.ones((1, 1, OVERLAP["hw"], OVERLAP["hw"]), np.float32), OVERLAP["k"], OVERLAP["s"])
    return {"winners": grad_winners(grad_fn(tie_input(), 2, 2)[0, 0]), "overlap_grad_counts": overlap[0, 0]}


def _tie_reference() -> dict:
    """The loop kernel's evidence, plus the im2col kernel's under ``im2col_`` keys."""
    loop, im2col = (_tie_evidence(lambda x, k, s, impl=impl: _ref_pool_grad(x, k, s, impl))
                    for impl in ("loop", "im2col"))
    return {**loop, **{f"im2col_{key}": value for key, value in im2col.items()}}


probe("maxpool-tie-gradient", "max pooling: which tied input gets the gradient", "pooling",
      "Four 2x2 windows with tied maxima (all four equal; anti-diagonal; diagonal; bottom row): which "
      "in-window offsets (row-major 0..3) receive the gradient? And with a constant 4x4 input under "
      "overlapping 2x2 windows of stride 1, how much gradient does each input collect?",
      "Ties are common after ReLU (many exact zeros) and in padded or quantised inputs. A framework that "
      "picked another tied input, or split the gradient, would give different weight gradients from "
      "identical forward outputs. Compare max-pool gradients on inputs with ties before blaming the "
      "arithmetic.",
      frameworks={"torch": lambda: _tie_evidence(_torch_pool_grad), "keras": lambda: _tie_evidence(_keras_pool_grad)},
      reference=_tie_reference, verdict=compare_key("winners", "overlap_grad_counts", reference_keys=("winners",)))


# -- padding never wins the max ------------------------------------------------
def _negative_input() -> np.ndarray:
    return -1.0 - np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)


def _maxpad_torch():
    torch = import_torch()
    out = torch.nn.functional.max_pool2d(torch.from_numpy(_negative_input()), 3, 1, padding=1).numpy()
    return {"out_max": float(out.max()), "input_max": float(_negative_input().max()), "out_shape": out.shape}


def _maxpad_keras():
    keras = import_keras()
    out = np.asarray(keras.layers.MaxPooling2D(3, 1, padding="same")(_negative_input().transpose(0, 2, 3, 1)))
    return {"out_max": float(out.max()), "input_max": float(_negative_input().max()),
            "out_shape": out.transpose(0, 3, 1, 2).shape}


def _maxpad_reference():
    out = ref.MaxPool2d(3, stride=1, padding=1).forward(_negative_input())
    return {"out_max": float(out.max()), "input_max": float(_negative_input().max()), "out_shape": out.shape}


probe("maxpool-padding", "max pooling with padding on an all-negative input", "pooling",
      "3x3 max pooling, stride 1, padding 1 (Keras 'same') over values -1..-16: does a padded border "
      "value ever win (the output would contain 0)?",
      "Both pad max pooling with -inf, so the output maximum equals the input maximum. A hand-written "
      "port that pads with zeros (np.pad, F.pad, tf.pad defaults) would make 0 win every border window "
      "of a negative feature map.",
      frameworks={"torch": _maxpad_torch, "keras": _maxpad_keras}, reference=_maxpad_reference,
      verdict=compare_key("out_max"))


# -- average pooling's divisor with padding ------------------------------------
AVG = {"hw": 4, "k": 3}


def _divisors(out: np.ndarray) -> dict:
    """Ones in, ``k x k`` windows with padding 1: window sum / output = divisor at corner/edge/centre."""
    k = AVG["k"]
    ones = np.pad(np.ones((AVG["hw"], AVG["hw"])), 1)
    sums = np.lib.stride_tricks.sliding_window_view(ones, (k, k)).sum(axis=(-2, -1))
    div = sums / out
    # rounded: the float32 outputs make 9 come back as 8.9999999
    spots = {"corner": (0, 0), "edge": (0, 1), "centre": (1, 1)}
    return {name: round(float(div[ij]), 4) for name, ij in spots.items()}


def _avg_torch():
    torch = import_torch()
    x = torch.ones((1, 1, AVG["hw"], AVG["hw"]))
    return {f"count_include_pad={flag}": _divisors(
        torch.nn.functional.avg_pool2d(x, AVG["k"], 1, padding=1, count_include_pad=flag)[0, 0].numpy())
        for flag in (True, False)}


def _avg_keras():
    keras = import_keras()
    out = np.asarray(keras.layers.AveragePooling2D(AVG["k"], 1, padding="same")(np.ones((1, AVG["hw"], AVG["hw"], 1),
                                                                                         np.float32)))
    return {"same": _divisors(out[0, :, :, 0])}


def _avg_reference():
    out = ref.AvgPool2d(AVG["k"], stride=1, padding=1).forward(np.ones((1, 1, AVG["hw"], AVG["hw"])))
    return {"padding=1": _divisors(out[0, 0])}


def default_divisors(evidence: dict):
    """The divisors of the side's default padded average pooling: ``count_include_pad=True`` (PyTorch's
    default flag), ``same`` (padding by name), ``padding=1`` (the reference's only padded pooling)."""
    for key in ("count_include_pad=True", "same", "padding=1"):
        if key in evidence:
            return evidence[key]
    return MISSING


probe("avgpool-padding-divisor", "average pooling: what the padded window is divided by", "pooling",
      f"{AVG['k']}x{AVG['k']} average pooling, stride 1, padding 1 / 'same', over ones: the divisor "
      "(window sum / output) at a corner, an edge and the centre.",
      "PyTorch's default (count_include_pad=True) divides every window by k*k, padded zeros included, so "
      "borders come out darker; Keras 'same' divides by the number of real inputs in the window, which "
      "is PyTorch's count_include_pad=False. The reference follows PyTorch's default.",
      frameworks={"torch": _avg_torch, "keras": _avg_keras}, reference=_avg_reference,
      verdict=compare_key(default_divisors, reference_equal=exact))


# -- pooled output size: floor vs ceil -----------------------------------------
POOL_SIZES = (4, 5, 6, 7)


def _psize_torch():
    torch = import_torch()
    out = {}
    for ceil in (False, True):
        out[f"ceil_mode={ceil}"] = [torch.nn.functional.max_pool2d(torch.ones(1, 1, n, n), 2, ceil_mode=ceil).shape[2]
                                    for n in POOL_SIZES]
    return {"sizes": POOL_SIZES, **out}


def _psize_keras():
    keras = import_keras()
    out = {}
    for pad in ("valid", "same"):
        out[pad] = [keras.layers.MaxPooling2D(2, padding=pad)(np.ones((1, n, n, 1), np.float32)).shape[1]
                    for n in POOL_SIZES]
    return {"sizes": POOL_SIZES, **out}


def _psize_reference():
    return {"sizes": POOL_SIZES, **{
        f"ceil_mode={ceil}": [ref.MaxPool2d(2, ceil_mode=ceil).forward(np.ones((1, 1, n, n))).shape[2]
                              for n in POOL_SIZES]
        for ceil in (False, True)}}


def floor_sizes(evidence: dict):
    """The pooled sizes that drop an odd last row: ``ceil_mode=False`` (a flag) or ``valid`` (padding by name)."""
    return evidence.get("ceil_mode=False", evidence.get("valid", MISSING))


def ceil_sizes(evidence: dict):
    """The pooled sizes that keep an odd last row: ``ceil_mode=True`` or ``same``."""
    return evidence.get("ceil_mode=True", evidence.get("same", MISSING))


probe("pool-output-size", "2x2 pooling of odd-sized maps: floor vs ceil", "pooling",
      f"Output sizes of 2x2/stride-2 max pooling over inputs {POOL_SIZES}.",
      "PyTorch's default drops the last odd row/column (floor), like Keras 'valid'. Keras 'same' keeps it "
      "(ceil, padding at the bottom/right), which in PyTorch is ceil_mode=True. A Keras model with "
      "padding='same' pools on a 7x7 map gives 4x4, PyTorch's default gives 3x3 and the next Dense "
      "layer no longer fits.",
      frameworks={"torch": _psize_torch, "keras": _psize_keras}, reference=_psize_reference,
      verdict=compare_key(floor_sizes, ceil_sizes, reference_keys=(floor_sizes,), reference_equal=exact))


# -- a dilated window lying entirely in the padding --------------------------------
DILATED = {"shape": (1, 1, 1, 8), "kernel_size": 2, "stride": 2, "padding": 1, "dilation": (2, 1)}


def dilated_input() -> np.ndarray:
    """``(1, 1, 1, 8)`` float64: 1..8, so any real input would win a window's max."""
    return np.arange(1.0, 9.0).reshape(DILATED["shape"])


def _dilated_torch_child():
    """Runs in a child process (see isolation.py): PyTorch's forward with indices. Never its backward:
    it crashed the Python process on this input."""
    torch = import_torch()
    d = DILATED
    yield step("forward")
    out, idx = torch.nn.functional.max_pool2d(torch.from_numpy(dilated_input()), d["kernel_size"], d["stride"],
                                              padding=d["padding"], dilation=d["dilation"], return_indices=True)
    plane = int(np.prod(d["shape"][2:]))
    yield step("done", out=out[0, 0].numpy(), indices=idx[0, 0].numpy(), plane_size=plane,
               indices_out_of_range=int(((idx < 0) | (idx >= plane)).sum()))


def _dilated_reference() -> dict:
    d = DILATED
    layer = ref.MaxPool2d(d["kernel_size"], stride=d["stride"], padding=d["padding"], dilation=d["dilation"],
                          return_indices=True)
    try:
        out, idx = layer.forward(dilated_input())
    except Exception as exc:  # noqa: BLE001  (any exception is the evidence: its type and message)
        return {"raises": type(exc).__name__, "message": str(exc)}
    plane = int(np.prod(d["shape"][2:]))
    return {"out": out[0, 0], "indices": idx[0, 0], "plane_size": plane,
            "indices_out_of_range": int(((idx < 0) | (idx >= plane)).sum())}


probe("maxpool-dilated-window-in-padding", "dilated max pooling: a window that sees only padding", "pooling",
      f"PyTorch's max_pool2d(kernel_size={DILATED['kernel_size']}, stride={DILATED['stride']}, padding="
      f"{DILATED['padding']}, dilation={DILATED['dilation']}, return_indices=True) on a {DILATED['shape']} "
      "input 1..8: the input's one row lies between the two dilated rows of every window (rows -1 and 1). "
      "The forward only, in a separate process: the backward of this call crashed the Python process.",
      "PyTorch accepts the geometry (padding <= kernel/2 is its only check), returns -inf for every output "
      "and indices that point outside the input plane; its backward then scatters into memory it does not "
      "own. Keras' MaxPooling2D has no dilation. The reference refuses the geometry (ValueError naming the "
      "window). Keep (kernel-1)*dilation + 1 <= input + padding and check "
      "that every window covers an input cell; a -inf in a max-pool output means it does not.",
      frameworks={"torch": lambda: run_isolated(_dilated_torch_child),
                  "keras": lambda: {"skipped": "no Keras equivalent: MaxPooling2D has no dilation"}},
      reference=_dilated_reference, verdict=compare_key("out", reference_equal=exact))
