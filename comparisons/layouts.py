"""Layout conversions between the reference/PyTorch (channels-first) and Keras (channels-last).

Every conversion has its inverse next to it; all are exact (index permutations, or
integer arithmetic for the padding maps).

================  ===========================  ==========================
what              reference / PyTorch          Keras
================  ===========================  ==========================
image             ``(C, H, W)``                ``(H, W, C)``
batch             ``(N, C, H, W)``             ``(N, H, W, C)``
conv kernel       ``(F, C, kh, kw)`` (OIHW)    ``(kh, kw, C, F)`` (HWIO)
dense weight      ref ``(in, out)``; torch     ``(in, out)``
                  ``(out, in)``
flatten order     ``C, H, W``                  ``H, W, C``
padding           symmetric ``(ph, pw)``       ``ZeroPadding2D(((top, bottom), (left, right)))``;
                                               ``padding="same"`` puts an odd extra row/column
                                               at the bottom/right
================  ===========================  ==========================
"""

from __future__ import annotations

import numpy as np

from reference.validation import as_pair, check_ndim
from reference.windows import effective_kernel

Pair = tuple[int, int]
KerasPadding = tuple[Pair, Pair]


def _check(x: np.ndarray, ndim: int, where: str, layout: str) -> np.ndarray:
    x = np.asarray(x)
    check_ndim(x, (ndim,), f"layouts.{where}", "the array", layout)
    return x


def chw_to_hwc(x: np.ndarray) -> np.ndarray:
    """``(C, H, W) -> (H, W, C)``."""
    return np.ascontiguousarray(_check(x, 3, "chw_to_hwc", "(C,H,W)").transpose(1, 2, 0))


def hwc_to_chw(x: np.ndarray) -> np.ndarray:
    """``(H, W, C) -> (C, H, W)``."""
    return np.ascontiguousarray(_check(x, 3, "hwc_to_chw", "(H,W,C)").transpose(2, 0, 1))


def nchw_to_nhwc(x: np.ndarray) -> np.ndarray:
    """``(N, C, H, W) -> (N, H, W, C)``."""
    return np.ascontiguousarray(_check(x, 4, "nchw_to_nhwc", "(N,C,H,W)").transpose(0, 2, 3, 1))


def nhwc_to_nchw(x: np.ndarray) -> np.ndarray:
    """``(N, H, W, C) -> (N, C, H, W)``."""
    return np.ascontiguousarray(_check(x, 4, "nhwc_to_nchw", "(N,H,W,C)").transpose(0, 3, 1, 2))


def oihw_to_hwio(w: np.ndarray) -> np.ndarray:
    """Conv kernel ``(F, C, kh, kw)`` (reference, PyTorch) -> ``(kh, kw, C, F)`` (Keras ``Conv2D``)."""
    return np.ascontiguousarray(_check(w, 4, "oihw_to_hwio", "(F,C,kh,kw)").transpose(2, 3, 1, 0))


def hwio_to_oihw(w: np.ndarray) -> np.ndarray:
    """Conv kernel ``(kh, kw, C, F)`` (Keras) -> ``(F, C, kh, kw)`` (reference, PyTorch)."""
    return np.ascontiguousarray(_check(w, 4, "hwio_to_oihw", "(kh,kw,C,F)").transpose(3, 2, 0, 1))


def linear_to_torch(w: np.ndarray) -> np.ndarray:
    """Reference/Keras dense weight ``(in, out)`` -> PyTorch ``nn.Linear.weight`` ``(out, in)``."""
    return np.ascontiguousarray(_check(w, 2, "linear_to_torch", "(in,out)").T)


def linear_from_torch(w: np.ndarray) -> np.ndarray:
    """PyTorch ``(out, in)`` -> reference/Keras ``(in, out)``."""
    return np.ascontiguousarray(_check(w, 2, "linear_from_torch", "(out,in)").T)


