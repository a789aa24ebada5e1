"""Activation and dropout probes (audit/activations.py): LeakyReLU's slope, dropout's scaling."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest

import reference as ref
from comparisons.audit import activations

from .helpers import check, ev, finding, keras_only, torch_only, verdict_is


@pytest.mark.parametrize("side", [pytest.param("torch", marks=torch_only), pytest.param("keras", marks=keras_only),
                                  "reference"])
def test_leaky_relu_slope(side):
    """PyTorch and the reference: 0.01 applied in float64; Keras: 0.3, and any slope rounded to float32."""
    pid, e, ported = "leaky-relu-slope", ev("leaky-relu-slope", side), activations.PORTED_SLOPE
    if side == "keras":
        import keras

        default = keras.layers.LeakyReLU().negative_slope
        expected, rule = (float(np.float32(default)), float(np.float32(ported))), "slope rounded to float32"
    else:
        default = inspect.signature(ref.LeakyReLU).parameters["negative_slope"].default
        expected, rule = (default, ported), "slope applied in float64"
    check(pid, side, "default slope attribute", e["default_attr"], default, "the layer's default")
    check(pid, side, "default slope (float64 layer)", e["default_slope"], expected[0], rule)
    check(pid, side, "default gradient slope", e["default_grad_slope"], expected[0], rule)
    check(pid, side, f"slope with negative_slope={ported}", e[f"slope_with_{ported}"], expected[1], rule)
    check(pid, side, "its relative error", e["its_relative_error"], (expected[1] - ported) / ported, rule)


@pytest.mark.torch
@pytest.mark.keras
def test_leaky_relu_defaults_differ():
    f = finding("leaky-relu-slope")
    verdict_is("leaky-relu-slope", True, ["torch"])
    assert f.frameworks["keras"]["default_attr"] != f.frameworks["torch"]["default_attr"]


@pytest.mark.parametrize("side", [pytest.param("torch", marks=torch_only), pytest.param("keras", marks=keras_only),
                                  "reference"])
def test_dropout_scaling(side):
    """Kept elements are x * float32(1/(1-p)): at most 1 ulp from x/(1-p), as often as over the whole input."""
    pid, e, p, x = "dropout-scaling", ev("dropout-scaling", side), activations.DROPOUT["p"], activations.dropout_input()
    check(pid, side, "eval mode", e["eval_is_identity"], True, "inverted dropout: eval is the identity")
    check(pid, side, "kept outputs", e["equals_x_times_float32_scale"], True, "x * float32(1/(1-p))")
    check(pid, side, "output dtype", e["output_dtype"], "float32", "keeps the input's dtype")
    by_scale = (x * np.float32(1 / (1 - p))).astype(np.float64)
    by_division = (x.astype(np.float64) / (1 - p)).astype(np.float32).astype(np.float64)
    spacing = np.spacing(by_division.astype(np.float32)).astype(np.float64)
    check(pid, side, "max ulps from x/(1-p)", e["max_ulps_from_x_over_keep"],
          int(np.max(np.abs(by_scale - by_division) / spacing)), "two roundings: at most 1 ulp")
    # the kept elements are a random ~90% subset: their off-by-an-ulp fraction matches the whole input's
    # within 6 binomial standard deviations
    whole = float(np.mean(by_scale != by_division))
    sigma = math.sqrt(whole * (1 - whole) / (len(x) * (1 - p)))
    check(pid, side, "fraction 1 ulp off", e["fraction_off_by_an_ulp"], whole, "as over the whole input",
          atol=6 * sigma)
    keep_sigma = math.sqrt(p * (1 - p) / len(x))
    check(pid, side, "kept fraction", e["kept_fraction"], 1 - p, "keep with probability 1 - p", atol=6 * keep_sigma)


@pytest.mark.torch
@pytest.mark.keras
@pytest.mark.jax
def test_gelu_default():
    """Each default entry point's form; the forms' distance computed here with math.erf and the tanh formula."""
    pid, x = "gelu-default", activations.GELU_X
    exact = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x])
    tanh = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    gap = float(np.abs(exact - tanh).max())
    expected = {"torch": {"torch.nn.GELU()": "exact (erf)", "F.gelu(x)": "exact (erf)"},
                "keras": {"keras.activations.gelu(x)": "exact (erf)", "keras.ops.gelu(x)": "tanh",
                          "Activation('gelu')": "exact (erf)"},
                "jax": {"jax.nn.gelu(x)": "tanh"}, "reference": {"GELU()": "exact (erf)"}}
    for side, forms in expected.items():
        e = ev(pid, side)
        for name, form in forms.items():
            check(pid, side, f"{name} form", e[name]["form"], form, "the entry point's default")
            other = "max_abs_diff_from_tanh" if form == "exact (erf)" else "max_abs_diff_from_exact"
            # the other form is as far as the two forms are apart (within the first form's own error, <1e-8)
            check(pid, side, f"{name} distance from the other form", e[name][other], gap, "the forms' gap", rtol=1e-4)
    f = finding(pid)
    assert (f.differs, f.groups, f.reference_follows) == (True, [["torch"], ["keras"], ["jax"]], ["torch"]), f


@pytest.mark.torch
@pytest.mark.keras
@pytest.mark.jax
def test_hard_sigmoid():
    pid, x = "hard-sigmoid", np.array(activations.HARD_X)
    values = np.minimum(np.maximum(x + 3, 0), 6) / 6
    inside = ((x > -3) & (x < 3)).astype(float)
    for side in ("torch", "keras", "jax", "reference"):
        e = ev(pid, side)
        check(pid, side, "values", e["values"], values, "relu6(x + 3) / 6", rtol=1e-15)
        # PyTorch's float64 backward multiplies by float32(1/6): 3e-8 relative
        check(pid, side, "gradients", e["grads"], inside / 6, "1/6 strictly inside (-3, 3), 0 elsewhere",
              rtol=1e-7 if side == "torch" else 1e-15)
    f = finding(pid)
    assert (f.differs, f.groups, f.reference_follows) == (False, [["torch", "keras", "jax"]],
                                                           ["torch", "keras", "jax"]), f
