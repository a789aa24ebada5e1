"""Keras backend probes: float64 on each backend, batch norm's batch variance of a large-mean float32 batch, and
TensorFlow's convolution with oneDNN on and off.

Keras fixes its backend at import, so each backend other than TensorFlow (which the audit imports in its own
process, :func:`.base.import_keras`) is probed in a child process (:func:`.isolation.run_isolated`) that sets the
backend's settings first: the ``keras-jax`` and ``keras-torch`` registry entries' worker settings
(:func:`comparisons.frameworks.keras3.worker_settings`), and for "x64 off" the same without ``JAX_ENABLE_X64``.
oneDNN on and off each run in a child too (``TF_ENABLE_ONEDNN_OPTS`` is read when TensorFlow is imported).

Shapes: the float64 probe runs a 3x3 ``Conv2D`` (4 -> 5 channels) on ``(2, 7, 6, 4)`` NHWC and a ``Dense`` 6 -> 3
on ``(4, 6)``; the batch-norm probe a ``(N, H, W, C) = (8, 4, 4, 3)`` float32 batch of mean 1e4 and std 1; the
oneDNN probe a float32 3x3 ``Conv2D`` (8 -> 16 channels) on ``(4, 16, 16, 8)``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator

import numpy as np

import reference as ref

from .base import Decision, Evidence, agreement, import_keras, probe, ran
from .isolation import run_isolated, step

F64 = {"conv_x": (2, 7, 6, 4), "filters": 5, "k": 3, "dense_x": (4, 6), "units": 3}
BN = {"x": (8, 4, 4, 3), "mean": 1e4, "std": 1.0}
ONEDNN = {"x": (4, 16, 16, 8), "filters": 16, "k": 3}
FLOAT64_ERR = 1e-12  # float64 arithmetic errs ~1e-16 relative here; float32 ~1e-7


# -- inputs and exact results (numpy float64) -----------------------------------------------------------------------
def _f64_data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(41)
    return {"x": rng.standard_normal(F64["conv_x"]), "kernel": rng.standard_normal((F64["k"], F64["k"],
                                                                                    F64["conv_x"][3], F64["filters"])),
            "dx": rng.standard_normal(F64["dense_x"]), "w": rng.standard_normal((F64["dense_x"][1], F64["units"]))}


def _conv_nhwc(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """A valid, stride-1 NHWC convolution in float64 numpy: ``(N, H, W, C) * (kh, kw, C, F) -> (N, H', W', F)``."""
    kh, kw = kernel.shape[:2]
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))  # (N, H', W', C, kh, kw)
    return np.einsum("nhwcij,ijcf->nhwf", windows.astype(np.float64), kernel.astype(np.float64))


def _rel_err(actual, exact: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(actual, np.float64) - exact)) / np.max(np.abs(exact)))


def _bn_batch() -> np.ndarray:
    """``(8, 4, 4, 3)`` float32 NHWC, mean 1e4, std 1 (seeded)."""
    rng = np.random.default_rng(42)
    return (BN["mean"] + BN["std"] * rng.standard_normal(BN["x"])).astype(np.float32)


# -- what one Keras backend measures (run where Keras runs on that backend) -----------------------------------------
def _float64_evidence(keras) -> Evidence:
    """Output dtype and error against float64 numpy of a float64 Conv2D and Dense on float64 inputs."""
    d = _f64_data()
    name = keras.backend.standardize_dtype
    conv = keras.layers.Conv2D(F64["filters"], F64["k"], use_bias=False, dtype="float64")
    conv.build(F64["conv_x"])
    conv.kernel.assign(d["kernel"])
    dense = keras.layers.Dense(F64["units"], use_bias=False, dtype="float64")
    dense.build(F64["dense_x"])
    dense.kernel.assign(d["w"])
    conv_out, dense_out = conv(d["x"]), dense(d["dx"])
    conv_err = _rel_err(keras.ops.convert_to_numpy(conv_out), _conv_nhwc(d["x"], d["kernel"]))
    dense_err = _rel_err(keras.ops.convert_to_numpy(dense_out), d["dx"] @ d["w"])
    return {"backend": keras.backend.backend(), "variable_dtype": name(conv.kernel.dtype),
            "conv_output_dtype": name(conv_out.dtype), "dense_output_dtype": name(dense_out.dtype),
            "conv_rel_err": conv_err, "dense_rel_err": dense_err,
            "conv_computed_in": "float64" if conv_err < FLOAT64_ERR else "float32",
            "dense_computed_in": "float64" if dense_err < FLOAT64_ERR else "float32",
            "result_type_float64": keras.backend.result_type("float64", "float64")}


def _batchnorm_evidence(keras) -> Evidence:
    """One training-mode call with momentum 0: the moving variance is the batch variance Keras computed."""
    x = _bn_batch()
    layer = keras.layers.BatchNormalization(momentum=0.0, epsilon=1e-3, dtype="float32")
    out = keras.ops.convert_to_numpy(layer(x, training=True))
    exact = x.astype(np.float64).var(axis=(0, 1, 2))
    var = keras.ops.convert_to_numpy(layer.moving_variance.value).astype(np.float64)
    normalized = (x - x.astype(np.float64).mean(axis=(0, 1, 2))) / np.sqrt(exact + 1e-3)
    return {"batch_variance": var, "exact_variance": exact,
            "variance_rel_err": float(np.max(np.abs(var - exact) / exact)),
            "output_max_abs_err": float(np.max(np.abs(out - normalized)))}


def _use(name: str, x64: bool = True) -> None:
    """Before Keras is imported in a child: the settings of registry entry ``name``'s worker (without JAX's x64
    when ``x64`` is False)."""
    from comparisons.frameworks.keras3 import worker_settings

    for variable, (value, _) in worker_settings(name).items():
        os.environ[variable] = value
    if not x64:
        os.environ["JAX_ENABLE_X64"] = "0"


def _keras_child(package: str):
    try:
        import keras

        __import__(package)
    except ImportError as exc:
        from comparisons.frameworks import FrameworkUnavailable

        raise FrameworkUnavailable(f"keras/{package} is not installed here ({exc})") from exc
    return keras


def _measure(keras) -> Iterator[Evidence]:
    yield step("float64", backend=keras.backend.backend(), keras=keras.__version__)
    yield step("batchnorm", float64=_float64_evidence(keras))
    yield step("done", batchnorm=_batchnorm_evidence(keras))


def jax_x64_child() -> Iterator[Evidence]:
    _use("keras-jax")
    yield from _measure(_keras_child("jax"))


def jax_x32_child() -> Iterator[Evidence]:
    _use("keras-jax", x64=False)
    yield from _measure(_keras_child("jax"))


def torch_child() -> Iterator[Evidence]:
    _use("keras-torch")
    yield from _measure(_keras_child("torch"))


@functools.cache
def _child(name: str) -> Evidence:
    """One child's evidence (each child runs once per audit process): ``float64`` and ``batchnorm`` dicts."""
    fn = {"keras-jax": jax_x64_child, "keras-jax (x64 off)": jax_x32_child, "keras-torch": torch_child}[name]
    return run_isolated(fn)


