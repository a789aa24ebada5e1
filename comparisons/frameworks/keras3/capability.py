"""What Keras can express of a case, and the reference conventions it computes, on the backend Keras was imported
with (``keras.backend.backend()``): the walk through a case's layers (each with its record of
:data:`.kinds.KERAS_KINDS` and its per-sample shapes), the case's reason (the cross-entropy option's, then the
first layer's), the convention switches (:func:`reference_case`), the float64 gaps per backend
(:func:`dtype_reason`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import keras
import numpy as np

from comparisons.cases import Case, LayerSpec, build_layer

from .kinds import KERAS_KINDS, KerasKind, Shape, keras_kind
from .losses import cross_entropy_reason


def _reference_output(s: LayerSpec, x: np.ndarray) -> np.ndarray:
    """The reference layer of ``s`` on ``x`` in evaluation mode (the shapes are those of training mode), its output
    only (without a max pool's indices)."""
    out = build_layer(s, "im2col", np.float64, np.random.default_rng(0)).eval()(x)
    return out[0] if isinstance(out, tuple) else out


def _walk(specs: tuple[LayerSpec, ...],
          sample_shape: Shape) -> Iterator[tuple[int, LayerSpec, KerasKind, Shape, Shape]]:
    """Yield ``(index, spec, record, in_shape, out_shape)``: each layer's :class:`~.kinds.KerasKind` (ValueError for
    a kind Keras does not build) and its per-sample shapes ``(C, H, W)`` or ``(D,)``, the reference's on a zero
    sample (Keras computes the reference's shapes or the layer's reason says why not)."""
    x = np.zeros((1, *sample_shape))
    for i, s in enumerate(specs):
        record = keras_kind(s.kind)
        out = _reference_output(s, x)
        yield i, s, record, x.shape[1:], out.shape[1:]
        x = out


def _keras_convention(s: LayerSpec) -> LayerSpec:
    """One spec with the reference's convention switches set to what Keras computes (its record's ``convention``;
    a kind Keras does not build is left as it is)."""
    record = KERAS_KINDS.get(s.kind)
    return s if record is None else record.convention(s)


def reference_case(case: Case) -> Case:
    """``case`` as Keras computes it: batch norm with the biased moving variance (``unbiased_running_var=False``),
    LeakyReLU with its slope rounded to float32 (see :mod:`.model`)."""
    specs = tuple(_keras_convention(s) for s in case.specs)
    return dataclasses.replace(case, specs=specs) if specs != case.specs else case


# What Keras computes in float32 when given float64, per backend (measured: float32-level errors, ~1e-7, in
# ``cnnref verify``; the audit's probe keras-backend-float64): its ``keras.backend.result_type`` maps float64 to
# float32 on every backend but TensorFlow, and these ops cast to that type.
FLOAT32_IN_FLOAT64 = {
    "jax": {"globalavgpool": "GlobalAveragePooling2D (ops.mean)", "tanh": "tanh (ops.tanh)",
            "batchnorm (training)": "BatchNormalization", "batchnorm": "BatchNormalization"},
    "torch": {"linear": "Dense (ops.matmul)", "globalavgpool": "GlobalAveragePooling2D (ops.mean)",
              "batchnorm (training)": "BatchNormalization", "batchnorm": "BatchNormalization",
              "loss": "the cross-entropy"},
}


def dtype_reason(case: Case, dtype: str) -> str | None:
    """Why Keras on this backend cannot compute ``case`` in ``dtype`` (:data:`FLOAT32_IN_FLOAT64`), or None."""
    backend = keras.backend.backend()
    if dtype != "float64" or backend not in FLOAT32_IN_FLOAT64:
        return None
    table = FLOAT32_IN_FLOAT64[backend]
    kinds = [f"{s.kind} (training)" if s.kind == "batchnorm" and not case.eval_mode else s.kind for s in case.specs]
    kinds += ["loss"] if case.loss else []
    what = list(dict.fromkeys(table[kind] for kind in kinds if kind in table))
    if not what:
        return None
    return (f"Keras {keras.__version__} on {backend} computes float64 in float32 in {', '.join(what)}: "
            "keras.backend.result_type maps float64 to float32 off TensorFlow")


def unsupported(case: Case) -> str | None:
    """Why Keras cannot express ``case`` exactly, or None."""
    reason = cross_entropy_reason(case.loss_option) if case.loss_option is not None else None
    if reason is not None:
        return f"cross-entropy: {reason}"
    sample = case.input_shape if case.single else case.input_shape[1:]
    for i, s, record, in_shape, _ in _walk(case.specs, sample):
        reason = record.reason(s, in_shape)
        if reason is not None:
            return f"layer {i} ({s.kind}): {reason}"
    return None
