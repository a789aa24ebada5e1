"""The layers of the comparisons that Flax has no module or function for, written with ``jax.numpy`` /
``jax.lax`` the way a JAX user writes them. Channels-last: ``x (N, H, W, C)``; ``pads = ((top, bottom),
(left, right))``.

- :func:`pad_mode`: PyTorch's ``padding_mode`` (``jnp.pad`` modes ``reflect``, ``edge``, ``wrap``).
- :func:`window_max`: max pooling that Flax's ``max_pool`` cannot do: window dilation (JAX has no VJP of a
  dilated ``reduce_window`` max: ``NotImplementedError`` from ``select_and_gather``) and PyTorch's indices.
  The windows' taps are stacked by strided slices of the ``-inf``-padded input and reduced with ``argmax`` +
  ``take_along_axis``: the first maximum in window order wins and gets the whole gradient (PyTorch's rule).
- :func:`adaptive_pool`: adaptive average/max pooling, windows ``[floor(i*n/o), ceil((i+1)*n/o))`` gathered
  to the longest window and masked.
- :func:`global_max_pool`: the first maximum of each plane (``jnp.max`` would split a tie's gradient).
- :class:`MaskedDropout`: dropout with a given keep-mask, ``x * mask / (1 - p)``.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import nnx

Pads = tuple[tuple[int, int], tuple[int, int]]
JNP_PAD_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def pad_mode(x: jnp.ndarray, pads: Pads, mode: str) -> jnp.ndarray:
    """``x (N, H, W, C)`` padded by ``pads`` with PyTorch's ``padding_mode`` ``mode`` (not "zeros")."""
    if mode not in JNP_PAD_MODE:
        raise ValueError(f"pad_mode: mode must be one of {tuple(JNP_PAD_MODE)}, got {mode!r}")
    return jnp.pad(x, ((0, 0), *pads, (0, 0)), mode=JNP_PAD_MODE[mode])


def window_max(x: jnp.ndarray, kernel, stride, dilation, pads: Pads) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Max pooling of ``x (N, H, W, C)`` -> ``(out (N, H', W', C), indices (N, H', W', C))``: ``pads`` with
    ``-inf`` (the ``ceil_mode`` overhang included in bottom/right), windows of ``kernel`` taps ``dilation``
    apart every ``stride``; ``indices`` are PyTorch's flat per-plane ``row * W + col`` of each window's first
    maximum."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    n, h, w, c = x.shape
    (top, bottom), (left, right) = pads
    oh = (h + top + bottom - dh * (kh - 1) - 1) // sh + 1
    ow = (w + left + right - dw * (kw - 1) - 1) // sw + 1
    xp = jnp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=-jnp.inf)
    taps = [xp[:, a * dh:a * dh + (oh - 1) * sh + 1:sh, b * dw:b * dw + (ow - 1) * sw + 1:sw, :]
            for a in range(kh) for b in range(kw)]
    stacked = jnp.stack(taps, axis=-1)  # (N, H', W', C, kh*kw), taps in row-major window order
    first = jnp.argmax(stacked, axis=-1)
    out = jnp.take_along_axis(stacked, first[..., None], axis=-1)[..., 0]
    rows = np.arange(oh)[:, None] * sh - top + np.arange(kh)[None, :] * dh  # (H', kh)
    cols = np.arange(ow)[:, None] * sw - left + np.arange(kw)[None, :] * dw  # (W', kw)
    flat = rows[:, None, :, None] * w + cols[None, :, None, :]  # (H', W', kh, kw)
    table = jnp.asarray(flat.reshape(oh, ow, 1, kh * kw))
    indices = jnp.take_along_axis(jnp.broadcast_to(table, stacked.shape), first[..., None], axis=-1)[..., 0]
    return out, indices


def adaptive_windows(size: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """``(index (out, L), valid (out, L))``: the cells of each adaptive window ``[floor(i*size/out),
    ceil((i+1)*size/out))``, padded to the longest window ``L`` (padded entries repeat cell 0, invalid)."""
    starts = [i * size // out for i in range(out)]
    ends = [-(-(i + 1) * size // out) for i in range(out)]
    length = max(e - s for s, e in zip(starts, ends, strict=True))
    offsets = np.arange(length)[None, :]
    index = np.asarray(starts)[:, None] + offsets
    valid = index < np.asarray(ends)[:, None]
    return np.where(valid, index, 0), valid


def adaptive_pool(x: jnp.ndarray, out_hw: tuple[int, int], op: str):
    """Adaptive pooling of ``x (N, H, W, C)`` to ``out_hw``: ``op="avg"`` -> ``(N, oh, ow, C)``; ``op="max"`` ->
    ``(out, indices)`` with PyTorch's flat per-plane indices of each window's first maximum."""
    n, h, w, c = x.shape
    (ih, vh), (iw, vw) = adaptive_windows(h, out_hw[0]), adaptive_windows(w, out_hw[1])
    oh, lh, ow, lw = *ih.shape, *iw.shape
    g = x[:, ih][:, :, :, iw]  # (N, oh, Lh, ow, Lw, C)
    g = g.transpose(0, 1, 3, 5, 2, 4).reshape(n, oh, ow, c, lh * lw)
    valid = (vh[:, None, :, None] & vw[None, :, None, :]).reshape(oh, ow, 1, lh * lw)
    if op == "avg":
        return jnp.where(valid, g, 0).sum(axis=-1) / jnp.asarray(valid.sum(axis=-1), x.dtype)  # counts: x's dtype
    masked = jnp.where(valid, g, -jnp.inf)
    first = jnp.argmax(masked, axis=-1)
    out = jnp.take_along_axis(masked, first[..., None], axis=-1)[..., 0]
    table = jnp.asarray((ih[:, None, :, None] * w + iw[None, :, None, :]).reshape(oh, ow, 1, lh * lw))
    indices = jnp.take_along_axis(jnp.broadcast_to(table, masked.shape), first[..., None], axis=-1)[..., 0]
    return out, indices


def global_max_pool(x: jnp.ndarray) -> jnp.ndarray:
    """``(N, H, W, C) -> (N, C)``: each plane's first maximum (its gradient goes to that cell only)."""
    n, h, w, c = x.shape
    flat = x.reshape(n, h * w, c)
    first = jnp.argmax(flat, axis=1)
    return jnp.take_along_axis(flat, first[:, None, :], axis=1)[:, 0, :]


class Mask(nnx.Variable):
    """A dropout keep-mask: neither a parameter nor a batch statistic."""


class MaskedDropout(nnx.Module):
    """Inverted dropout with a given keep-mask ``(N, ...)`` in the model's layout: ``x * mask / (1 - p)``
    (what ``nnx.Dropout`` computes with its own random mask)."""

    def __init__(self, p: float, mask: jnp.ndarray) -> None:
        self.p, self.mask = p, Mask(mask)

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        return x * self.mask[...].astype(x.dtype) / (1 - self.p)
