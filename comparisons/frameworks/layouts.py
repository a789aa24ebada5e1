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

import numbers

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
# The shape of the feature map is keyword-only and named for the layout it is written in: ``chw=(C, H, W)``
# for the functions whose input is in channels-first order (what the reference and PyTorch report),
# ``hwc=(H, W, C)`` for those whose input is in Keras' channels-last order (what a Keras model reports).
# (8, 13, 13) and (13, 13, 8) hold as many features, so a shape in the wrong order cannot be detected:
# the keyword makes the order explicit at the call.
FeatureShape = tuple[int, int, int]


def _feature_shape(shape, name: str, where: str) -> FeatureShape:
    """``shape`` as three positive ints, or a ValueError naming ``name`` (``"chw"`` or ``"hwc"``)."""
    order = "(C, H, W)" if name == "chw" else "(H, W, C)"
    dims = tuple(shape) if isinstance(shape, (tuple, list)) else None
    if (dims is None or len(dims) != 3
            or not all(isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 1 for d in dims)):
        raise ValueError(f"layouts.{where}: {name} must be 3 positive ints {order}, got {shape!r}")
    return tuple(int(d) for d in dims)


def _chw(shape, name: str, where: str) -> FeatureShape:
    """The checked ``shape`` as ``(C, H, W)`` whichever layout ``name`` says it is written in."""
    dims = _feature_shape(shape, name, where)
    return dims if name == "chw" else (dims[2], dims[0], dims[1])


def _permutation(c: int, h: int, w: int) -> np.ndarray:
    return np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)


def flatten_permutation(*, chw: FeatureShape) -> np.ndarray:
    """Index array ``p`` with ``flat_chw[p] == flat_hwc`` for a feature map of shape ``chw=(C, H, W)``.

    A Keras ``Flatten`` on ``(H, W, C)`` emits feature ``k`` = channels-first feature
    ``p[k]``. So a dense kernel ``W_chw (C*H*W, out)`` becomes ``W_chw[p]`` for Keras.
    """
    return _permutation(*_chw(chw, "chw", "flatten_permutation"))


def _convert(a, shape, name: str, axis: int, where: str, inverse: bool) -> np.ndarray:
    """Permute ``a`` along ``axis`` (0: dense rows, a 2-D ``(features, out)`` kernel; -1: flattened features)
    between the C,H,W and H,W,C flatten orders of the feature map ``shape`` (written in ``name``'s order)."""
    a = np.asarray(a)
    if axis == 0:
        check_ndim(a, (2,), f"layouts.{where}", "w", "(features, out)")
    elif a.ndim == 0:
        raise ValueError(f"layouts.{where}: a must have at least 1 dim (..., features), got shape {a.shape}")
    dims = _feature_shape(shape, name, where)
    size = int(np.prod(dims))
    if a.shape[axis] != size:
        product = "C*H*W" if name == "chw" else "H*W*C"
        what = "w must have" if axis == 0 else "a's last axis must have"
        raise ValueError(f"layouts.{where}: {what} {product} = {size} features for {name}={dims}, "
                         f"got shape {a.shape}")
    index = _permutation(*_chw(dims, name, where))
    return np.ascontiguousarray(np.take(a, np.argsort(index) if inverse else index, axis=axis))


def dense_rows_chw_to_hwc(w: np.ndarray, *, chw: FeatureShape) -> np.ndarray:
    """Dense kernel ``(C*H*W, out)`` after a channels-first Flatten of a ``chw=(C, H, W)`` map -> the same
    kernel after a channels-last (Keras) Flatten of that map, ``(H*W*C, out)``."""
    return _convert(w, chw, "chw", 0, "dense_rows_chw_to_hwc", inverse=False)


def dense_rows_hwc_to_chw(w: np.ndarray, *, hwc: FeatureShape) -> np.ndarray:
    """Inverse of :func:`dense_rows_chw_to_hwc`: a Keras Dense kernel ``(H*W*C, out)`` after a Flatten of an
    ``hwc=(H, W, C)`` map -> the kernel for a channels-first Flatten of the same map."""
    return _convert(w, hwc, "hwc", 0, "dense_rows_hwc_to_chw", inverse=True)


def flat_chw_to_hwc(a: np.ndarray, *, chw: FeatureShape) -> np.ndarray:
    """Flattened features ``(..., C*H*W)`` of a ``chw=(C, H, W)`` map in channels-first order -> Keras
    ``Flatten`` order ``H, W, C``."""
    return _convert(a, chw, "chw", -1, "flat_chw_to_hwc", inverse=False)


def flat_hwc_to_chw(a: np.ndarray, *, hwc: FeatureShape) -> np.ndarray:
    """Inverse of :func:`flat_chw_to_hwc`: a Keras ``Flatten`` output ``(..., H*W*C)`` of an ``hwc=(H, W, C)``
    map back in ``C, H, W`` order."""
    return _convert(a, hwc, "hwc", -1, "flat_hwc_to_chw", inverse=True)


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


# -- depthwise kernels (Keras DepthwiseConv2D) ---------------------------------
def oihw_to_keras_depthwise(w: np.ndarray, in_channels: int) -> np.ndarray:
    """Depthwise kernel ``(C*m, 1, kh, kw)`` (PyTorch, groups = C) -> Keras ``DepthwiseConv2D`` ``(kh, kw, C, m)``.

    Output channel ``c*m + j`` of both is the ``j``-th filter of input channel ``c``.
    """
    if w.ndim != 4 or w.shape[1] != 1 or w.shape[0] % in_channels:
        raise ValueError(f"oihw_to_keras_depthwise: w must have shape (C*m, 1, kh, kw) with C={in_channels}, "
                         f"got shape {w.shape}")
    f, _, kh, kw = w.shape
    return w.reshape(in_channels, f // in_channels, kh, kw).transpose(2, 3, 0, 1)


def keras_depthwise_to_oihw(k: np.ndarray) -> np.ndarray:
    """Inverse of :func:`oihw_to_keras_depthwise`: ``(kh, kw, C, m)`` -> ``(C*m, 1, kh, kw)``."""
    if k.ndim != 4:
        raise ValueError(f"keras_depthwise_to_oihw: k must have shape (kh, kw, C, m), got shape {k.shape}")
    kh, kw, c, m = k.shape
    return k.transpose(2, 3, 0, 1).reshape(c * m, 1, kh, kw)
