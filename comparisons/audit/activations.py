"""Activation and dropout probes: LeakyReLU's default slope and the precision it is applied in, and
the scaling of inverted dropout.

Slopes are measured as ``out / x`` at negative ``x`` that are powers of two (the division is then
exact), in float64 layers; dropout runs in float32, the frameworks' default.
"""

from __future__ import annotations

import math

import numpy as np

import reference as ref

from .base import compare_key, exact, import_keras, import_nnx, import_tf, import_torch, probe

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


# -- GELU: exact or tanh by default ------------------------------------------------------------------------------
GELU_X = np.linspace(-6.0, 6.0, 241)  # steps of 0.05; the tanh form errs most near |x| ~ 2-3
# the two forms differ by up to 4.7e-4 here; float64 evaluations err ~1e-16, Keras on TensorFlow's by 5e-9
APPROXIMATION_TOLERANCE = 1e-6


def exact_gelu(x: np.ndarray) -> np.ndarray:
    """``x * Phi(x) = 0.5 * x * (1 + erf(x / sqrt(2)))`` in float64, ``math.erf`` per element."""
    return np.array([0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))) for v in x])


def tanh_gelu(x: np.ndarray) -> np.ndarray:
    """``0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))`` in float64."""
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def _gelu_form(out) -> dict:
    """Which form ``out`` (an activation of :data:`GELU_X` in float64) computes, and its distance from both."""
    out = np.asarray(out, np.float64)
    to_exact, to_tanh = float(np.abs(out - exact_gelu(GELU_X)).max()), float(np.abs(out - tanh_gelu(GELU_X)).max())
    form = "exact (erf)" if to_exact < APPROXIMATION_TOLERANCE else "tanh" if to_tanh < APPROXIMATION_TOLERANCE \
        else "neither"
    return {"form": form, "max_abs_diff_from_exact": to_exact, "max_abs_diff_from_tanh": to_tanh}


def _forms(entry_points: dict) -> dict:
    """Each default entry point's form, and the set of forms they give (what the verdict compares)."""
    found = {name: _gelu_form(out) for name, out in entry_points.items()}
    return {**found, "default_forms": sorted({e["form"] for e in found.values()})}


def _gelu_torch():
    torch = import_torch()
    x = torch.from_numpy(GELU_X)
    layer = torch.nn.GELU()
    return {**_forms({"torch.nn.GELU()": layer(x).numpy(), "F.gelu(x)": torch.nn.functional.gelu(x).numpy()}),
            "attr_approximate": layer.approximate}


def _gelu_keras():
    keras = import_keras()
    x = GELU_X
    return _forms({"keras.activations.gelu(x)": keras.activations.gelu(x),
                   "keras.ops.gelu(x)": keras.ops.gelu(x),
                   "Activation('gelu')": keras.layers.Activation("gelu", dtype="float64")(x)})


def _gelu_jax():

    jnp, nnx = import_nnx()
    import jax

    return {**_forms({"jax.nn.gelu(x)": jax.nn.gelu(jnp.asarray(GELU_X))}),
            "flax.nnx.gelu is jax.nn.gelu": nnx.gelu is jax.nn.gelu}


def _gelu_reference():
    return {**_forms({"GELU()": ref.GELU().forward(GELU_X)}),
            "GELU(approximate='tanh')": _gelu_form(ref.GELU(approximate="tanh").forward(GELU_X))}


probe("gelu-default", "GELU: the exact (erf) form or the tanh approximation by default", "activations and dropout",
      "Each framework's GELU entry points called without arguments on float64 x in [-6, 6] (step 0.05): the form "
      "they compute, and the largest difference from the exact 0.5 x (1 + erf(x / sqrt 2)) and from the tanh "
      "approximation.",
      "PyTorch's nn.GELU() and F.gelu are exact (approximate='none'); jax.nn.gelu (and flax.nnx.gelu, the same "
      "function) default to the tanh approximation; Keras has both: keras.activations.gelu (and "
      "Activation('gelu'), Dense(activation='gelu')) is exact, keras.ops.gelu is the tanh form. The two forms "
      "differ by up to 4.7e-4 here: invisible at float32 tolerance in one layer, but a BERT/ViT port "
      "accumulates it. Keras on TensorFlow's float64 GELU is 5e-9 (erf form) and 9e-10 (tanh form) away from "
      "the float64 formulas, so float64 comparisons against it fail at ~1e-8. Port with jax.nn.gelu(x, "
      "approximate=False) and keras.ops.gelu(x, approximate=False) for PyTorch's default, or "
      "nn.GELU(approximate='tanh') for JAX's. The reference is exact by default, GELU(approximate='tanh') for "
      "the other form.",
      frameworks={"torch": _gelu_torch, "keras": _gelu_keras, "jax": _gelu_jax}, reference=_gelu_reference,
      verdict=compare_key("default_forms"))


