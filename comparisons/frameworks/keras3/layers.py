"""The Keras layers the comparisons need and Keras lacks: reflect, replicate/circular and constant (``-inf``)
padding, and dropout with a given keep-mask. Channels-last; ``pads = ((top, bottom), (left, right))``."""

from __future__ import annotations

import keras
import numpy as np


class ReflectionPadding2D(keras.layers.Layer):
    """PyTorch's ``padding_mode="reflect"`` for channels-last images: ``keras.ops.pad(x, ..., mode="reflect")``
    with ``pads = ((top, bottom), (left, right))`` (TensorFlow's MirrorPad; its gradient folds back)."""

    def __init__(self, pads, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pads = tuple(tuple(p) for p in pads)

    def call(self, inputs):
        return keras.ops.pad(inputs, ((0, 0), *self.pads, (0, 0)), mode="reflect")


class SlicePadding2D(keras.layers.Layer):
    """PyTorch's ``padding_mode="replicate"`` or ``"circular"`` for channels-last images, built from slices
    and ``keras.ops.concatenate`` (TensorFlow's pad has no edge or wrap mode): replicate repeats the edge
    row/column, circular wraps the other side around; ``pads = ((top, bottom), (left, right))``. The
    gradient of the concatenation folds each border cell back onto the cell it copied."""

    def __init__(self, pads, mode: str, **kwargs) -> None:
        super().__init__(**kwargs)
        if mode not in ("replicate", "circular"):
            raise ValueError(f"SlicePadding2D: mode must be 'replicate' or 'circular', got {mode!r}")
        self.pads, self.mode = tuple(tuple(p) for p in pads), mode

    def _pad_axis(self, x, axis: int, before: int, after: int):
        n = x.shape[axis]
        if self.mode == "replicate":
            index = np.r_[np.zeros(before, int), np.arange(n), np.full(after, n - 1)]
        else:
            index = np.r_[np.arange(n - before, n), np.arange(n), np.arange(after)] % n
        return x if before == after == 0 else keras.ops.take(x, index, axis=axis)

    def call(self, inputs):
        (top, bottom), (left, right) = self.pads
        return self._pad_axis(self._pad_axis(inputs, 1, top, bottom), 2, left, right)


class ConstantPadding2D(keras.layers.Layer):
    """Pad channels-last images with ``value`` (``-inf`` for max pooling: padding never wins the max):
    ``keras.ops.pad(x, ..., constant_values=value)`` with ``pads = ((top, bottom), (left, right))``."""

    def __init__(self, pads, value: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pads, self.value = tuple(tuple(p) for p in pads), float(value)

    def call(self, inputs):
        return keras.ops.pad(inputs, ((0, 0), *self.pads, (0, 0)), mode="constant", constant_values=self.value)


class FixedMaskDropout(keras.layers.Dropout):
    """``keras.layers.Dropout`` whose training-mode keep-mask is given: ``keep_mask`` (channels-last,
    batched, set before the call) -> ``x * keep_mask / (1 - rate)``. Inference mode is Dropout's own."""

    keep_mask: np.ndarray | None = None

    def call(self, inputs, training=False):
        if not training:
            return super().call(inputs, training=False)
        if self.keep_mask is None:
            raise ValueError("FixedMaskDropout: training-mode call without a keep_mask")
        return inputs * keras.ops.cast(self.keep_mask, inputs.dtype) / (1.0 - self.rate)
