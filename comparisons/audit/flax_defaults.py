"""Flax NNX defaults against PyTorch's and Keras': a fresh ``nnx.Conv``'s padding and kernel initialiser,
``nnx.BatchNorm``'s momentum, epsilon and running variance, and ``nnx.avg_pool``'s treatment of padding.
Each probe builds the layers with their defaults and measures what they compute (float64 where the probe
reads small differences; JAX runs with the registry's ``compare`` settings, x64 on).
"""

from __future__ import annotations

import numpy as np

import reference as ref

from . import batchnorm, pooling
from .base import compare_key, decide, import_keras, import_nnx, import_torch, probe
from .initializers import same_scale, sample_stats
from .padding import _shift_evidence, keras_conv, reference_conv, shift_input, shift_kernel, torch_conv

# -- conv default padding ----------------------------------------------------------
PAD = {"n": 5, "k": 3}


def _pad_torch():
    torch = import_torch()
    n, k = PAD["n"], PAD["k"]
    conv = torch.nn.Conv2d(1, 1, k, bias=False)
    return {**_shift_evidence(torch_conv(shift_input(n), shift_kernel(k), 1, conv.padding), n, k, 1),
            "padding_default": list(conv.padding)}


def _pad_keras():
    keras = import_keras()
    n, k = PAD["n"], PAD["k"]
    default = keras.layers.Conv2D(1, k).padding
    return {**_shift_evidence(keras_conv(shift_input(n), shift_kernel(k), 1, default), n, k, 1),
            "padding_default": default}


def _pad_jax():
    jnp, nnx = import_nnx()
    n, k = PAD["n"], PAD["k"]
    # every argument but the sizes by default; the kernel is replaced by the shift kernel, so it starts at zeros
    conv = nnx.Conv(1, 1, (k, k), use_bias=False, kernel_init=nnx.initializers.zeros_init(), rngs=nnx.Rngs(0))
    conv.kernel[...] = jnp.asarray(shift_kernel(k).transpose(2, 3, 1, 0))
    out = np.asarray(conv(jnp.asarray(shift_input(n).transpose(0, 2, 3, 1)))).transpose(0, 3, 1, 2)
    return {**_shift_evidence(out, n, k, 1), "padding_default": conv.padding}


def _pad_reference():
    n, k = PAD["n"], PAD["k"]
    return {**_shift_evidence(reference_conv(shift_input(n), shift_kernel(k), 1, 0), n, k, 1),
            "padding_default": list(ref.Conv2d(1, 1, k).padding)}


probe("flax-conv-default-padding", "Flax nnx.Conv pads 'SAME' by default", "convolution padding",
      f"A conv layer built with only its sizes (kernel {PAD['k']}, input {PAD['n']}x{PAD['n']}): the output size "
      "and the padding read back with a shift kernel.",
      "nnx.Conv (and linen.Conv) default to padding='SAME', so a Flax port of nn.Conv2d(c, f, 3) keeps the "
      "input size where PyTorch (padding=0) and Keras (padding='valid') shrink it by k-1: every later shape, "
      "and the Dense layer after Flatten, differ. Pass padding='VALID' (or the explicit pairs) when porting "
      "to Flax, and padding=k//2 / 'same' when porting from it. The reference pads 0 by default, as PyTorch.",
      frameworks={"torch": _pad_torch, "keras": _pad_keras, "jax": _pad_jax}, reference=_pad_reference,
      verdict=compare_key("out_size", "pad"))


# -- conv default kernel initialiser ----------------------------------------------
INIT = {"in": 16, "out": 64, "k": 3}  # fan_in 144 != fan_out 576, so LeCun and Glorot scales differ


def _fans() -> dict:
    k2 = INIT["k"] ** 2
    return {"fan_in": INIT["in"] * k2, "fan_out": INIT["out"] * k2}


def _init_evidence(weight: np.ndarray, bias: np.ndarray | None) -> dict:
    stats = sample_stats(weight)
    return {**_fans(), "weight": stats, "bias": sample_stats(np.zeros(1) if bias is None else bias),
            "std_times_sqrt_fan_in": stats["std"] * np.sqrt(_fans()["fan_in"])}


