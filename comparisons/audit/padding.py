"""Convolution padding probes: "same" with even kernels and strides, output-size rounding.

Every side convolves a ``(1, 1, n, n)`` input holding ``1..n*n`` with a *shift kernel* (a
one-hot at the top-left tap), so output ``(i, j)`` is the padded input at ``(i*s, j*s)`` and
:func:`infer_padding` reads back the padding each framework actually applied.
"""

from __future__ import annotations

import warnings

import numpy as np

import reference as ref

from .base import MISSING, compare_key, exact, import_keras, import_tf, import_torch, pairs, probe, ran


def shift_input(n: int) -> np.ndarray:
    """``(1, 1, n, n)`` float32 holding ``1..n*n`` (no zeros, so padding shows as 0)."""
    return np.arange(1, n * n + 1, dtype=np.float32).reshape(1, 1, n, n)


def shift_kernel(k: int) -> np.ndarray:
    """OIHW ``(1, 1, k, k)``: 1 at the top-left tap, 0 elsewhere."""
    w = np.zeros((1, 1, k, k), dtype=np.float32)
    w[0, 0, 0, 0] = 1.0
    return w


def infer_padding(out: np.ndarray, x: np.ndarray, k: int, s: int) -> list[int] | None:
    """``[top, bottom, left, right]`` padding that makes a shift-kernel conv of ``x (H, W)`` give
    ``out (H', W')``; ``bottom``/``right`` count only the padded rows the windows reach."""
    for top in range(k):
        for left in range(k):
            xp = np.pad(x, ((top, k), (left, k)))
            if np.array_equal(xp[::s, ::s][: out.shape[0], : out.shape[1]], out):
                bottom = (out.shape[0] - 1) * s + k - x.shape[0] - top
                right = (out.shape[1] - 1) * s + k - x.shape[1] - left
                return [top, bottom, left, right]
    return None


def torch_conv(x: np.ndarray, w: np.ndarray, stride: int, padding) -> np.ndarray:
    """``x (N, C, H, W)``, ``w (F, C, kh, kw)`` -> ``(N, F, H', W')`` by ``torch.nn.functional.conv2d``."""
    torch = import_torch()
    return torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), stride=stride,
                                      padding=padding).numpy()