def _side(name: str, part: str):
    def side() -> Evidence:
        evidence = _child(name)
        if part not in evidence:
            return {"crashed": evidence.get("crashed", "no evidence"), "crashed_before": evidence.get("crashed_before")}
        return evidence[part]

    return side


def _tf_side(part: str):
    def side() -> Evidence:
        keras = import_keras()
        return _float64_evidence(keras) if part == "float64" else _batchnorm_evidence(keras)

    return side


BACKEND_SIDES = ("keras-jax", "keras-jax (x64 off)", "keras-torch")


# -- float64 -------------------------------------------------------------------------------------------------------
def _f64_reference() -> Evidence:
    d = _f64_data()
    conv = ref.Conv2d(F64["conv_x"][3], F64["filters"], F64["k"], bias=False, rng=0)
    conv.params["weight"] = d["kernel"].transpose(3, 2, 0, 1).copy()
    out = conv.forward(d["x"].transpose(0, 3, 1, 2)).transpose(0, 2, 3, 1)
    lin = ref.Linear(F64["dense_x"][1], F64["units"], bias=False, rng=0)
    lin.params["weight"] = d["w"]
    conv_err = _rel_err(out, _conv_nhwc(d["x"], d["kernel"]))
    dense_err = _rel_err(lin.forward(d["dx"]), d["dx"] @ d["w"])
    return {"conv_output_dtype": str(out.dtype), "dense_output_dtype": str(lin.forward(d["dx"]).dtype),
            "conv_rel_err": conv_err, "dense_rel_err": dense_err,
            "conv_computed_in": "float64" if conv_err < FLOAT64_ERR else "float32",
            "dense_computed_in": "float64" if dense_err < FLOAT64_ERR else "float32"}


F64_KEYS = ("conv_output_dtype", "dense_output_dtype", "conv_computed_in", "dense_computed_in")


