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
from .losses import binary_cross_entropy_reason, cross_entropy_reason


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
    LeakyReLU with its slope rounded to float32 (see :mod:`.model`), Hardsigmoid's float32 ``1/6`` in its gradient
    on torch (``float32_slope=True``), the binary cross-entropy on probabilities clipped to ``[eps, 1 - eps]``
    (``clip_epsilon=keras.config.epsilon()``, 1e-7)."""
    specs = tuple(_keras_convention(s) for s in case.specs)
    case = dataclasses.replace(case, specs=specs) if specs != case.specs else case
    option = case.binary_loss
    if option is not None and not option.logits and option.clip_epsilon is None:
        case = dataclasses.replace(case, loss=dataclasses.replace(option, clip_epsilon=keras.config.epsilon()))
    return case


# What Keras computes in float32 when given float64, per backend (measured: float32-level errors, ~1e-7, in
# ``cnnref verify``; the audit's probe keras-backend-float64): its ``keras.backend.result_type`` maps float64 to
# float32 on every backend but TensorFlow, and these ops cast to that type.
FLOAT32_IN_FLOAT64 = {
    "jax": {"globalavgpool": "GlobalAveragePooling2D (ops.mean)", "tanh": "tanh (ops.tanh)",
            "batchnorm (training)": "BatchNormalization", "batchnorm": "BatchNormalization",
            "layernorm": "LayerNormalization", "groupnorm": "GroupNormalization",
            "binary loss": "the binary cross-entropy (ops.mean over its last axis)"},
    "torch": {"linear": "Dense (ops.matmul)", "globalavgpool": "GlobalAveragePooling2D (ops.mean)",
              "batchnorm (training)": "BatchNormalization", "batchnorm": "BatchNormalization",
              "layernorm": "LayerNormalization", "groupnorm": "GroupNormalization", "loss": "the cross-entropy",
              "binary loss": "the binary cross-entropy (ops.mean over its last axis)"},
}




def _softmax_axis_of_one(kw: dict, batch_shape: Shape) -> bool:
    """A softmax along an axis of length 1 (its output is 1, its exact gradient 0)."""
    return batch_shape[kw.get("dim", 1) % len(batch_shape)] == 1


# Where a backend computes a layer of a kind otherwise than the reference, beyond rounding, in one dtype (each
# measured in ``cnnref verify``): backend -> (dtype, kind, applies(spec kwargs, the layer's batched input shape),
# what happens).
PRECISION_LIMITS = {
    "tensorflow": (
        ("float64", "gelu", lambda kw, shape: True,
         "tf.nn.gelu (keras.activations.gelu) casts its constants (1/sqrt(2); 0.044715) to float64 through "
         "float32 (math_ops.cast of a Python float): float64 GELU is off by up to 5e-9 relative"),
        ("float64", "upsample", lambda kw, shape: kw["mode"] == "bilinear",
         "tf.image.resize's bilinear kernel (ResizeBilinear) computes in float32 and returns float32: float64 "
         "bilinear resizing is float32-precise (3e-7 relative)"),
        ("float32", "softmax", _softmax_axis_of_one,
         "TensorFlow's float32 softmax multiplies by the reciprocal of the sum: along an axis of length 1 it "
         "returns 0.99999994 for some inputs (not 1), and its gradient is then 2.4e-7 * dout (not 0)"),
    ),
    "jax": (
        ("float64", "gelu", lambda kw, shape: kw.get("approximate", "none") == "tanh",
         "the autodiff derivative of jax.nn.gelu(approximate=True) (through 1 - tanh(u)**2) is up to 1.9e-14 "
         "relative from the exact derivative at inputs of scale 5, above float64's tolerance"),
    ),
}


def _precision_reason(case: Case, dtype: str) -> str | None:
    """The first layer of ``case`` that :data:`PRECISION_LIMITS` holds for this backend and ``dtype``, with why."""
    backend = keras.backend.backend()
    limits = [limit for limit in PRECISION_LIMITS.get(backend, ()) if limit[0] == dtype]
    if not limits:
        return None
    sample = case.input_shape if case.single else case.input_shape[1:]
    batch = 1 if case.single else case.input_shape[0]
    for i, s, _, in_shape, _ in _walk(case.specs, sample):
        for _, kind, applies, what in limits:
            if s.kind == kind and applies(s.kwargs, (batch, *in_shape)):
                return f"layer {i} ({kind}): Keras {keras.__version__} on {backend}, {dtype}: {what}"
    return None


def dtype_reason(case: Case, dtype: str) -> str | None:
    """Why Keras on this backend cannot compute ``case`` in ``dtype`` (:data:`FLOAT32_IN_FLOAT64`,
    :data:`PRECISION_LIMITS`), or None."""
    backend = keras.backend.backend()
    if dtype != "float64" or backend not in FLOAT32_IN_FLOAT64:
        return _precision_reason(case, dtype)
    table = FLOAT32_IN_FLOAT64[backend]
    kinds = [f"{s.kind} (training)" if s.kind == "batchnorm" and not case.eval_mode else s.kind for s in case.specs]
    kinds += ["binary loss" if case.binary_loss is not None else "loss"] if case.loss else []
    what = list(dict.fromkeys(table[kind] for kind in kinds if kind in table))
    if not what:
        return _precision_reason(case, dtype)
    return (f"Keras {keras.__version__} on {backend} computes float64 in float32 in {', '.join(what)}: "
            "keras.backend.result_type maps float64 to float32 off TensorFlow")


def unsupported(case: Case) -> str | None:
    """Why Keras cannot express ``case`` exactly, or None."""
    reason = cross_entropy_reason(case.loss_option) if case.loss_option is not None else None
    if reason is not None:
        return f"cross-entropy: {reason}"
    if case.binary_loss is not None and case.binary_loss.pos_weight:
        return f"binary cross-entropy: {binary_cross_entropy_reason(True)}"
    sample = case.input_shape if case.single else case.input_shape[1:]
    for i, s, record, in_shape, _ in _walk(case.specs, sample):
        reason = record.reason(s, in_shape)
        if reason is not None:
            return f"layer {i} ({s.kind}): {reason}"
    return None
