"""Resizing probes: which input cell nearest-neighbour resizing reads, where bilinear resizing samples
(``align_corners``), and whether down-scaling blurs first (antialiasing), in ``torch.nn.functional.interpolate``
(``torch.nn.Upsample``), ``keras.layers.Resizing`` / ``UpSampling2D`` and ``jax.image.resize``.

Every side resizes one axis only, from ``n`` to ``m`` cells, of a float64 batch of the ``n`` one-hot rows (the
other axis has one cell), so its output is the resize's interpolation matrix ``A (m, n)``, ``out = A @ x``:
nearest resizing's indices are the columns of the ones, bilinear's sample positions ``A @ arange(n)`` (the input
coordinate each output reads, 0 at the first cell's centre), and antialiasing shows as more than two taps per row.
"""

from __future__ import annotations

import numpy as np

import reference as ref

from .base import compare_key, decide, exact, import_keras, import_nnx, import_torch, probe

AREA = "transposed convolution and resizing"
NEAREST = ((3, 5), (2, 4), (5, 3), (7, 3))  # (n, m): up by 5/3 and 2, down by 3/5 and 3/7
BILINEAR = ((3, 5), (2, 4), (4, 7))  # up-scaling only: antialiasing changes nothing there
DOWN = ((8, 4), (8, 3))  # by 2, and by 8/3


def case(n: int, m: int) -> str:
    return f"{n}->{m}"


def torch_matrix(n: int, m: int, **kwargs) -> np.ndarray:
    """``A (m, n)`` of ``F.interpolate(x, size=(1, m), **kwargs)`` on ``x (n, 1, 1, n)``, the one-hot rows."""
    torch = import_torch()
    x = torch.from_numpy(np.eye(n).reshape(n, 1, 1, n))
    return torch.nn.functional.interpolate(x, size=(1, m), **kwargs).numpy().reshape(n, m).T


def keras_matrix(n: int, m: int, layer=None, **kwargs) -> np.ndarray:
    """``A (m, n)`` of a float64 ``keras.layers.Resizing(1, m, **kwargs)`` (or of ``layer``) on the one-hot rows as
    ``(n, 1, n, 1)`` NHWC."""
    keras = import_keras()
    layer = layer or keras.layers.Resizing(1, m, dtype="float64", **kwargs)
    return np.asarray(layer(np.eye(n).reshape(n, 1, n, 1))).reshape(n, m).T


def jax_matrix(n: int, m: int, method: str, **kwargs) -> np.ndarray:
    """``A (m, n)`` of ``jax.image.resize`` (float64, x64 on) on the one-hot rows as ``(n, 1, n, 1)``."""

    jnp, _ = import_nnx()
    import jax

    x = jnp.asarray(np.eye(n).reshape(n, 1, n, 1))
    return np.asarray(jax.image.resize(x, (n, 1, m, 1), method, **kwargs)).reshape(n, m).T


def reference_matrix(n: int, m: int, **kwargs) -> np.ndarray:
    """``A (m, n)`` of ``reference.Upsample(size=(1, m), **kwargs)``."""
    return ref.Upsample(size=(1, m), **kwargs).forward(np.eye(n).reshape(n, 1, 1, n)).reshape(n, m).T


def indices(a: np.ndarray) -> list[int] | None:
    """The input cell each output copies (None when ``a`` is not a selection matrix)."""
    if not (np.isin(a, (0.0, 1.0)).all() and (a.sum(axis=1) == 1).all()):
        return None
    return a.argmax(axis=1).tolist()


def nearest_rule(n: int, m: int) -> dict[str, list[int]]:
    """The two rules, in float64 numpy: PyTorch's legacy ``floor(o * n/m)`` and the half-pixel
    ``floor((o + 0.5) * n/m)``."""
    o = np.arange(m)
    return {"floor(o*n/m)": np.minimum(np.floor(o * n / m), n - 1).astype(int).tolist(),
            "floor((o+0.5)*n/m)": np.minimum(np.floor((o + 0.5) * n / m), n - 1).astype(int).tolist()}


def _nearest(fn) -> dict:
    return {case(n, m): indices(fn(n, m)) for n, m in NEAREST}


def _nearest_torch():
    return {"nearest": _nearest(lambda n, m: torch_matrix(n, m)),
            "nearest-exact": _nearest(lambda n, m: torch_matrix(n, m, mode="nearest-exact"))}


