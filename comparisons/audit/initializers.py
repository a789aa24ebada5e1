"""Default-initialisation probes: the distribution and scale of fresh Conv/Dense kernels and biases,
measured from the samples of one freshly built layer per framework (seeded)."""

from __future__ import annotations

import numpy as np

import reference as ref

from .base import decide, import_keras, import_torch, probe

CONV = {"in": 64, "out": 64, "k": 3}
DENSE = {"in": 512, "out": 256}


def sample_stats(w: np.ndarray) -> dict:
    """Max |w|, std, and excess kurtosis (uniform -1.2, normal 0, a truncated normal about -0.6)."""
    w = np.asarray(w, np.float64).ravel()
    centred = w - w.mean()
    std = centred.std()
    kurt = float((centred**4).mean() / std**4 - 3.0) if std > 0 else None
    return {"max_abs": float(np.abs(w).max()), "std": float(std), "excess_kurtosis": kurt, "count": w.size}


def _evidence(weight: np.ndarray, bias: np.ndarray) -> dict:
    return {"weight_shape": weight.shape, "weight": sample_stats(weight), "bias": sample_stats(bias)}


def _conv_torch():
    torch = import_torch()
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(CONV["in"], CONV["out"], CONV["k"])
    return _evidence(conv.weight.detach().numpy(), conv.bias.detach().numpy())


def _conv_keras():
    keras = import_keras()
    keras.utils.set_random_seed(0)
    layer = keras.layers.Conv2D(CONV["out"], CONV["k"])
    layer.build((None, 8, 8, CONV["in"]))
    return _evidence(layer.kernel.numpy(), layer.bias.numpy())


def _conv_reference():
    conv = ref.Conv2d(CONV["in"], CONV["out"], CONV["k"], rng=0)
    return _evidence(conv.params["weight"], conv.params["bias"])


def _dense_torch():
    torch = import_torch()
    torch.manual_seed(0)
    lin = torch.nn.Linear(DENSE["in"], DENSE["out"])
    return _evidence(lin.weight.detach().numpy(), lin.bias.detach().numpy())


def _dense_keras():
    keras = import_keras()
    keras.utils.set_random_seed(0)
    layer = keras.layers.Dense(DENSE["out"])
    layer.build((None, DENSE["in"]))
    return _evidence(layer.kernel.numpy(), layer.bias.numpy())


def _dense_reference():
    lin = ref.Linear(DENSE["in"], DENSE["out"], rng=0)
    return _evidence(lin.params["weight"], lin.params["bias"])


def same_scale(a: dict, b: dict) -> bool:
    """Same scale within 5% (max |w| and std) and biases both zero or both not."""
    return bool(np.isclose(a["weight"]["max_abs"], b["weight"]["max_abs"], rtol=0.05)
                and np.isclose(a["weight"]["std"], b["weight"]["std"], rtol=0.05)
                and (a["bias"]["max_abs"] == 0) == (b["bias"]["max_abs"] == 0))


def _init_verdict(evidence, reference):
    return decide(evidence, reference, same_scale)


ADVICE = ("PyTorch draws kernels and biases from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with "
          "a=sqrt(5)); Keras draws kernels from glorot_uniform, U(-sqrt(6/(fan_in+fan_out)), ...), and starts "
          "biases at zero. fan_in = in*kh*kw, fan_out = out*kh*kw. A Keras model rebuilt in PyTorch starts "
          "from a different scale (here larger in Keras) and trains differently; copy the initial weights, "
          "or set kernel_initializer/bias_initializer (Keras) or nn.init.* (PyTorch) explicitly.")


probe("init-conv", "default initialisation of a conv kernel and bias", "initialisation",
      f"A fresh Conv2d({CONV['in']} -> {CONV['out']}, {CONV['k']}x{CONV['k']}): max |w|, std and excess "
      "kurtosis of the kernel and bias samples (uniform: -1.2).",
      ADVICE, frameworks={"torch": _conv_torch, "keras": _conv_keras}, reference=_conv_reference,
      verdict=_init_verdict)


probe("init-dense", "default initialisation of a dense kernel and bias", "initialisation",
      f"A fresh Linear/Dense({DENSE['in']} -> {DENSE['out']}): the same statistics.",
      ADVICE, frameworks={"torch": _dense_torch, "keras": _dense_keras}, reference=_dense_reference,
      verdict=_init_verdict)