# -- flatten order -------------------------------------------------------------
def flatten_permutation(feature_shape: tuple[int, int, int]) -> np.ndarray:
    """Index array ``p`` with ``flat_chw[p] == flat_hwc`` for a ``(C, H, W)`` feature map.

    A Keras ``Flatten`` on ``(H, W, C)`` emits feature ``k`` = channels-first feature
    ``p[k]``. So a dense kernel ``W_chw (C*H*W, out)`` becomes ``W_chw[p]`` for Keras.
    """
    if len(feature_shape) != 3:
        raise ValueError(f"layouts.flatten_permutation: feature_shape must be (C, H, W), got {feature_shape!r}")
    c, h, w = feature_shape
    return np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)


def _permute(a: np.ndarray, index: np.ndarray, axis: int, where: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 0 or a.shape[axis] != index.size:
        raise ValueError(f"layouts.{where}: axis {axis} must have length C*H*W = {index.size}, got shape {a.shape}")
    return np.ascontiguousarray(np.take(a, index, axis=axis))


def dense_rows_chw_to_hwc(w: np.ndarray, feature_shape: tuple[int, int, int]) -> np.ndarray:
    """Dense kernel ``(C*H*W, out)`` after a channels-first Flatten -> the same after a channels-last one."""
    return _permute(w, flatten_permutation(feature_shape), 0, "dense_rows_chw_to_hwc")


def dense_rows_hwc_to_chw(w: np.ndarray, feature_shape: tuple[int, int, int]) -> np.ndarray:
    """Inverse of :func:`dense_rows_chw_to_hwc`."""
    return _permute(w, np.argsort(flatten_permutation(feature_shape)), 0, "dense_rows_hwc_to_chw")


def flat_chw_to_hwc(a: np.ndarray, feature_shape: tuple[int, int, int]) -> np.ndarray:
    """Flattened features ``(..., C*H*W)`` in channels-first order -> Keras ``Flatten`` order ``H, W, C``."""
    return _permute(a, flatten_permutation(feature_shape), -1, "flat_chw_to_hwc")


def flat_hwc_to_chw(a: np.ndarray, feature_shape: tuple[int, int, int]) -> np.ndarray:
    """Inverse of :func:`flat_chw_to_hwc`: a Keras ``Flatten`` output back in ``C, H, W`` order."""
    return _permute(a, np.argsort(flatten_permutation(feature_shape)), -1, "flat_hwc_to_chw")


# -- padding -------------------------------------------------------------------
def padding_to_keras(padding: int | Pair) -> KerasPadding:
    """Reference (symmetric) ``padding`` -> ``ZeroPadding2D(padding=((top, bottom), (left, right)))``.

    ``ZeroPadding2D`` followed by a ``padding="valid"`` layer is exactly the reference's
    zero padding (for convolution and for average pooling with ``count_include_pad=True``).
    """
    ph, pw = as_pair(padding, "layouts.padding_to_keras", "padding", 0)
    return ((ph, ph), (pw, pw))


def padding_from_keras(padding: KerasPadding) -> Pair:
    """Inverse of :func:`padding_to_keras`; ValueError when the padding is not symmetric."""
    (top, bottom), (left, right) = padding
    if top != bottom or left != right:
        raise ValueError(f"layouts.padding_from_keras: padding must be symmetric to map to the reference, "
                         f"got ((top, bottom), (left, right)) = {padding!r}")
    return (int(top), int(left))


def keras_same_padding(size: Pair, kernel: int | Pair, stride: int | Pair = 1,
                       dilation: int | Pair = 1) -> KerasPadding:
    """The zeros Keras ``padding="same"`` adds to an ``(H, W)`` input, as ``((top, bottom), (left, right))``.

    Per axis (TensorFlow's rule): ``out = ceil(n / s)``, ``total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)``,
    ``top = total // 2``, ``bottom = total - top``: when ``total`` is odd the extra row/column goes to the
    bottom/right, which symmetric padding cannot express.
    """
    where = "layouts.keras_same_padding"
    size = as_pair(size, where, "size", 1)
    ek = effective_kernel(as_pair(kernel, where, "kernel", 1), as_pair(dilation, where, "dilation", 1))
    stride = as_pair(stride, where, "stride", 1)
    pads = []
    for n, k, s in zip(size, ek, stride, strict=True):
        total = max((-(-n // s) - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    return (pads[0], pads[1])