def _nearest_keras():
    keras = import_keras()
    return {"nearest": _nearest(lambda n, m: keras_matrix(n, m, interpolation="nearest")),
            "UpSampling2D(size=2)": {case(n, m): indices(keras_matrix(n, m, keras.layers.UpSampling2D(
                (1, 2), dtype="float64"))) for n, m in NEAREST if m == 2 * n}}


def _nearest_jax():
    return {"nearest": _nearest(lambda n, m: jax_matrix(n, m, "nearest"))}


def _nearest_reference():
    return {"nearest": _nearest(lambda n, m: reference_matrix(n, m)),
            "nearest-exact": _nearest(lambda n, m: reference_matrix(n, m, mode="nearest-exact")),
            "rules": {case(n, m): nearest_rule(n, m) for n, m in NEAREST}}


probe("resize-nearest", "nearest resizing: which input cell each output copies", AREA,
      f"Nearest-neighbour resizing of one axis over the sizes {', '.join(case(n, m) for n, m in NEAREST)}: the input "
      "index each output copies, with each framework's default nearest mode (PyTorch mode='nearest', Keras "
      "Resizing(interpolation='nearest'), jax.image.resize(method='nearest')), PyTorch's 'nearest-exact' and Keras' "
      "UpSampling2D.",
      "PyTorch's mode='nearest' (the default of nn.Upsample and F.interpolate) is the legacy rule "
      "floor(o * n/m): it reads the top-left cell of each output's footprint, so at fractional factors and at "
      "down-scaling it picks other cells than Keras' Resizing and jax.image.resize, which take the cell under "
      "the output's centre, floor((o + 0.5) * n/m) (here 3->5, 5->3 and 7->3 differ; at integer up-scaling, as "
      "UpSampling2D, all agree). Port a Keras or JAX nearest resize to PyTorch with mode='nearest-exact', and "
      "PyTorch's 'nearest' to them only at integer up-scaling factors. The reference has both modes "
      "(reference.Upsample(mode='nearest' | 'nearest-exact')), PyTorch's 'nearest' by default.",
      frameworks={"torch": _nearest_torch, "keras": _nearest_keras, "jax": _nearest_jax}, reference=_nearest_reference,
      verdict=compare_key("nearest", reference_equal=exact))


# -- bilinear: sample positions and align_corners -------------------------------------------------------------------
def half_pixel(n: int, m: int) -> np.ndarray:
    """Bilinear sample positions without align_corners, in float64: ``(o + 0.5) * n/m - 0.5``, clamped to
    ``[0, n - 1]``."""
    return np.clip((np.arange(m) + 0.5) * n / m - 0.5, 0, n - 1)


def _positions(fn) -> dict:
    """Per size: the sample positions ``A @ arange(n)`` and their largest distance from :func:`half_pixel`."""
    found = {}
    for n, m in BILINEAR:
        positions = fn(n, m) @ np.arange(n, dtype=np.float64)
        found[case(n, m)] = {"positions": positions,
                             "max_abs_diff_from_half_pixel": float(np.abs(positions - half_pixel(n, m)).max())}
    return found


def _bilinear_torch():
    return {"bilinear": _positions(lambda n, m: torch_matrix(n, m, mode="bilinear")),
            "align_corners=True": _positions(lambda n, m: torch_matrix(n, m, mode="bilinear", align_corners=True))}


def _bilinear_keras():
    return {"bilinear": _positions(lambda n, m: keras_matrix(n, m))}


def _bilinear_jax():
    return {"bilinear": _positions(lambda n, m: jax_matrix(n, m, "linear"))}


def _bilinear_reference():
    return {"bilinear": _positions(lambda n, m: reference_matrix(n, m, mode="bilinear")),
            "align_corners=True": _positions(lambda n, m: reference_matrix(n, m, mode="bilinear",
                                                                          align_corners=True))}


# Keras on TensorFlow computes the positions in float32 (0.40000004); the rules differ by >0.08
POSITION_TOLERANCE = 1e-6


def _same_positions(a, b) -> bool:
    return all(np.allclose(a[c]["positions"], b[c]["positions"], rtol=0, atol=POSITION_TOLERANCE) for c in a)


