"""Transposed-convolution probes: the output size and the crop each framework's padding makes, and the kernel's
layout and spatial orientation (``torch.nn.ConvTranspose2d``, ``keras.layers.Conv2DTranspose``,
``flax.nnx.ConvTranspose``).

Every side runs on a float64 ``x (1, C, n, n)`` of small integers with an integer kernel, so every output is
exact and can be matched cell for cell against the *full* transposed convolution computed here in numpy,
:func:`full_transpose` (PyTorch's definition with no padding: input cell ``(i, j)`` adds ``x[i, j] * w[a, b]`` to
output cell ``(i*s + a, j*s + b)``, of size ``(n - 1)*s + k``). :func:`crop_of` finds where a framework's output
sits in it: the rows and columns cut from each side (negative: zero rows added beyond it).
"""

from __future__ import annotations

import numpy as np

import reference as ref

from .base import MISSING, Decision, agreement, import_keras, import_nnx, import_torch, matching, probe

AREA = "transposed convolution and resizing"
CROP = {"n": 5, "s": 2, "c": 1, "f": 1}
CONFIGS = {"valid k3": (3, "valid", 0), "valid k3 output_padding 1": (3, "valid", 1), "valid k1": (1, "valid", 0),
           "same k3": (3, "same", None), "same k4": (4, "same", None)}  # name -> (k, mode, output_padding)
EXPLICIT = "PyTorch's padding p and output_padding as pairs (k-1-p, k-1-p+output_padding)"
KERNEL = {"n": 4, "s": 2, "c_in": 2, "c_out": 5, "kh": 3, "kw": 4}  # every kernel dim a different size


def _ints(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Float64 integers in [-4, 4] (seeded): sums of their products are exact in any float type."""
    return np.random.default_rng(seed).integers(-4, 5, shape).astype(np.float64)


def full_transpose(x: np.ndarray, w: np.ndarray, s: int) -> np.ndarray:
    """``x (N, C, H, W)``, ``w (C, F, kh, kw)`` -> ``(N, F, (H-1)*s + kh, (W-1)*s + kw)``: every input cell scatters
    its products with the kernel to the output, windows ``s`` apart (no padding, no crop)."""
    n, _, h, wd = x.shape
    _, f, kh, kw = w.shape
    out = np.zeros((n, f, (h - 1) * s + kh, (wd - 1) * s + kw))
    for a in range(kh):
        for b in range(kw):
            out[:, :, a:a + (h - 1) * s + 1:s, b:b + (wd - 1) * s + 1:s] += np.einsum("nchw,cf->nfhw", x, w[:, :, a, b])
    return out


def crop_of(out: np.ndarray, full: np.ndarray) -> list[int] | None:
    """``[top, bottom, left, right]``: the rows/columns of ``full (N, F, Hf, Wf)`` cut off on each side to give
    ``out (N, F, Ho, Wo)`` exactly; a negative number is zero rows added beyond ``full``; None when ``out`` is no
    such window of ``full``."""
    margin = 3
    (hf, wf), (ho, wo) = full.shape[2:], out.shape[2:]
    padded = np.pad(full, ((0, 0), (0, 0), (margin, margin), (margin, margin)))
    for top in range(padded.shape[2] - ho + 1):
        for left in range(padded.shape[3] - wo + 1):
            if np.array_equal(padded[:, :, top:top + ho, left:left + wo], out):
                t, lft = top - margin, left - margin
                return [t, hf - t - ho, lft, wf - lft - wo]
    return None


def torch_arguments(k: int, mode: str, output_padding: int | None) -> tuple[int, int]:
    """``(padding, output_padding)`` of PyTorch's port of a config: 0 and the given one for ``"valid"``; for
    ``"same"`` the smallest padding with an output of ``n * s``, ``2*padding - output_padding = k - s``."""
    if mode == "valid":
        return 0, output_padding
    padding = -(-(k - CROP["s"]) // 2)
    return padding, 2 * padding - (k - CROP["s"])


def _crop_problem(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``x (1, 1, n, n)``, ``w (1, 1, k, k)`` and their full transposed convolution."""
    x, w = _ints((1, CROP["c"], CROP["n"], CROP["n"]), 11), _ints((CROP["c"], CROP["f"], k, k), 12 + k)
    return x, w, full_transpose(x, w, CROP["s"])


def _crop_evidence(run) -> dict:
    """``run(x, w, k, mode, output_padding) -> (out (N, F, H, W), arguments)`` (None when the framework has no
    such argument) for each config -> out size, crop and the arguments used."""
    found = {}
    for name, (k, mode, op) in CONFIGS.items():
        x, w, full = _crop_problem(k)
        result = run(x, w, k, mode, op)
        if result is not None:
            out, arguments = result
            found[name] = {"arguments": arguments, "out_size": out.shape[2], "full_size": full.shape[2],
                           "crop": crop_of(out, full)}
    return found


def torch_transpose(x: np.ndarray, w: np.ndarray, s: int, padding: int, output_padding: int) -> np.ndarray:
    torch = import_torch()
    return torch.nn.functional.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w), stride=s, padding=padding,
                                                output_padding=output_padding).numpy()


