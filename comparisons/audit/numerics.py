"""Numerics probes: ReLU's gradient at exactly 0, default float dtypes, repeatability of runs."""

from __future__ import annotations

import numpy as np

import reference as ref

from .base import compare_key, import_keras, import_tf, import_torch, probe

RELU_X = (-1.0, 0.0, 1.0)


def _relu_torch():
    torch = import_torch()
    x = torch.tensor(RELU_X, requires_grad=True)
    torch.relu(x).sum().backward()
    return {"x": RELU_X, "grad": x.grad.numpy()}


def _relu_keras():
    keras, tf = import_keras(), import_tf()
    x = tf.Variable(np.array(RELU_X, np.float32))
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(keras.layers.ReLU()(x))
    return {"x": RELU_X, "grad": tape.gradient(y, x).numpy()}


def _relu_reference():
    layer = ref.ReLU()
    layer.forward(np.array(RELU_X))
    return {"x": RELU_X, "grad": layer.backward(np.ones(len(RELU_X)))}


probe("relu-grad-at-zero", "ReLU's gradient at exactly 0", "numerics",
      f"The gradient of sum(relu(x)) at x = {RELU_X}.",
      "Both use 0 as ReLU's derivative at 0. It matters more than it looks: max pooling and padding "
      "create exact zeros, and a framework or hand-written kernel choosing 1 (x >= 0) changes weight "
      "gradients wherever pre-activations are exactly 0 (zero-initialised biases on zero inputs).",
      frameworks={"torch": _relu_torch, "keras": _relu_keras}, reference=_relu_reference,
      verdict=compare_key("grad"))


# -- float dtypes --------------------------------------------------------------
def _f64_input() -> np.ndarray:
    return np.random.default_rng(6).standard_normal((2, 3))


def _dtype_torch():
    torch = import_torch()
    lin = torch.nn.Linear(3, 2)
    try:
        result = str(lin(torch.from_numpy(_f64_input())).dtype).removeprefix("torch.")
    except RuntimeError as exc:
        result = f"RuntimeError: {exc}"
    return {"parameter_dtype": str(lin.weight.dtype).removeprefix("torch."),
            "tensor_from_python_floats": str(torch.tensor([0.5]).dtype).removeprefix("torch."),
            "tensor_from_float64_numpy": str(torch.from_numpy(_f64_input()).dtype).removeprefix("torch."),
            "dense_on_float64_input": result}


def _dtype_keras():
    keras = import_keras()
    layer = keras.layers.Dense(2)
    out = layer(_f64_input())
    name = keras.backend.standardize_dtype
    return {"parameter_dtype": name(layer.kernel.dtype), "floatx": keras.config.floatx(),
            "tensor_from_float64_numpy": name(keras.ops.convert_to_tensor(_f64_input()).dtype),
            "dense_on_float64_input": name(out.dtype)}


def _dtype_reference():
    lin = ref.Linear(3, 2, rng=0)
    return {"parameter_dtype": str(lin.params["weight"].dtype),
            "dense_on_float64_input": str(lin.forward(_f64_input()).dtype),
            "dense_on_float32_input": str(lin.forward(_f64_input().astype(np.float32)).dtype)}


probe("float-dtypes", "default float dtypes, and a float64 batch fed to a float32 layer", "numerics",
      "The dtype of a fresh layer's parameters, of tensors made from Python floats and from a float64 "
      "numpy array, and what a fresh dense layer does with a float64 batch.",
      "Both frameworks create float32 parameters, but a float64 numpy batch stays float64 in PyTorch "
      "(torch.from_numpy keeps the dtype) and the float32 layer refuses it, while Keras silently casts "
      "it to float32. Convert inputs with .astype(np.float32) explicitly; when comparing against a "
      "float64 reference (this project), build the framework layers in float64 instead.",
      frameworks={"torch": _dtype_torch, "keras": _dtype_keras}, reference=_dtype_reference,
      verdict=compare_key("dense_on_float64_input", reference_keys=("parameter_dtype",)))


# -- determinism ---------------------------------------------------------------
DET = {"x": (8, 16, 16, 16), "out": 16, "k": 3, "repeats": 3}


def _det_input() -> np.ndarray:
    return np.random.default_rng(7).standard_normal(DET["x"]).astype(np.float32)


def _spread(runs: list[np.ndarray]) -> float:
    return float(max(np.abs(r - runs[0]).max() for r in runs))


def _det_torch():
    torch = import_torch()
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(DET["x"][1], DET["out"], DET["k"])
    outs, grads = [], []
    for _ in range(DET["repeats"]):
        x = torch.from_numpy(_det_input()).requires_grad_(True)
        y = conv(x)
        y.square().sum().backward()
        outs.append(y.detach().numpy())
        grads.append(x.grad.numpy())
    inits = []
    for _ in range(2):
        torch.manual_seed(0)
        inits.append(torch.nn.Conv2d(DET["x"][1], DET["out"], DET["k"]).weight.detach().numpy())
    return {"forward_spread": _spread(outs), "dx_spread": _spread(grads), "seeded_init_spread": _spread(inits)}


def _det_keras():
    keras, tf = import_keras(), import_tf()
    keras.utils.set_random_seed(0)
    layer = keras.layers.Conv2D(DET["out"], DET["k"])
    outs, grads = [], []
    for _ in range(DET["repeats"]):
        x = tf.Variable(_det_input().transpose(0, 2, 3, 1))
        with tf.GradientTape() as tape:
            y = layer(x)
            loss = tf.reduce_sum(tf.square(y))
        outs.append(y.numpy())
        grads.append(tape.gradient(loss, x).numpy())
    inits = []
    for _ in range(2):
        keras.utils.set_random_seed(0)
        fresh = keras.layers.Conv2D(DET["out"], DET["k"])
        fresh.build((None, *DET["x"][2:], DET["x"][1]))
        inits.append(fresh.kernel.numpy())
    return {"forward_spread": _spread(outs), "dx_spread": _spread(grads), "seeded_init_spread": _spread(inits)}


def _det_reference():
    conv = ref.Conv2d(DET["x"][1], DET["out"], DET["k"], dtype=np.float32, rng=0)
    outs, grads = [], []
    for _ in range(DET["repeats"]):
        y = conv.forward(_det_input())
        outs.append(y)
        grads.append(conv.backward(2 * y))
    inits = [ref.Conv2d(DET["x"][1], DET["out"], DET["k"], rng=0).params["weight"] for _ in range(2)]
    return {"forward_spread": _spread(outs), "dx_spread": _spread(grads), "seeded_init_spread": _spread(inits)}


probe("determinism", "repeated runs on one CPU: identical bits?", "numerics",
      f"A float32 3x3 conv on a {DET['x']} batch, forward and input gradient run {DET['repeats']} times, "
      "and two seeded initialisations: the largest difference between runs.",
      "On CPU both frameworks repeat themselves bit for bit here, and seeding (torch.manual_seed, "
      "keras.utils.set_random_seed) reproduces the initial weights. Seeds do not carry across frameworks: "
      "the same seed gives unrelated weights in PyTorch and Keras, so copy weights, never seeds. GPU "
      "kernels and thread-count changes can break bitwise repeatability (torch.use_deterministic_algorithms, "
      "tf.config.experimental.enable_op_determinism).",
      frameworks={"torch": _det_torch, "keras": _det_keras}, reference=_det_reference,
      verdict=compare_key("forward_spread", "dx_spread", "seeded_init_spread", reference_keys=("forward_spread",)))
