"""Layout probes: conv kernels (OIHW/HWIO), dense weights ((out,in)/(in,out)), Flatten order,
and what a naive copy of weights (a plain ``reshape``) produces instead of the proper conversion.

Each side runs its framework on one seeded problem and reports the max abs error against the
reference's float64 output; the Keras side also runs the naive copy.
"""

from __future__ import annotations

import numpy as np

import reference as ref
from comparisons.frameworks.layouts import dense_rows_chw_to_hwc, linear_to_torch, nchw_to_nhwc, oihw_to_hwio

from .base import compare_key, import_keras, import_torch, probe

CONV = {"n": 2, "c": 3, "f": 4, "hw": 6, "k": 3}
DENSE = {"n": 3, "in": 6, "out": 4}
FLAT = {"n": 2, "c": 3, "hw": 2, "out": 5}


def _err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(np.asarray(a, np.float64) - b).max())


# -- conv kernels --------------------------------------------------------------
def _conv_problem():
    """``x (N, C, H, W)``, OIHW ``w``, and the reference's float64 output ``(N, F, H', W')``."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((CONV["n"], CONV["c"], CONV["hw"], CONV["hw"])).astype(np.float32)
    w = rng.standard_normal((CONV["f"], CONV["c"], CONV["k"], CONV["k"])).astype(np.float32)
    layer = ref.Conv2d(CONV["c"], CONV["f"], CONV["k"], bias=False)
    layer.params["weight"] = w.astype(np.float64)
    return x, w, layer.forward(x.astype(np.float64))


def _conv_torch():
    torch = import_torch()
    x, w, expected = _conv_problem()
    conv = torch.nn.Conv2d(CONV["c"], CONV["f"], CONV["k"], bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(w))
        out = conv(torch.from_numpy(x)).numpy()
    return {"kernel_shape": list(conv.weight.shape), "max_err_as_is": _err(out, expected)}


def _conv_keras():
    keras = import_keras()
    x, w, expected = _conv_problem()
    layer = keras.layers.Conv2D(CONV["f"], CONV["k"], use_bias=False)
    layer.build((None, CONV["hw"], CONV["hw"], CONV["c"]))
    shape = tuple(layer.kernel.shape)
    errors = {}
    for how, kernel in (("naive_reshape", w.reshape(shape)), ("oihw_to_hwio", oihw_to_hwio(w))):
        layer.set_weights([kernel])
        errors[f"max_err_{how}"] = _err(np.asarray(layer(nchw_to_nhwc(x))).transpose(0, 3, 1, 2), expected)
    return {"kernel_shape": list(shape), **errors}


def _conv_reference():
    layer = ref.Conv2d(CONV["c"], CONV["f"], CONV["k"])
    return {"kernel_shape": list(layer.params["weight"].shape)}


probe("layout-conv-kernel", "conv kernel layout: OIHW vs HWIO, and a naive reshape", "layouts",
      f"Copy a PyTorch Conv2d({CONV['c']}, {CONV['f']}, {CONV['k']}) kernel into Keras by reshape vs by "
      "transpose: how far is each Keras output from the reference's float64 output?",
      "PyTorch stores conv kernels (out, in, kh, kw); Keras stores (kh, kw, in, out). A reshape has the "
      "right shape and silently scrambles the taps (errors of the size of the outputs themselves); use "
      "w.transpose(2, 3, 1, 0) (comparisons.layouts.oihw_to_hwio) and its inverse transpose(3, 2, 0, 1).",
      frameworks={"torch": _conv_torch, "keras": _conv_keras}, reference=_conv_reference,
      verdict=compare_key("kernel_shape"))


# -- dense weights -------------------------------------------------------------
def _dense_problem():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((DENSE["n"], DENSE["in"])).astype(np.float32)
    w = rng.standard_normal((DENSE["in"], DENSE["out"])).astype(np.float32)  # (in, out)
    return x, w, x.astype(np.float64) @ w.astype(np.float64)


def _dense_torch():
    torch = import_torch()
    x, w, expected = _dense_problem()
    lin = torch.nn.Linear(DENSE["in"], DENSE["out"], bias=False)
    errors = {}
    for how, weight in (("naive_reshape", w.reshape(DENSE["out"], DENSE["in"])), ("transpose", linear_to_torch(w))):
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(weight))
            errors[f"max_err_{how}"] = _err(lin(torch.from_numpy(x)).numpy(), expected)
    return {"weight_shape": list(lin.weight.shape), **errors}


def _dense_keras():
    keras = import_keras()
    x, w, expected = _dense_problem()
    layer = keras.layers.Dense(DENSE["out"], use_bias=False)
    layer.build((None, DENSE["in"]))
    layer.set_weights([w])
    return {"weight_shape": list(layer.kernel.shape), "max_err_as_is": _err(layer(x), expected)}


def _dense_reference():
    return {"weight_shape": list(ref.Linear(DENSE["in"], DENSE["out"]).params["weight"].shape)}


probe("layout-dense-weight", "dense weight layout: (out, in) vs (in, out)", "layouts",
      f"Copy a Keras/reference Dense({DENSE['in']} -> {DENSE['out']}) kernel into torch.nn.Linear by reshape "
      "vs by transpose.",
      "torch.nn.Linear.weight is (out, in) and computes x @ W.T; Keras Dense.kernel (and the reference) "
      "is (in, out) and computes x @ W. Transpose when copying; a reshape fits the shape and is wrong.",
      frameworks={"torch": _dense_torch, "keras": _dense_keras}, reference=_dense_reference,
      verdict=compare_key("weight_shape"))


# -- Flatten order ------------------------------------------------------------
def _flat_problem():
    """Feature maps ``(N, C, H, W)``, a channels-first dense kernel ``(C*H*W, out)`` and the
    reference's float64 scores ``(N, out)``."""
    rng = np.random.default_rng(3)
    c, hw = FLAT["c"], FLAT["hw"]
    x = rng.standard_normal((FLAT["n"], c, hw, hw)).astype(np.float32)
    w = rng.standard_normal((c * hw * hw, FLAT["out"])).astype(np.float32)
    lin = ref.Linear(c * hw * hw, FLAT["out"], bias=False)
    lin.params["weight"] = w.astype(np.float64)
    return x, w, lin.forward(ref.Flatten().forward(x.astype(np.float64)))