def _same_keys(keys):
    def same(a: Evidence, b: Evidence) -> bool:
        return all(k in a and k in b and a[k] == b[k] for k in keys)

    return same


@probe("keras-backend-float64", "float64 on each Keras backend", "numerics",
       f"A float64 Conv2D ({F64['k']}x{F64['k']}, {F64['conv_x'][3]} -> {F64['filters']}) and Dense "
       f"({F64['dense_x'][1]} -> {F64['units']}) on float64 inputs: the output dtype, and the error against float64 "
       "numpy (~1e-16: computed in float64; ~1e-7: computed in float32), on TensorFlow, JAX with and without x64, "
       "and PyTorch.",
       "Only TensorFlow computes a float64 Keras model in float64 everywhere. JAX without JAX_ENABLE_X64 makes every "
       "float64 array float32 (the layer's variables and outputs say float32); with x64 on, conv and dense compute "
       "in float64. On PyTorch the output says float64 but Dense's matmul ran in float32: Keras' result_type maps "
       "float64 to float32 off TensorFlow, and ops.matmul / ops.mean cast to it. Compare float64 against JAX with "
       "x64 on, never against Keras on torch; check the error, not the dtype.",
       frameworks={"keras": _tf_side("float64"), **{n: _side(n, "float64") for n in BACKEND_SIDES}},
       reference=_f64_reference)
def _f64_verdict(evidence: dict[str, Evidence], reference: Evidence) -> Decision:
    same = _same_keys(F64_KEYS)
    follows = [n for n, e in ran(evidence).items() if same(reference, e)] if "skipped" not in reference else []
    return Decision(agreement(evidence, same), follows)


# -- batch norm's batch variance ---------------------------------------------------------------------------------------
def _bn_reference() -> Evidence:
    x = _bn_batch()
    bn = ref.BatchNorm2d(BN["x"][3], eps=1e-3, momentum=1.0, unbiased_running_var=False, dtype=np.float32)
    out = bn.forward(x.transpose(0, 3, 1, 2)).transpose(0, 2, 3, 1)
    exact = x.astype(np.float64).var(axis=(0, 1, 2))
    var = np.asarray(bn.buffers["running_var"], np.float64)
    normalized = (x - x.astype(np.float64).mean(axis=(0, 1, 2))) / np.sqrt(exact + 1e-3)
    return {"batch_variance": var, "exact_variance": exact,
            "variance_rel_err": float(np.max(np.abs(var - exact) / exact)),
            "output_max_abs_err": float(np.max(np.abs(out - normalized)))}


BN_ACCURATE = 1e-2  # a two-pass float32 variance of this batch errs ~1e-3 relative; a one-pass one by ~1 or more


def _accurate(e: Evidence) -> bool:
    return e.get("variance_rel_err", np.inf) < BN_ACCURATE


@probe("keras-backend-batchnorm-variance", "batch norm's batch variance on a large-mean float32 batch, per backend",
       "batch norm",
       f"A float32 {BN['x']} NHWC batch of mean {BN['mean']:g} and std {BN['std']:g} through BatchNormalization in "
       "training mode (momentum 0, so the moving variance is the batch variance Keras computed): its error against "
       "the float64 variance, and the output's error, per Keras backend.",
       "Keras computes the batch variance differently per backend. A variance computed as E[x^2] - E[x]^2 in float32 "
       "loses everything when the mean is large against the spread (x^2 ~ 1e8, float32 resolves ~8 there, the variance "
       "is 1); a two-pass variance (subtract the mean first) keeps ~1e-3. Where a backend cancels, normalise inputs "
       "(subtract a per-channel offset) before batch norm, or compute in float64.",
       frameworks={"keras": _tf_side("batchnorm"), "keras-jax": _side("keras-jax", "batchnorm"),
                   "keras-torch": _side("keras-torch", "batchnorm")},
       reference=_bn_reference)
def _bn_verdict(evidence: dict[str, Evidence], reference: Evidence) -> Decision:
    same = lambda a, b: _accurate(a) == _accurate(b)  # noqa: E731
    follows = [n for n, e in ran(evidence).items() if same(reference, e)] if "skipped" not in reference else []
    return Decision(agreement(evidence, same), follows)


