"""The interface every layer shares: ``forward``, ``backward``, ``params``, ``grads``, ``buffers``.

As in the tutorial, ``forward(x)`` caches what ``backward`` needs and
``backward(dout)`` returns ``dx``; parameter gradients land in ``self.grads``
under the same keys as ``self.params``. ``buffers`` hold state that is not trained
(batch norm's running statistics), as PyTorch's buffers.

The rules every layer follows (:class:`Layer` enforces the shared ones for every subclass):

- **One forward's cache.** A layer keeps the cache of its latest ``forward``; ``backward`` differentiates
  that forward. ``backward`` before any forward raises RuntimeError; ``backward`` twice repeats the same
  gradients (it reads the cache, never consumes it).
- **Parameters as they were at forward.** ``backward`` uses the parameter values the forward computed
  with, in both implementations: a parameter changed in place or replaced between ``forward`` and
  ``backward`` (an optimizer step, a hand edit) takes effect at the next forward. (PyTorch refuses that
  backward with "modified by an inplace operation"; numpy arrays carry no version counter to detect it,
  so the reference keeps the values it used.)
- **Threads.** Calls on one instance are serialised (a lock per instance), so concurrent ``forward``
  calls from several threads each get their own correct output (inference). A cache belongs to the
  thread whose forward made it: ``backward`` from another thread raises RuntimeError, as does a backward
  whose forward was overwritten by another thread's. To train in several threads, give each thread its
  own copy (``copy.deepcopy(layer)``).
- **One place in a model.** :class:`~reference.model.Sequential` refuses the same instance twice, and its
  ``backward`` raises when one of its layers ran another forward (e.g. in a second model sharing it)
  since its own forward: that layer's cache no longer belongs to this pass.
- **Copies.** ``copy.copy`` is refused (a shallow copy would share caches and buffers with the
  original); ``copy.deepcopy`` and ``pickle`` give an independent layer that computes exactly like the
  original, including a backward of a forward run before the copy.
- **Aliasing.** The array ``forward`` returns belongs to the caller, who may change it in place before
  ``backward``. Like the tutorial, a layer may keep a reference to (a view of) its *input* until
  ``backward``: change an input in place only after the backward pass (PyTorch raises in that case;
  numpy cannot tell).
"""

from __future__ import annotations

import functools
import threading

import numpy as np

from .validation import FLOAT_CHARS, as_float_array, canonical, check_ndim, check_shape


def _guard_forward(forward):
    """Wrap a subclass's ``forward``: run it under the instance's lock, then record which pass and which
    thread the cache belongs to."""

    @functools.wraps(forward)
    def guarded(self, x, *args, **kwargs):
        with self._lock:
            out = forward(self, x, *args, **kwargs)
            self._cache_owner = threading.get_ident()
            self.forward_token = object()
            return out

    guarded.guarded = True
    return guarded


def _guard_backward(backward):
    """Wrap a subclass's ``backward``: run it under the instance's lock, from the thread whose forward made
    the cache (see the module docstring)."""

    @functools.wraps(backward)
    def guarded(self, dout, *args, **kwargs):
        with self._lock:
            owner = self._cache_owner
            if owner is not None and owner != threading.get_ident():
                raise RuntimeError(
                    f"{self.name}.backward: called in thread {threading.get_ident()}, but this layer's cached forward "
                    f"ran in thread {owner}; one instance holds one forward's cache, so threads that train "
                    f"need a copy each (copy.deepcopy(layer))")
            return backward(self, dout, *args, **kwargs)

    guarded.guarded = True
    return guarded


class Layer:
    """Base class: parameter and buffer dicts, the forward cache and the checks around them.

    Every subclass's ``forward`` and ``backward`` are wrapped (in :meth:`__init_subclass__`) to follow the
    thread rule of the module docstring. ``forward_token`` is a fresh object per forward pass (None before
    the first), so that a model can tell whether a layer's cache is still the one its own forward made; a
    deep copy or pickle of a model maps each token to one copy, so the copy still matches.
    """

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.training = True
        self._cache = None
        self._out_shape: tuple[int, ...] | None = None
        self._lock = threading.RLock()
        self._cache_owner: int | None = None
        self.forward_token: object | None = None

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        for name, guard in (("forward", _guard_forward), ("backward", _guard_backward)):
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "guarded", False):
                setattr(cls, name, guard(method))

    # -- copies ------------------------------------------------------------------
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()
        self._cache_owner = None  # a copy belongs to no thread yet: any thread may run its backward

    def __copy__(self):
        raise TypeError(f"{self.name}: copy.copy would share the forward cache and buffers with the original; "
                        f"use copy.deepcopy")

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
        """Validate ``x`` as a real float array, cast to ``dtype`` when given; see :func:`canonical`."""
        if type(x) is np.ndarray and x.dtype is dtype and x.flags.c_contiguous:
            return x  # the common case at once: ``dtype`` is one of numpy's own (native) float dtypes
        if type(x) is not np.ndarray or x.dtype.char not in FLOAT_CHARS:
            x = as_float_array(x, f"{self.name}.forward", "x")
        x = canonical(x)
        return x if dtype is None or x.dtype == dtype else x.astype(dtype)

    def _upstream(self, dout, dtype=None) -> np.ndarray:
        """Validate ``dout`` against the last forward's output and return it, cast to ``dtype`` when given."""
        if self._cache is None:
            raise RuntimeError(f"{self.name}.backward called before forward")
        if (type(dout) is np.ndarray and dout.dtype is dtype and dout.shape == self._out_shape
                and dout.flags.c_contiguous):
            return dout  # the common case at once, as in _input
        if type(dout) is not np.ndarray or dout.dtype.char not in FLOAT_CHARS:
            dout = as_float_array(dout, f"{self.name}.backward", "dout")
        if dout.shape != self._out_shape:
            check_shape(dout, self._out_shape, f"{self.name}.backward", "dout")
        dout = canonical(dout)
        return dout if dtype is None else dout.astype(dtype, copy=False)

    def _param(self, key: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        """``self.params[key]`` checked against ``shape`` and seen in ``dtype``."""
        arr = self.params.get(key)
        if arr is None:
            raise KeyError(f"{self.name}.forward: params has no {key!r} (it has {sorted(self.params)})")
        if type(arr) is np.ndarray and arr.dtype == dtype and arr.shape == shape and arr.flags.c_contiguous:
            return arr
        arr = as_float_array(arr, f"{self.name}.forward", f"params[{key!r}]")
        check_shape(arr, shape, f"{self.name}.forward", f"params[{key!r}]")
        return canonical(arr).astype(dtype, copy=False)


class SpatialLayer(Layer):
    """A layer on images: accepts one ``(C, H, W)`` image or an ``(N, C, H, W)`` batch.

    Kernels always see a batch; a single image gets a batch axis of 1 on the way in
    and loses it on the way out (and the same for ``dout``/``dx`` in backward).
    """

    def _batch(self, x: np.ndarray) -> tuple[np.ndarray, bool]:
        if x.ndim == 4:
            return x, False
        check_ndim(x, (3, 4), f"{self.name}.forward", "x", "(C,H,W) or (N,C,H,W)")
        return x[np.newaxis], True

    def _finish_forward(self, out: np.ndarray, single: bool) -> np.ndarray:
        out = out[0] if single else out
        self._out_shape = out.shape
        return out
