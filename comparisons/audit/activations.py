"""Activation and dropout probes: LeakyReLU's default slope and the precision it is applied in, and
the scaling of inverted dropout.

Slopes are measured as ``out / x`` at negative ``x`` that are powers of two (the division is then
exact), in float64 layers; dropout runs in float32, the frameworks' default.
"""

from __future__ import annotations

import numpy as np

import reference as ref

from .base import compare_key, exact, import_keras, import_tf, import_torch, probe

LEAKY_X = (-2.0, -1.0, -0.5)
PORTED_SLOPE = 0.01


def _slope(x: np.ndarray, out: np.ndarray) -> float:
    """The one slope ``out / x`` shows at every negative ``x`` (a list if they disagree)."""
    slopes = np.unique(out / x)
    return float(slopes[0]) if slopes.size == 1 else slopes.tolist()


def _ported(slope: float) -> dict:
    """The slope measured with ``negative_slope=PORTED_SLOPE``, and its relative error (the report
    prints 6 digits: 0.009999999776482582 would read 0.01)."""
    return {f"slope_with_{PORTED_SLOPE}": slope, "its_relative_error": (slope - PORTED_SLOPE) / PORTED_SLOPE}


def _leaky_torch():
    torch = import_torch()
    x = torch.tensor(LEAKY_X, dtype=torch.float64, requires_grad=True)
    layer = torch.nn.LeakyReLU()
    y = layer(x)
    y.sum().backward()
    ported = torch.nn.LeakyReLU(PORTED_SLOPE)(x.detach()).numpy()
    return {"default_attr": layer.negative_slope, "default_slope": _slope(np.array(LEAKY_X), y.detach().numpy()),
            "default_grad_slope": _slope(np.ones(len(LEAKY_X)), x.grad.numpy()),
            **_ported(_slope(np.array(LEAKY_X), ported))}


def _leaky_keras():
    keras, tf = import_keras(), import_tf()
    x = np.array(LEAKY_X)
    layer = keras.layers.LeakyReLU(dtype="float64")
    xv = tf.Variable(x)
    with tf.GradientTape() as tape:
        y = layer(xv)
        total = tf.reduce_sum(y)
    ported = keras.layers.LeakyReLU(negative_slope=PORTED_SLOPE, dtype="float64")(x)
    return {"default_attr": layer.negative_slope, "default_slope": _slope(x, y.numpy()),
            "default_grad_slope": _slope(np.ones(len(x)), tape.gradient(total, xv).numpy()),
            **_ported(_slope(x, np.asarray(ported))), "output_dtype": str(ported.dtype.name)}


def _leaky_reference():
    x = np.array(LEAKY_X)
    layer = ref.LeakyReLU()
    y = layer.forward(x)
    return {"default_attr": layer.negative_slope, "default_slope": _slope(x, y),
            "default_grad_slope": _slope(np.ones(len(x)), layer.backward(np.ones_like(y))),
            **_ported(_slope(x, ref.LeakyReLU(PORTED_SLOPE).forward(x)))}


probe("leaky-relu-slope", "LeakyReLU: default slope, and the precision it is applied in", "activations and dropout",
      f"Float64 layers at x = {LEAKY_X}: the slope out/x (and the gradient's) of a default LeakyReLU, and of "
      f"one built with negative_slope={PORTED_SLOPE}.",
      "PyTorch's default negative_slope is 0.01, Keras' 0.3: a LeakyReLU() ported without its argument "
      "changes the model. TensorFlow also holds the slope as a float32 attribute, so even a float64 Keras "
      "layer multiplies by float32(0.01) = 0.009999999776482582 (relative error 2.2e-8): float64 "
      "comparisons against Keras then fail at ~1e-8, not at float64 rounding. The reference follows "
      "PyTorch (0.01, applied in the input's dtype).",
      frameworks={"torch": _leaky_torch, "keras": _leaky_keras}, reference=_leaky_reference,
      verdict=compare_key("default_slope", reference_equal=exact))


# -- dropout's scaling ----------------------------------------------------------------
DROPOUT = {"p": 0.1, "n": 20_000, "seed": 3}


def dropout_input() -> np.ndarray:
    """``(20000,)`` float32 in [0.5, 2), seeded: no zeros, so a zero output marks a dropped element."""
    return np.random.default_rng(10).uniform(0.5, 2.0, DROPOUT["n"]).astype(np.float32)


def _ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in float32 units in the last place between positive float32 arrays."""
    return np.abs(a.view(np.int32).astype(np.int64) - b.view(np.int32).astype(np.int64))


def _dropout_evidence(train_out: np.ndarray, eval_out: np.ndarray) -> dict:
    """Kept fraction, scaling of the kept elements against x/(1-p) and x*float32(1/(1-p)), eval identity."""
    x, p = dropout_input(), DROPOUT["p"]
    kept = train_out != 0
    exact = (x.astype(np.float64) / (1.0 - p)).astype(np.float32)  # x/(1-p) correctly rounded
    rounded_scale = x * np.float32(1.0 / (1.0 - p))
    ulps = _ulps(train_out[kept], exact[kept])
    return {"p": p, "kept_fraction": float(kept.mean()), "output_dtype": str(train_out.dtype),
            "max_ulps_from_x_over_keep": int(ulps.max()), "fraction_off_by_an_ulp": float((ulps > 0).mean()),
            "equals_x_times_float32_scale": bool((train_out[kept] == rounded_scale[kept]).all()),
            "eval_is_identity": bool((eval_out == x).all())}


def _dropout_torch():
    torch = import_torch()
    torch.manual_seed(DROPOUT["seed"])
    layer = torch.nn.Dropout(DROPOUT["p"])
    x = torch.from_numpy(dropout_input())
    train = layer(x).numpy()
    return _dropout_evidence(train, layer.eval()(x).numpy())


def _dropout_keras():
    keras = import_keras()
    layer = keras.layers.Dropout(DROPOUT["p"], seed=DROPOUT["seed"])
    x = dropout_input()
    return _dropout_evidence(np.asarray(layer(x, training=True)), np.asarray(layer(x)))


def _dropout_reference():
    layer = ref.Dropout(DROPOUT["p"], rng=DROPOUT["seed"])
    x = dropout_input()
    return _dropout_evidence(layer.forward(x), layer.eval().forward(x))


probe("dropout-scaling", "dropout: how kept elements are scaled", "activations and dropout",
      f"Dropout(p={DROPOUT['p']}) on {DROPOUT['n']} float32 values in [0.5, 2): the fraction kept, the kept "
      "outputs against x/(1-p) correctly rounded (in float32 ulps) and against x * float32(1/(1-p)), and the "
      "output in eval mode (PyTorch .eval(), Keras training=False).",
      "Both are inverted dropout: kept elements are scaled by 1/(1-p) during training, so inference is the "
      "identity and no rescaling is needed when porting. Both multiply by the scale rounded to float32 "
      "instead of dividing by 1-p, so here 58% of the kept outputs are 1 ulp away from x/(1-p); a reference "
      "that divides would differ from both by 1 ulp. Masks never match across frameworks (different "
      "generators): to compare, impose one mask (reference.Dropout.set_mask) and run the frameworks in eval "
      "mode times that mask.",
      frameworks={"torch": _dropout_torch, "keras": _dropout_keras}, reference=_dropout_reference,
      verdict=compare_key("equals_x_times_float32_scale", "eval_is_identity", "max_ulps_from_x_over_keep",
                          reference_equal=exact))
