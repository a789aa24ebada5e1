"""The interface every layer shares: ``forward``, ``backward``, ``params``, ``grads``, ``buffers``.

As in the tutorial, ``forward(x)`` caches what ``backward`` needs and
``backward(dout)`` returns ``dx``; parameter gradients land in ``self.grads``
under the same keys as ``self.params``. ``buffers`` hold state that is not trained
(batch norm's running statistics), as PyTorch's buffers.

Aliasing: the array ``forward`` returns belongs to the caller, who may change it in place before
``backward``. Like the tutorial, a layer may keep a reference to (a view of) its *input* until
``backward``: change an input in place only after the backward pass (PyTorch raises in that case;
numpy cannot tell).
"""

from __future__ import annotations

import numpy as np

from .validation import FLOAT_CHARS, as_float_array, check_ndim, check_shape


class Layer:
    """Base class: parameter and buffer dicts, the forward cache and the checks around them."""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.training = True
        self._cache = None
        self._out_shape: tuple[int, ...] | None = None

    @property
    def name(self) -> str:
        return type(self).__name__

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def train(self, mode: bool = True) -> Layer:
        """Switch between training and evaluation behaviour (as ``torch.nn.Module.train``)."""
        self.training = mode
        return self

    def eval(self) -> Layer:
        return self.train(False)

    def forward(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    # -- helpers for subclasses -------------------------------------------------
    # The checks below run on every call; each first tests the common case (an ndarray of the
    # expected dtype and shape) inline and only then calls the validators, which raise the errors.
    def _input(self, x, dtype=None) -> np.ndarray:
        """Validate ``x`` as a real float array, cast to ``dtype`` when given."""
        if type(x) is not np.ndarray or x.dtype.char not in FLOAT_CHARS:
            x = as_float_array(x, f"{self.name}.forward", "x")
        return x if dtype is None or x.dtype == dtype else x.astype(dtype)

    def _upstream(self, dout) -> np.ndarray:
        """Validate ``dout`` against the last forward's output and return it."""
        if self._cache is None:
            raise RuntimeError(f"{self.name}.backward called before forward")
        if type(dout) is not np.ndarray or dout.dtype.char not in FLOAT_CHARS:
            dout = as_float_array(dout, f"{self.name}.backward", "dout")
        if dout.shape != self._out_shape:
            check_shape(dout, self._out_shape, f"{self.name}.backward", "dout")
        return dout

    def _param(self, key: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        """``self.params[key]`` checked against ``shape`` and seen in ``dtype``."""
        arr = self.params.get(key)
        if arr is None:
            raise KeyError(f"{self.name}.forward: params has no {key!r} (it has {sorted(self.params)})")
        if type(arr) is np.ndarray and arr.dtype == dtype and arr.shape == shape:
            return arr
        arr = as_float_array(arr, f"{self.name}.forward", f"params[{key!r}]")
        check_shape(arr, shape, f"{self.name}.forward", f"params[{key!r}]")
        return arr.astype(dtype, copy=False)


class SpatialLayer(Layer):
    """A layer on images: accepts one ``(C, H, W)`` image or an ``(N, C, H, W)`` batch.

    Kernels always see a batch; a single image gets a batch axis of 1 on the way in
    and loses it on the way out (and the same for ``dout``/``dx`` in backward).
    """

    def _batch(self, x: np.ndarray) -> tuple[np.ndarray, bool]:
        check_ndim(x, (3, 4), f"{self.name}.forward", "x", "(C,H,W) or (N,C,H,W)")
        single = x.ndim == 3
        return (x[np.newaxis] if single else x), single

    def _finish_forward(self, out: np.ndarray, single: bool) -> np.ndarray:
        out = out[0] if single else out
        self._out_shape = out.shape
        return out
