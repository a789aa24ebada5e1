"""Layout conversions between the reference/PyTorch (channels-first) and Keras (channels-last).

Every function has its inverse next to it; all are exact (pure index permutations).

================  ===========================  ==========================
what              reference / PyTorch          Keras
================  ===========================  ==========================
image             ``(C, H, W)``                ``(H, W, C)``
batch             ``(N, C, H, W)``             ``(N, H, W, C)``
conv kernel       ``(F, C, kh, kw)`` (OIHW)    ``(kh, kw, C, F)`` (HWIO)
dense weight      ref ``(in, out)``; torch     ``(in, out)``
                  ``(out, in)``
flatten order     ``C, H, W``                  ``H, W, C``
================  ===========================  ==========================
"""

from __future__ import annotations

import numpy as np


def chw_to_hwc(x: np.ndarray) -> np.ndarray:
    """``(C, H, W) -> (H, W, C)``."""
    return np.ascontiguousarray(np.moveaxis(x, 0, -1))


def hwc_to_chw(x: np.ndarray) -> np.ndarray:
    """``(H, W, C) -> (C, H, W)``."""
    return np.ascontiguousarray(np.moveaxis(x, -1, 0))


def nchw_to_nhwc(x: np.ndarray) -> np.ndarray:
    """``(N, C, H, W) -> (N, H, W, C)``."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def nhwc_to_nchw(x: np.ndarray) -> np.ndarray:
    """``(N, H, W, C) -> (N, C, H, W)``."""
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def oihw_to_hwio(w: np.ndarray) -> np.ndarray:
    """Conv kernel ``(F, C, kh, kw)`` (reference, PyTorch) -> ``(kh, kw, C, F)`` (Keras ``Conv2D``)."""
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0))


def hwio_to_oihw(w: np.ndarray) -> np.ndarray:
    """Conv kernel ``(kh, kw, C, F)`` (Keras) -> ``(F, C, kh, kw)`` (reference, PyTorch)."""
    return np.ascontiguousarray(w.transpose(3, 2, 0, 1))


def linear_to_torch(w: np.ndarray) -> np.ndarray:
    """Reference/Keras dense weight ``(in, out)`` -> PyTorch ``nn.Linear.weight`` ``(out, in)``."""
    return np.ascontiguousarray(w.T)


def linear_from_torch(w: np.ndarray) -> np.ndarray:
    """PyTorch ``(out, in)`` -> reference/Keras ``(in, out)``."""
    return np.ascontiguousarray(w.T)


def flatten_permutation(feature_shape: tuple[int, int, int]) -> np.ndarray:
    """Index array ``p`` with ``flat_chw[p] == flat_hwc`` for a ``(C, H, W)`` feature map.

    A Keras ``Flatten`` on ``(H, W, C)`` emits feature ``k`` = channels-first feature
    ``p[k]``. So a dense kernel ``W_chw (C*H*W, out)`` becomes ``W_chw[p]`` for Keras.
    """
    c, h, w = feature_shape
    return np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)


def dense_rows_chw_to_hwc(w: np.ndarray, feature_shape: tuple[int, int, int]) -> np.ndarray:
    """Dense kernel after a channels-first Flatten -> the same after a channels-last Flatten."""
    return np.ascontiguousarray(w[flatten_permutation(feature_shape)])


def dense_rows_hwc_to_chw(w: np.ndarray, feature_shape: tuple[int, int, int]) -> np.ndarray:
    """Inverse of :func:`dense_rows_chw_to_hwc`."""
    return np.ascontiguousarray(w[np.argsort(flatten_permutation(feature_shape))])