# -- hard sigmoid -------------------------------------------------------------------------------------------------
HARD_X = (-3.5, -3.0, -2.5, -1.0, 0.0, 1.0, 2.5, 3.0, 3.5)  # both definitions' breakpoints: +-3 and +-2.5


def hard_definitions(x: np.ndarray) -> dict[str, np.ndarray]:
    """The two hard sigmoids in use, in float64: ``relu6(x + 3) / 6`` and Keras 2's ``clip(0.2 x + 0.5, 0, 1)``."""
    return {"relu6(x+3)/6": np.clip(x + 3.0, 0.0, 6.0) / 6.0, "clip(0.2x+0.5, 0, 1)": np.clip(0.2 * x + 0.5, 0, 1)}


def _hard_evidence(values, grads) -> dict:
    x = np.array(HARD_X)
    values, grads = np.asarray(values, np.float64), np.asarray(grads, np.float64)
    matches = [name for name, v in hard_definitions(x).items() if np.allclose(values, v, rtol=1e-15, atol=1e-15)]
    return {"x": x, "values": values, "grads": grads, "definition": matches[0] if matches else "neither",
            "grad_at_-3_and_3": [float(grads[1]), float(grads[7])]}


def _hard_torch():
    torch = import_torch()
    x = torch.tensor(HARD_X, dtype=torch.float64, requires_grad=True)
    y = torch.nn.Hardsigmoid()(x)
    y.sum().backward()
    return _hard_evidence(y.detach().numpy(), x.grad.numpy())


def _hard_keras():
    keras, tf = import_keras(), import_tf()
    found = {}
    for name, fn in (("keras.activations.hard_sigmoid", keras.activations.hard_sigmoid),
                     ("keras.ops.hard_sigmoid", keras.ops.hard_sigmoid)):
        x = tf.Variable(np.array(HARD_X))
        with tf.GradientTape() as tape:
            y = fn(x)
            total = tf.reduce_sum(y)
        found[name] = _hard_evidence(y.numpy(), tape.gradient(total, x).numpy())
    return {**found["keras.activations.hard_sigmoid"], "keras.ops.hard_sigmoid": found["keras.ops.hard_sigmoid"]}


def _hard_jax():

    jnp, _ = import_nnx()
    import jax

    x = jnp.asarray(HARD_X)
    return _hard_evidence(jax.nn.hard_sigmoid(x), jax.vmap(jax.grad(jax.nn.hard_sigmoid))(x))


def _hard_reference():
    layer = ref.Hardsigmoid()
    y = layer.forward(np.array(HARD_X))
    return _hard_evidence(y, layer.backward(np.ones_like(y)))


probe("hard-sigmoid", "hard sigmoid: its definition and its slope at the breakpoints", "activations and dropout",
      f"Each framework's hard sigmoid on float64 x = {HARD_X}: the values (against relu6(x + 3)/6 and Keras 2's "
      "clip(0.2 x + 0.5, 0, 1)) and the gradient, at x = -3 and 3 in particular.",
      "Keras 3, PyTorch and JAX all compute relu6(x + 3) / 6 (0 below -3, 1 above 3). Keras 2 (tf.keras before "
      "2.16) used clip(0.2 x + 0.5, 0, 1), which saturates at +-2.5: a model trained with it and run on Keras 3 "
      "or ported to PyTorch changes where |x| is between 2.5 and 3. All three take the gradient 0 at the "
      "breakpoints -3 and 3 themselves. PyTorch's float64 gradient inside is float32(1/6) = 0.16666667163 (3e-8 "
      "relative off; reference.Hardsigmoid(float32_slope=True) matches it), Keras' and JAX's the float64 1/6. "
      "The reference computes relu6(x + 3)/6 with the exact 1/6 by default.",
      frameworks={"torch": _hard_torch, "keras": _hard_keras, "jax": _hard_jax}, reference=_hard_reference,
      verdict=compare_key("definition", "grad_at_-3_and_3", reference_equal=exact))