def keras_conv(x: np.ndarray, w: np.ndarray, stride: int, padding: str) -> np.ndarray:
    """Same arguments as :func:`torch_conv` but through ``keras.layers.Conv2D`` (channels-last inside)."""
    keras = import_keras()
    layer = keras.layers.Conv2D(w.shape[0], w.shape[2:], strides=stride, padding=padding, use_bias=False)
    layer.build((None, *x.shape[2:], x.shape[1]))
    layer.set_weights([w.transpose(2, 3, 1, 0)])
    return np.asarray(layer(x.transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)


def reference_conv(x: np.ndarray, w: np.ndarray, stride: int, padding) -> np.ndarray:
    layer = ref.Conv2d(w.shape[1], w.shape[0], w.shape[2:], stride=stride, padding=padding, bias=False,
                       dtype=np.float32)
    layer.params["weight"] = w
    return layer.forward(x)


def _shift_evidence(out: np.ndarray, n: int, k: int, s: int) -> dict:
    return {"out_size": out.shape[2], "pad": infer_padding(out[0, 0], shift_input(n)[0, 0], k, s)}


# -- "same" with an even kernel ------------------------------------------------
EVEN = {"n": 5, "kernels": (2, 4)}


def _even_torch():
    n, out = EVEN["n"], {}
    for k in EVEN["kernels"]:
        with warnings.catch_warnings():
            # "may require a zero-padded copy of the input": a performance note, emitted once per process
            warnings.simplefilter("ignore", UserWarning)
            out[f"k{k}"] = _shift_evidence(torch_conv(shift_input(n), shift_kernel(k), 1, "same"), n, k, 1)
    return out


def _even_keras():
    n = EVEN["n"]
    return {f"k{k}": _shift_evidence(keras_conv(shift_input(n), shift_kernel(k), 1, "same"), n, k, 1)
            for k in EVEN["kernels"]}


def _even_reference():
    """``padding="same"`` (as reported), and the symmetric ``padding=k//2`` a port often uses instead."""
    n, out = EVEN["n"], {}
    for k in EVEN["kernels"]:
        same = _shift_evidence(reference_conv(shift_input(n), shift_kernel(k), 1, "same"), n, k, 1)
        symmetric = _shift_evidence(reference_conv(shift_input(n), shift_kernel(k), 1, k // 2), n, k, 1)
        out[f"k{k}"] = {**same, "symmetric_k//2_out_size": symmetric["out_size"],
                        "symmetric_k//2_pad": symmetric["pad"]}
    return out


probe("conv-same-even-kernel", "'same' padding with an even kernel", "convolution padding",
      "Where does the extra row/column of 'same' padding go when the kernel size is even, and can a "
      "symmetric integer padding reproduce it?",
      "An even kernel needs an odd total padding. Both frameworks (and the reference's padding=\"same\") "
      "put the extra row and column at the bottom/right; a symmetric integer padding (padding=k//2) pads "
      "both sides and grows the output by one. To port such a layer where only symmetric padding exists, "
      "pad explicitly (F.pad(x, (left, right, top, bottom))) before a padding=0 convolution.",
      frameworks={"torch": _even_torch, "keras": _even_keras}, reference=_even_reference,
      verdict=compare_key(*((f"k{k}", "pad") for k in EVEN["kernels"]), reference_equal=exact))


# -- "same" with stride 2: Keras vs the usual symmetric port -------------------
STRIDED = {"n": 6, "k": 3, "s": 2}


def _random_case(seed: int = 0):
    rng = np.random.default_rng(seed)
    n, k = STRIDED["n"], STRIDED["k"]
    return rng.standard_normal((1, 2, n, n)).astype(np.float32), rng.standard_normal((3, 2, k, k)).astype(np.float32)


def _strided_torch():
    n, k, s = STRIDED["n"], STRIDED["k"], STRIDED["s"]
    x, w = _random_case()
    return {**_shift_evidence(torch_conv(shift_input(n), shift_kernel(k), s, k // 2), n, k, s),
            "padding_arg": k // 2, "_out": torch_conv(x, w, s, k // 2)}


def _strided_keras():
    n, k, s = STRIDED["n"], STRIDED["k"], STRIDED["s"]
    x, w = _random_case()
    return {**_shift_evidence(keras_conv(shift_input(n), shift_kernel(k), s, "same"), n, k, s),
            "padding_arg": "same", "_out": keras_conv(x, w, s, "same")}


def _strided_reference():
    n, k, s = STRIDED["n"], STRIDED["k"], STRIDED["s"]
    return {**_shift_evidence(reference_conv(shift_input(n), shift_kernel(k), s, k // 2), n, k, s),
            "padding_arg": k // 2}


def output_differences(evidence: dict, reference: dict) -> dict:
    """``max_abs_diff_{a}_vs_{b}``: how far apart two frameworks' outputs (``_out``) of the same random
    problem are, each with its own ``padding_arg``, for every pair of frameworks that ran."""
    outs = {name: e["_out"] for name, e in ran(evidence).items() if "_out" in e}
    return {f"max_abs_diff_{a}_vs_{b}": float(np.abs(outs[a] - outs[b]).max()) for a, b in pairs(outs)}


probe("conv-same-stride", "Keras 'same' with stride 2 vs symmetric padding k//2", "convolution padding",
      f"With n={STRIDED['n']}, kernel {STRIDED['k']}, stride {STRIDED['s']}: does Keras 'same' pad like "
      "PyTorch's padding=k//2, and how far apart are the outputs?",
      "Keras 'same' computes the total padding from the output size ceil(n/s): "
      "max((ceil(n/s)-1)*s + k - n, 0), and puts the smaller half on top/left. With stride 2 on an "
      "even input that is often 0 on top and 1 at the bottom, so padding=k//2 gives the same output "
      "size but every window shifted by one pixel: the shapes match and the numbers do not. Port "
      "with an explicit asymmetric F.pad, or compare a probe input as here.",
      frameworks={"torch": _strided_torch, "keras": _strided_keras}, reference=_strided_reference,
      verdict=compare_key("pad", comparison=output_differences))


# -- PyTorch padding="same" with a stride --------------------------------------
def _same_stride_torch():
    try:
        y = torch_conv(shift_input(6), shift_kernel(3), 2, "same")
    except (RuntimeError, ValueError) as exc:
        return {"accepted": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"accepted": True, "out_size": y.shape[2]}


def _same_stride_keras():
    return {"accepted": True, "out_size": keras_conv(shift_input(6), shift_kernel(3), 2, "same").shape[2]}


def _same_stride_reference():
    try:
        ref.Conv2d(1, 1, 3, stride=2, padding="same")
    except (TypeError, ValueError) as exc:
        return {"accepted": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"accepted": True}


probe("conv-same-strided-torch", "padding='same' together with stride 2", "convolution padding",
      "Does each framework accept padding='same' with a stride of 2 (input 6, kernel 3)?",
      "PyTorch refuses padding='same' for strided convolutions, so a Keras Conv2D(strides=2, "
      "padding='same') has no one-line PyTorch twin: compute Keras' asymmetric padding (see "
      "conv-same-stride) and apply it with F.pad before a padding=0 convolution.",
      frameworks={"torch": _same_stride_torch, "keras": _same_stride_keras}, reference=_same_stride_reference,
      verdict=compare_key("accepted"))


# -- output-size rounding ------------------------------------------------------
ROUNDING = {"sizes": (5, 6, 7, 8, 9), "k": 3, "s": 2}


def _unread_rows(grad: np.ndarray) -> int:
    """Rows at the bottom of ``grad (H, W)`` that received no gradient (never read by a window)."""
    read = np.flatnonzero(np.abs(grad).sum(axis=1) > 0)
    return grad.shape[0] - 1 - int(read.max())


def padded_sizes(evidence: dict):
    """The output sizes of the framework's padded convolution: ``padding_k//2`` where it pads with an
    integer, ``same`` where it pads by name."""
    return evidence.get("padding_k//2", evidence.get("same", MISSING))


def _rounding_torch():
    torch = import_torch()
    k, s = ROUNDING["k"], ROUNDING["s"]
    valid, pad1, unread = [], [], []
    for n in ROUNDING["sizes"]:
        x = torch.ones((1, 1, n, n), requires_grad=True)
        w = torch.ones((1, 1, k, k))
        y = torch.nn.functional.conv2d(x, w, stride=s)
        y.sum().backward()
        valid.append(y.shape[2])
        unread.append(_unread_rows(x.grad[0, 0].numpy()))
        pad1.append(torch.nn.functional.conv2d(x, w, stride=s, padding=k // 2).shape[2])
    return {"sizes": ROUNDING["sizes"], "valid": valid, "padding_k//2": pad1, "unread_rows_valid": unread}


def _rounding_keras():
    keras, tf = import_keras(), import_tf()
    k, s = ROUNDING["k"], ROUNDING["s"]
    valid, unread = [], []
    for n in ROUNDING["sizes"]:
        x = tf.Variable(np.ones((1, n, n, 1), np.float32))
        layer = keras.layers.Conv2D(1, k, strides=s, use_bias=False, kernel_initializer="ones")
        with tf.GradientTape() as tape:
            y = tf.reduce_sum(layer(x))
        valid.append(layer.compute_output_shape((1, n, n, 1))[1])
        unread.append(_unread_rows(tape.gradient(y, x).numpy()[0, :, :, 0]))
    same = [keras_conv(shift_input(n), shift_kernel(k), s, "same").shape[2] for n in ROUNDING["sizes"]]
    return {"sizes": ROUNDING["sizes"], "valid": valid, "same": same, "unread_rows_valid": unread}


def _rounding_reference():
    k, s = ROUNDING["k"], ROUNDING["s"]
    valid, pad1, unread = [], [], []
    for n in ROUNDING["sizes"]:
        layer = ref.Conv2d(1, 1, k, stride=s, bias=False, dtype=np.float32, rng=0)
        y = layer.forward(np.ones((1, 1, n, n), np.float32))
        valid.append(y.shape[2])
        unread.append(_unread_rows(layer.backward(np.ones_like(y))[0, 0]))
        pad1.append(reference_conv(np.ones((1, 1, n, n), np.float32), np.ones((1, 1, k, k), np.float32), s,
                                   k // 2).shape[2])
    return {"sizes": ROUNDING["sizes"], "valid": valid, "padding_k//2": pad1, "unread_rows_valid": unread}


probe("conv-output-rounding", "output size: floor division and the rows a strided window never reads",
      "convolution padding",
      f"Output sizes for kernel {ROUNDING['k']}, stride {ROUNDING['s']} over input sizes {ROUNDING['sizes']}.",
      "Unpadded ('valid') outputs agree: floor((n - k)/s) + 1 in both. When (n - k) is not a multiple of "
      "the stride, the last input rows are silently never read (their gradient is zero). Keras 'same' "
      "gives ceil(n/s) and PyTorch padding=k//2 gives floor((n + 2*(k//2) - k)/s) + 1; these agree for odd "
      "kernels, but the padding placement may not (see conv-same-stride).",
      frameworks={"torch": _rounding_torch, "keras": _rounding_keras}, reference=_rounding_reference,
      verdict=compare_key("valid", padded_sizes, reference_keys=("valid",)))