def _init_torch():
    torch = import_torch()
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(INIT["in"], INIT["out"], INIT["k"])
    return _init_evidence(conv.weight.detach().numpy(), conv.bias.detach().numpy())


def _init_keras():
    keras = import_keras()
    keras.utils.set_random_seed(0)
    layer = keras.layers.Conv2D(INIT["out"], INIT["k"])
    layer.build((None, 8, 8, INIT["in"]))
    return _init_evidence(layer.kernel.numpy(), layer.bias.numpy())


def _init_jax():
    _, nnx = import_nnx()
    conv = nnx.Conv(INIT["in"], INIT["out"], (INIT["k"], INIT["k"]), rngs=nnx.Rngs(0))
    return _init_evidence(np.asarray(conv.kernel[...]), np.asarray(conv.bias[...]))


def _init_reference():
    conv = ref.Conv2d(INIT["in"], INIT["out"], INIT["k"], rng=0)
    return _init_evidence(conv.params["weight"], conv.params["bias"])


probe("flax-init-conv", "Flax's default conv kernel initialiser (LeCun normal)", "initialisation",
      f"A fresh conv {INIT['in']} -> {INIT['out']}, {INIT['k']}x{INIT['k']} (fan_in {_fans()['fan_in']}, fan_out "
      f"{_fans()['fan_out']}): std, max |w| and excess kurtosis of the kernel, std * sqrt(fan_in), and the bias.",
      "nnx.Conv draws kernels from lecun_normal: a normal truncated at 2 standard deviations with variance "
      "1/fan_in (std * sqrt(fan_in) = 1), and starts biases at 0. PyTorch's U(-1/sqrt(fan_in), 1/sqrt(fan_in)) "
      "has std 1/sqrt(3 fan_in) (0.577) and a random bias; Keras' glorot_uniform has variance "
      "2/(fan_in + fan_out). Flax starts at the largest scale when fan_out > fan_in: copy the initial weights, "
      "or pass kernel_init/bias_init when porting. The reference draws Keras' Glorot uniform.",
      frameworks={"torch": _init_torch, "keras": _init_keras, "jax": _init_jax}, reference=_init_reference,
      verdict=lambda evidence, reference: decide(evidence, reference, same_scale))


# -- batch norm --------------------------------------------------------------------
def _jax_bn_stats() -> dict:
    """One training step of a default ``nnx.BatchNorm(1)`` on :func:`batchnorm.batch`, after the epsilon read
    from an inference call (running mean 0, var 1). ``nnx.BatchNorm`` creates its running statistics float32
    whatever ``param_dtype`` (reported); they are replaced by float64 ones so that the step is measured to
    float64 rounding."""
    jnp, nnx = import_nnx()
    bn = nnx.BatchNorm(1, param_dtype=jnp.float64, rngs=nnx.Rngs(0))
    stats_dtype = str(bn.mean[...].dtype)
    bn.mean.set_value(jnp.zeros(1, jnp.float64))
    bn.var.set_value(jnp.ones(1, jnp.float64))
    x = jnp.asarray(batchnorm.batch().transpose(0, 2, 3, 1))
    eps = batchnorm._eps_from_inference(np.asarray(x), np.asarray(bn(x, use_running_average=True)))
    bn(x, use_running_average=False)
    return {**batchnorm._stats_evidence(float(bn.mean[...][0]), float(bn.var[...][0]), eps),
            "attr_momentum": bn.momentum, "attr_epsilon": bn.epsilon, "use_fast_variance": bn.use_fast_variance,
            "running_stats_dtype": stats_dtype}


def _without_variance(evidence: dict) -> dict:
    return {k: v for k, v in evidence.items() if k != "running_var_used_over_biased_var"}


def _variance_only(evidence: dict) -> dict:
    return {k: v for k, v in evidence.items() if k in ("running_var_used_over_biased_var", "n")}