def _label_map() -> np.ndarray:
    """``(1, C, H, W)`` whose value is each element's channels-first flat index."""
    c, hw = FLAT["c"], FLAT["hw"]
    return np.arange(c * hw * hw, dtype=np.float32).reshape(1, c, hw, hw)


def _flat_torch():
    torch = import_torch()
    x, w, expected = _flat_problem()
    order = torch.nn.Flatten()(torch.from_numpy(_label_map()))[0].numpy().astype(int)
    scores = torch.from_numpy(x).flatten(1) @ torch.from_numpy(w)
    return {"flatten_order_chw_index": order, "max_err_as_is": _err(scores.numpy(), expected)}


def _flat_keras():
    keras = import_keras()
    x, w, expected = _flat_problem()
    order = np.asarray(keras.layers.Flatten()(nchw_to_nhwc(_label_map())))[0].astype(int)
    feature_shape = (FLAT["c"], FLAT["hw"], FLAT["hw"])
    dense = keras.layers.Dense(FLAT["out"], use_bias=False)
    dense.build((None, w.shape[0]))
    errors = {}
    for how, kernel in (("naive_copy", w), ("dense_rows_chw_to_hwc", dense_rows_chw_to_hwc(w, chw=feature_shape))):
        dense.set_weights([kernel])
        errors[f"max_err_{how}"] = _err(dense(keras.layers.Flatten()(nchw_to_nhwc(x))), expected)
    return {"flatten_order_chw_index": order, **errors}


def _flat_reference():
    return {"flatten_order_chw_index": ref.Flatten().forward(_label_map())[0].astype(int)}


probe("layout-flatten-order", "Flatten order: C,H,W vs H,W,C, and the dense layer after it", "layouts",
      f"Flatten a ({FLAT['c']}, {FLAT['hw']}, {FLAT['hw']}) feature map labelled with its channels-first "
      "index; then copy the next dense kernel unchanged vs with its rows permuted.",
      "PyTorch flattens (C, H, W), Keras flattens (H, W, C): the first dense layer after a Flatten "
      "needs its rows permuted (comparisons.layouts.dense_rows_chw_to_hwc), on top of the (out, in) "
      "transpose. The naive copy runs without any error and computes something else.",
      frameworks={"torch": _flat_torch, "keras": _flat_keras}, reference=_flat_reference,
      verdict=compare_key("flatten_order_chw_index"))


# -- channels-last default -----------------------------------------------------
def _nchw_input() -> np.ndarray:
    return np.random.default_rng(4).standard_normal((1, 3, 8, 8)).astype(np.float32)


def _cl_torch():
    torch = import_torch()
    out = torch.nn.Conv2d(3, 4, 3)(torch.from_numpy(_nchw_input()))
    return {"out_shape_for_nchw_input": list(out.shape)}


def _cl_keras():
    keras = import_keras()
    out = keras.layers.Conv2D(4, 3)(_nchw_input())
    return {"data_format": keras.config.image_data_format(), "out_shape_for_nchw_input": list(out.shape)}


def _cl_reference():
    out = ref.Conv2d(3, 4, 3, rng=0).forward(_nchw_input())
    return {"out_shape_for_nchw_input": list(out.shape)}


probe("layout-channels-last", "a (1, 3, 8, 8) NCHW batch fed to Conv2d(3 -> 4, k=3)", "layouts",
      "What does each framework make of a channels-first batch, with its default data format?",
      "Keras defaults to channels_last and accepts an NCHW batch without complaint: it reads 3 rows of "
      "8 pixels with 8 channels and returns a (1, 1, 6, 4) map. Transpose inputs with "
      "nchw_to_nhwc (x.transpose(0, 2, 3, 1)), or set data_format='channels_first' knowingly.",
      frameworks={"torch": _cl_torch, "keras": _cl_keras}, reference=_cl_reference,
      verdict=compare_key("out_shape_for_nchw_input"))