probe("resize-bilinear", "bilinear resizing: sample positions and align_corners", AREA,
      f"Bilinear up-scaling of one axis over the sizes {', '.join(case(n, m) for n, m in BILINEAR)} (float64): "
      "the input position each output samples, against the half-pixel rule (o + 0.5) * n/m - 0.5, for each "
      "framework's default bilinear (PyTorch align_corners=False, Keras Resizing, jax.image.resize 'linear') and "
      "PyTorch's align_corners=True.",
      "The defaults agree: all three sample at half-pixel positions (cell centres mapped onto cell centres, "
      "clamped at the borders). PyTorch's align_corners=True maps the corner cells onto each other instead, "
      "o * (n-1)/(m-1), and neither Keras' Resizing nor jax.image.resize has that option: a PyTorch model "
      "trained with align_corners=True (common in segmentation code) needs tf.compat.v1.image.resize(..., "
      "align_corners=True) or jax.image.scale_and_translate, or an explicit interpolation matrix. Keras on "
      "TensorFlow computes the positions in float32 even for a float64 layer (errors ~1e-7), so float64 "
      "comparisons of its bilinear resizing agree to float32 only (JAX with x64 on is float64 to rounding). "
      "The reference follows PyTorch, align_corners included.",
      frameworks={"torch": _bilinear_torch, "keras": _bilinear_keras, "jax": _bilinear_jax},
      reference=_bilinear_reference,
      verdict=compare_key("bilinear", equal=_same_positions, reference_equal=_same_positions))


# -- antialiasing at down-scaling -------------------------------------------------------------------------------
def _down(fn) -> dict:
    """Per size: the number of input cells each output reads, the first output's weights, and ``A`` itself
    (private, for the verdict)."""
    found = {}
    for n, m in DOWN:
        a = fn(n, m)
        found[case(n, m)] = {"taps": (np.abs(a) > 1e-12).sum(axis=1),
                             "weights_of_output_0": np.round(a[0].astype(np.float64), 6),
                             "_matrix": a}
    return found


def _public(found: dict) -> dict:
    return {c: {k: v for k, v in e.items() if not k.startswith("_")} for c, e in found.items()}


def _antialias_torch():
    default = _down(lambda n, m: torch_matrix(n, m, mode="bilinear"))
    return {"default": _public(default), "antialias=True": _public(_down(
        lambda n, m: torch_matrix(n, m, mode="bilinear", antialias=True))), "_default": default}


def _antialias_keras():
    default = _down(lambda n, m: keras_matrix(n, m))
    return {"default": _public(default), "antialias=True": _public(_down(
        lambda n, m: keras_matrix(n, m, antialias=True))), "_default": default}


def _antialias_jax():
    default = _down(lambda n, m: jax_matrix(n, m, "linear"))
    return {"default": _public(default), "antialias=False": _public(_down(
        lambda n, m: jax_matrix(n, m, "linear", antialias=False))), "_default": default}


def _antialias_reference():
    default = _down(lambda n, m: reference_matrix(n, m, mode="bilinear"))
    return {"default": _public(default), "_default": default}


# Keras' float32 coordinates (see resize-bilinear); blurred and plain weights differ by >0.07
MATRIX_TOLERANCE = 1e-6


def _same_matrices(a, b) -> bool:
    return all(np.allclose(a["_default"][c]["_matrix"], b["_default"][c]["_matrix"], rtol=0, atol=MATRIX_TOLERANCE)
               for c in a["_default"])


probe("resize-antialias", "bilinear down-scaling: antialiased by default or not", AREA,
      f"Bilinear down-scaling of one axis, {', '.join(case(n, m) for n, m in DOWN)} (float64), with each "
      "framework's default antialias setting and with the other one: how many input cells each output reads and "
      "the first output's weights.",
      "jax.image.resize antialiases by default (antialias=True): down-scaling by 2 reads 3-4 cells per output "
      "with a triangle filter stretched by the factor, where PyTorch's F.interpolate and Keras' Resizing "
      "(antialias=False by default) read the 2 cells around the sample position. With the flag set the other "
      "way the three agree (PyTorch antialias=True and Keras antialias=True give JAX's default weights; JAX "
      "antialias=False gives theirs). Up-scaling is unaffected. Pass antialias explicitly when porting "
      "any down-scaling resize (also inside image preprocessing). The reference does not antialias, as "
      "PyTorch's default.",
      frameworks={"torch": _antialias_torch, "keras": _antialias_keras, "jax": _antialias_jax},
      reference=_antialias_reference,
      verdict=lambda evidence, reference: decide(evidence, reference, _same_matrices))