# -- TensorFlow with oneDNN on and off --------------------------------------------------------------------------
def _onednn_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(43)
    x = rng.standard_normal(ONEDNN["x"]).astype(np.float32)
    kernel = rng.standard_normal((ONEDNN["k"], ONEDNN["k"], ONEDNN["x"][3], ONEDNN["filters"])).astype(np.float32)
    dout = rng.standard_normal((ONEDNN["x"][0], ONEDNN["x"][1] - 2, ONEDNN["x"][2] - 2, ONEDNN["filters"]))
    return x, kernel, dout.astype(np.float32)


def _onednn_child(flag: str) -> Iterator[Evidence]:
    os.environ.update(KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3", TF_ENABLE_ONEDNN_OPTS=flag)
    keras = _keras_child("tensorflow")
    import tensorflow as tf

    yield step("conv", TF_ENABLE_ONEDNN_OPTS=flag, tensorflow=tf.__version__)
    try:
        from tensorflow.python.util import _pywrap_util_port

        onednn = bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        onednn = None
    x, kernel, dout = _onednn_data()
    conv = keras.layers.Conv2D(ONEDNN["filters"], ONEDNN["k"], use_bias=False)
    conv.build(x.shape)
    conv.kernel.assign(kernel)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        out = conv(xt)
    dx, dw = tape.gradient(out, [xt, conv.kernel], output_gradients=tf.constant(dout))
    exact = _conv_nhwc(x, kernel)
    yield step("done", onednn_enabled=onednn, _forward=out.numpy(), _dx=dx.numpy(), _dw=dw.numpy(),
               forward_rel_err_vs_float64=_rel_err(out.numpy(), exact))


def onednn_on_child() -> Iterator[Evidence]:
    yield from _onednn_child("1")


def onednn_off_child() -> Iterator[Evidence]:
    yield from _onednn_child("0")


ARRAYS = ("_forward", "_dx", "_dw")  # a child's raw results, for the verdict only


def _onednn_side(fn):
    def side() -> Evidence:
        return {k: np.asarray(v, np.float32) if k in ARRAYS else v for k, v in run_isolated(fn).items()}

    return side


def _onednn_reference() -> Evidence:
    x, kernel, _ = _onednn_data()
    conv = ref.Conv2d(ONEDNN["x"][3], ONEDNN["filters"], ONEDNN["k"], bias=False, dtype=np.float32, rng=0)
    conv.params["weight"] = kernel.transpose(3, 2, 0, 1).copy()
    out = conv.forward(x.transpose(0, 3, 1, 2)).transpose(0, 2, 3, 1)
    return {"forward_rel_err_vs_float64": _rel_err(out, _conv_nhwc(x, kernel))}


def _onednn_differences(evidence: dict[str, Evidence]) -> Evidence:
    on, off = evidence.get("keras (oneDNN on)", {}), evidence.get("keras (oneDNN off)", {})
    found = {}
    for key in ARRAYS:
        a, b = on.get(key), off.get(key)
        if a is None or b is None:
            continue
        diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
        found[key[1:]] = {"bitwise_equal": bool(np.array_equal(a, b)), "max_abs_diff": float(diff.max()),
                      "max_rel_diff": float(diff.max() / np.abs(b).max()), "elements_differing": int((diff > 0).sum()),
                      "elements": int(diff.size)}
    return found


@probe("keras-tf-onednn-conv", "TensorFlow's convolution with oneDNN on and off", "numerics",
       f"A float32 {ONEDNN['k']}x{ONEDNN['k']} Conv2D ({ONEDNN['x'][3]} -> {ONEDNN['filters']}) on {ONEDNN['x']} "
       "NHWC, forward and both gradients, in two processes: TF_ENABLE_ONEDNN_OPTS=1 and 0 (read at TensorFlow's "
       "import). Do the results differ, and by how much?",
       "oneDNN and Eigen sum a convolution's terms in different orders, so float32 results differ in the last bits "
       "(a few ulps); neither is more exact. Comparisons at float32 tolerance are unaffected, bitwise baselines "
       "are not: record TF_ENABLE_ONEDNN_OPTS with any stored TensorFlow result (this project compares with it off, "
       "its Eigen kernels support float64).",
       frameworks={"keras (oneDNN off)": _onednn_side(onednn_off_child),
                   "keras (oneDNN on)": _onednn_side(onednn_on_child)},
       reference=_onednn_reference)
def _onednn_verdict(evidence: dict[str, Evidence], reference: Evidence) -> Decision:
    def same(a: Evidence, b: Evidence) -> bool:
        return all(k in a and k in b and np.array_equal(a[k], b[k]) for k in ARRAYS)

    return Decision(agreement(evidence, same), [], {"on_vs_off": _onednn_differences(evidence)})
