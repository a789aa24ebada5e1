"""Inverted dropout, as ``torch.nn.Dropout`` and ``keras.layers.Dropout``.

Training mode keeps each element with probability ``1 - p`` and scales the kept ones by
``1 / (1 - p)``, so evaluation mode is the identity. The keep-mask comes from the layer's
own seeded generator; the last one is exposed as ``mask`` and one can be imposed with
:meth:`Dropout.set_mask` (to feed frameworks, or finite differences, the same mask).
"""

from __future__ import annotations

import numpy as np

from .conv import default_rng
from .layer import Layer
from .validation import check_fraction, check_shape


class Dropout(Layer):
    """``Dropout(p=0.5, rng=None)``: any shape -> the same shape.

    ``p`` is the probability of dropping an element (``0 <= p <= 1``; ``p = 1`` drops all).
    ``mask`` is the boolean keep-mask of the last training forward (``None`` before one).
    """

    def __init__(self, p: float = 0.5, rng=None) -> None:
        super().__init__()
        self.p = check_fraction(p, "Dropout", "p")
        self._rng = default_rng(rng)
        self.mask: np.ndarray | None = None
        self._fixed: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"

    @property
    def scale(self) -> float:
        """The factor applied to kept elements: ``1 / (1 - p)`` (0 when ``p == 1``: nothing is kept)."""
        return 0.0 if self.p == 1.0 else 1.0 / (1.0 - self.p)

    def set_mask(self, mask: np.ndarray | None) -> None:
        """Use the keep-mask ``mask`` (bool or 0/1, the input's shape) in every training forward from now on;
        ``None`` goes back to drawing a fresh mask per forward."""
        if mask is None:
            self._fixed = None
            return
        arr = np.asarray(mask)
        if not (arr.dtype == bool or np.isin(arr, (0, 1)).all()):
            raise ValueError(f"Dropout.set_mask: mask must be boolean or hold only 0 and 1, got dtype {arr.dtype}")
        self._fixed = arr.astype(bool)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x`` of any shape -> ``x * mask / (1 - p)`` in training mode, ``x`` in evaluation mode."""
        x = self._input(x)
        self._out_shape = x.shape
        if not self.training:
            self._cache = "eval"
            return x.copy()
        if self._fixed is not None:
            check_shape(self._fixed, x.shape, "Dropout.forward", "the mask given to set_mask")
            self.mask = self._fixed
        else:
            self.mask = self._rng.random(x.shape) >= self.p
        self._cache = self.mask
        return x * self.mask * x.dtype.type(self.scale)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dout`` -> ``dout * mask / (1 - p)`` (training) or ``dout`` (evaluation)."""
        dout = self._upstream(dout)
        if isinstance(self._cache, str):
            return dout.copy()
        return dout * self._cache * dout.dtype.type(self.scale)