probe("flax-batchnorm-momentum-epsilon", "Flax nnx.BatchNorm: momentum convention and epsilon", "batch norm",
      f"One training step of a fresh one-channel batch norm on a {batchnorm.SHAPE} batch (running mean 0, var 1): "
      "the weight the batch mean gets in the running mean, and epsilon read off an inference output.",
      "nnx.BatchNorm's momentum weighs the old running value, as Keras' (default 0.99: the batch gets 0.01), "
      "and its epsilon is PyTorch's 1e-5 (Keras: 1e-3). Porting PyTorch's momentum=0.1 means momentum=0.9 in "
      "Flax. Its running mean and var are created float32 even with param_dtype=float64 (set them to float64 "
      "arrays for a float64 model). The reference takes PyTorch's momentum and eps.",
      frameworks={"torch": lambda: _without_variance(batchnorm._stats_torch()),
                  "keras": lambda: _without_variance(batchnorm._stats_keras()),
                  "jax": lambda: _without_variance(_jax_bn_stats())},
      reference=lambda: _without_variance(batchnorm._stats_reference()),
      verdict=compare_key("batch_weight", "eps_measured", equal=batchnorm._stats_close,
                          reference_equal=batchnorm._stats_close))

probe("flax-batchnorm-running-variance", "Flax nnx.BatchNorm: biased or unbiased variance in the running var",
      "batch norm",
      "The same step: the variance folded into the running variance over the biased batch variance "
      f"(n = {int(np.prod(batchnorm.SHAPE))} values per channel; unbiased would give n/(n-1)).",
      "nnx.BatchNorm folds the biased batch variance into its running var, as Keras; PyTorch stores the "
      "unbiased one. Compare a Flax port with reference.BatchNorm2d(..., unbiased_running_var=False), or "
      "multiply the running var by n/(n-1) when moving statistics from Flax to PyTorch.",
      frameworks={"torch": lambda: _variance_only(batchnorm._stats_torch()),
                  "keras": lambda: _variance_only(batchnorm._stats_keras()),
                  "jax": lambda: _variance_only(_jax_bn_stats())},
      reference=batchnorm._var_reference,
      verdict=compare_key("running_var_used_over_biased_var", equal=batchnorm._var_close,
                          reference_equal=batchnorm._var_close))


# -- average pooling and its padding -----------------------------------------------
def _avg_jax():
    """``nnx.avg_pool`` over ones with explicit padding 1 (its default ``count_include_pad=True``, and False),
    and with ``padding="SAME"``."""
    jnp, nnx = import_nnx()
    k, hw = pooling.AVG["k"], pooling.AVG["hw"]
    x = jnp.ones((1, hw, hw, 1))

    def divisors(**kwargs) -> dict:
        return pooling._divisors(np.asarray(nnx.avg_pool(x, (k, k), (1, 1), **kwargs))[0, :, :, 0])

    return {"count_include_pad=True": divisors(padding=((1, 1), (1, 1))),
            "count_include_pad=False": divisors(padding=((1, 1), (1, 1)), count_include_pad=False),
            "SAME": divisors(padding="SAME")}


probe("flax-avgpool-padding", "Flax avg_pool: are padded cells counted in the divisor?", "pooling",
      f"{pooling.AVG['k']}x{pooling.AVG['k']} average pooling, stride 1, padding 1 on each side ('same' in Keras, "
      "explicit pairs and 'SAME' in Flax), over ones: the divisor at a corner, an edge and the centre.",
      "nnx.avg_pool (linen.avg_pool) counts the padding by default (count_include_pad=True), as PyTorch, and "
      "also with padding='SAME': Flax's 'SAME' average pooling divides borders by k*k, where Keras' 'same' "
      "divides by the real inputs. Port Keras' 'same' to Flax with count_include_pad=False. The reference "
      "follows PyTorch's default.",
      frameworks={"torch": pooling._avg_torch, "keras": pooling._avg_keras, "jax": _avg_jax},
      reference=pooling._avg_reference,
      verdict=compare_key(pooling.default_divisors, reference_equal=lambda a, b: a == b))