def _crop_torch():
    def run(x, w, k, mode, op):
        padding, output_padding = torch_arguments(k, mode, op)
        return (torch_transpose(x, w, CROP["s"], padding, output_padding),
                f"padding={padding}, output_padding={output_padding}")

    return _crop_evidence(run)


def keras_transpose(x: np.ndarray, w: np.ndarray, s: int, padding: str, output_padding: int | None) -> np.ndarray:
    """``x (N, C, H, W)``, ``w (C, F, kh, kw)`` (PyTorch's layout) through a float64 ``Conv2DTranspose`` whose
    kernel is ``(kh, kw, F, C)``."""
    keras = import_keras()
    layer = keras.layers.Conv2DTranspose(w.shape[1], w.shape[2:], strides=s, padding=padding,
                                         output_padding=output_padding, use_bias=False, dtype="float64")
    layer.build((None, *x.shape[2:], x.shape[1]))
    layer.kernel.assign(w.transpose(2, 3, 1, 0))
    return np.asarray(layer(x.transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)


def _crop_keras():
    def run(x, w, k, mode, op):
        output_padding = op or None
        return (keras_transpose(x, w, CROP["s"], mode, output_padding),
                f"padding={mode!r}, output_padding={output_padding}")

    return _crop_evidence(run)


def flax_transpose(x: np.ndarray, w: np.ndarray, s: int, padding, transpose_kernel: bool) -> tuple[list, np.ndarray]:
    """``x (N, C, H, W)``, ``w (C, F, kh, kw)`` through ``nnx.ConvTranspose``: its kernel's layout is read from the
    layer (:func:`layout_of`; every dim of ``w`` a different size, or ``C = F = 1``) and ``w`` is loaded axis by
    axis into it. Returns the kernel's shape and the output ``(N, F, H', W')``."""

    jnp, nnx = import_nnx()
    layer = nnx.ConvTranspose(w.shape[0], w.shape[1], w.shape[2:], strides=s, padding=padding, use_bias=False,
                              transpose_kernel=transpose_kernel, param_dtype=jnp.float64, rngs=nnx.Rngs(0))
    shape = tuple(layer.kernel[...].shape)
    single = w.shape[:2] == (1, 1)
    layer.kernel[...] = jnp.asarray(w.reshape(shape) if single else to_layout(w, layout_of(shape, w.shape)))
    return list(shape), np.asarray(layer(jnp.asarray(x.transpose(0, 2, 3, 1)))).transpose(0, 3, 1, 2)


def _crop_jax():
    def run(x, w, k, mode, op):
        if op:
            return None  # nnx.ConvTranspose has no output_padding argument
        # transpose_kernel=True: PyTorch's orientation (conv-transpose-kernel), so that only the crop is compared
        return (flax_transpose(x, w, CROP["s"], mode.upper(), True)[1],
                f"padding={mode.upper()!r}, transpose_kernel=True")

    def pairs(x, w, k, mode, op):
        p, op_ = torch_arguments(k, mode, op)
        low, high = k - 1 - p, k - 1 - p + op_
        return (flax_transpose(x, w, CROP["s"], ((low, high), (low, high)), True)[1],
                f"padding=(({low}, {high}), ({low}, {high})), transpose_kernel=True")

    return {**_crop_evidence(run), EXPLICIT: _crop_evidence(pairs)}


def _crop_reference():
    def run(x, w, k, mode, op):
        padding, output_padding = torch_arguments(k, mode, op)
        layer = ref.ConvTranspose2d(w.shape[0], w.shape[1], k, stride=CROP["s"], padding=padding,
                                    output_padding=output_padding, bias=False)
        layer.params["weight"] = w
        return layer.forward(x), f"padding={padding}, output_padding={output_padding}"

    return _crop_evidence(run)


def _same_crops(a: dict, b: dict) -> bool:
    """Every config both sides report has the same output size and crop (and there is at least one)."""
    shared = [name for name in CONFIGS if name in a and name in b]
    return bool(shared) and all((a[n]["out_size"], a[n]["crop"]) == (b[n]["out_size"], b[n]["crop"]) for n in shared)


@probe("conv-transpose-padding", "transposed convolution: output size and where padding crops", AREA,
       f"A transposed convolution of a {CROP['n']}x{CROP['n']} input, stride {CROP['s']}, in configurations named "
       "after Keras' padding: 'valid' (PyTorch padding=0), with output_padding=1, with a 1x1 kernel, and 'same' "
       "for kernels 3 and 4 (PyTorch: the padding and output_padding that give n*s). Each output is located in "
       "the uncropped (full) transposed convolution: rows cut at the top and bottom (negative: zero rows added).",
       "An output of n*s is made by different crops. Keras' padding='same' (and Flax's 'SAME') cuts the odd "
       "extra row at the bottom/right; PyTorch's padding cuts both sides equally and output_padding gives one "
       "row back at the bottom, so for k - s odd (kernel 3, stride 2) the PyTorch port (padding=1, "
       "output_padding=1) is shifted one pixel against Keras 'same': same shape, different numbers. For even "
       "k - s (kernel 4, stride 2) they agree. With 'valid' and k < s, Keras and Flax return n*s rows (s - k "
       "zero rows at the end) where PyTorch returns (n-1)*s + k (output_padding = s - k adds them). Port Keras "
       "'same' to PyTorch with padding=0 and crop the output yourself, [top:top + n*s] with top = (k-s)//2. "
       "Flax's nnx.ConvTranspose has no output_padding: explicit padding pairs (k-1-p, k-1-p+output_padding) "
       "reproduce PyTorch's padding p and output_padding (with transpose_kernel=True, see "
       "conv-transpose-kernel). The reference takes PyTorch's arguments.",
       frameworks={"torch": _crop_torch, "keras": _crop_keras, "jax": _crop_jax}, reference=_crop_reference)
def _crop_verdict(evidence: dict, reference: dict) -> Decision:
    return Decision(agreement(evidence, _same_crops), matching(reference, evidence, _same_crops))


# -- kernel layout and orientation ------------------------------------------------------------------------------------
AXES = ("C_in", "C_out", "kh", "kw")  # PyTorch's weight axes, in its order


def layout_of(shape: tuple[int, ...], torch_shape: tuple[int, ...]) -> list[str]:
    """The axis names of a kernel ``shape`` (every dim a different size) by the sizes of PyTorch's ``(C_in, C_out,
    kh, kw)`` ``torch_shape``."""
    names = dict(zip(torch_shape, AXES, strict=True))
    return [names.get(size, f"? ({size})") for size in shape]


def to_layout(w: np.ndarray, layout: list[str]) -> np.ndarray:
    """``w (C_in, C_out, kh, kw)`` with its axes reordered to ``layout``."""
    return w.transpose([AXES.index(name) for name in layout])


def _kernel_problem() -> tuple[np.ndarray, np.ndarray]:
    k = KERNEL
    return _ints((1, k["c_in"], k["n"], k["n"]), 21), _ints((k["c_in"], k["c_out"], k["kh"], k["kw"]), 22)


def orientation(out: np.ndarray, x: np.ndarray, w: np.ndarray) -> str:
    """How ``out`` (a 'valid' transposed convolution of ``x`` with ``w`` loaded in the framework's layout) uses the
    kernel: as PyTorch does (:func:`full_transpose`), or spatially flipped."""
    if out.shape == full_transpose(x, w, KERNEL["s"]).shape:
        if np.array_equal(out, full_transpose(x, w, KERNEL["s"])):
            return "as PyTorch"
        if np.array_equal(out, full_transpose(x, w[:, :, ::-1, ::-1], KERNEL["s"])):
            return "flipped (kh and kw reversed)"
    return "neither"


def _kernel_evidence(kernel_shape: tuple[int, ...], out: np.ndarray) -> dict:
    x, w = _kernel_problem()
    return {"kernel_shape": list(kernel_shape), "layout": layout_of(kernel_shape, w.shape),
            "orientation": orientation(out, x, w)}


def _kernel_torch():
    torch = import_torch()
    x, w = _kernel_problem()
    layer = torch.nn.ConvTranspose2d(w.shape[0], w.shape[1], w.shape[2:], stride=KERNEL["s"])
    return _kernel_evidence(tuple(layer.weight.shape), torch_transpose(x, w, KERNEL["s"], 0, 0))


def _kernel_keras():
    keras = import_keras()
    x, w = _kernel_problem()
    layer = keras.layers.Conv2DTranspose(w.shape[1], w.shape[2:], strides=KERNEL["s"])
    layer.build((None, *x.shape[2:], x.shape[1]))
    return _kernel_evidence(tuple(layer.kernel.shape), keras_transpose(x, w, KERNEL["s"], "valid", None))


def _kernel_jax():
    x, w = _kernel_problem()

    def measured(flag: bool) -> dict:
        shape, out = flax_transpose(x, w, KERNEL["s"], "VALID", flag)
        return _kernel_evidence(tuple(shape), out)

    return {**measured(False), "transpose_kernel=True": measured(True)}


def _kernel_reference():
    x, w = _kernel_problem()
    layer = ref.ConvTranspose2d(w.shape[0], w.shape[1], w.shape[2:], stride=KERNEL["s"], bias=False)
    shape = layer.params["weight"].shape
    layer.params["weight"] = w
    return _kernel_evidence(shape, layer.forward(x))


def _same_orientation(a: dict, b: dict) -> bool:
    return a.get("orientation", MISSING) == b.get("orientation", MISSING)


@probe("conv-transpose-kernel", "transposed convolution: kernel layout and orientation", AREA,
       f"A 'valid' transposed convolution, {KERNEL['c_in']} -> {KERNEL['c_out']} channels, kernel "
       f"{KERNEL['kh']}x{KERNEL['kw']}, stride {KERNEL['s']}: the kernel's shape (its axes named by their sizes), "
       "and, with PyTorch's weight loaded axis by axis into that layout, whether the output uses the kernel as "
       "PyTorch does or spatially flipped (Flax with its default transpose_kernel=False and with True).",
       "PyTorch's weight is (C_in, C_out, kh, kw) and Keras' kernel (kh, kw, C_out, C_in): both are the "
       "gradient of a convolution and use the kernel the same way round, so a port is w.transpose(2, 3, 1, 0). "
       "Flax's nnx.ConvTranspose (lax.conv_transpose) defaults to transpose_kernel=False: its kernel is "
       "(kh, kw, C_in, C_out) and it correlates the dilated input with the kernel as stored, i.e. PyTorch's "
       "kernel flipped in both spatial axes. Port PyTorch weights to Flax as w[:, :, ::-1, ::-1].transpose(2, 3, "
       "0, 1), or build with transpose_kernel=True and load w.transpose(2, 3, 1, 0) as for Keras. The "
       "reference stores PyTorch's layout and orientation.",
       frameworks={"torch": _kernel_torch, "keras": _kernel_keras, "jax": _kernel_jax}, reference=_kernel_reference)
def _kernel_verdict(evidence: dict, reference: dict) -> Decision:
    return Decision(agreement(evidence, _same_orientation), matching(reference, evidence, _same_orientation))
