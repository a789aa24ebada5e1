"""Batch-norm probes: momentum and epsilon, the variance kept in the running statistics, and
what a freshly built layer does when called, and which of them ``reference.BatchNorm2d`` follows.

One channel, a float64 batch ``x (N, 1, H, W)`` (Keras: ``(N, H, W, 1)``); every number is read
back from the layer's running statistics or outputs, not from its attributes.
"""

from __future__ import annotations

import numpy as np

import reference as ref

from .base import compare_key, import_keras, import_nnx, import_torch, probe

SHAPE = (4, 1, 2, 2)


def batch() -> np.ndarray:
    """``(4, 1, 2, 2)`` float64 with mean about 5 and std about 2 (seeded)."""
    return 5.0 + 2.0 * np.random.default_rng(5).standard_normal(SHAPE)


def _torch_bn():
    torch = import_torch()
    return torch, torch.nn.BatchNorm2d(1, dtype=torch.float64)


def _keras_bn():
    keras = import_keras()
    layer = keras.layers.BatchNormalization(dtype="float64")
    layer.build((None, *SHAPE[2:], 1))
    return keras, layer


def _nhwc(x: np.ndarray) -> np.ndarray:
    return x.transpose(0, 2, 3, 1)


def _stats_evidence(mean_after: float, var_after: float, eps_measured: float) -> dict:
    """From one training step starting at running mean 0 / var 1: the weight of the batch in the
    running mean, the variance that weight implies was used, and its ratio to the biased variance."""
    x = batch()
    w = mean_after / x.mean()
    var_used = (var_after - (1.0 - w)) / w
    return {"batch_weight": w, "running_var_used_over_biased_var": var_used / x.var(), "n": x.size,
            "eps_measured": eps_measured}


def _eps_from_inference(x: np.ndarray, out: np.ndarray) -> float:
    """With running mean 0, var 1, gamma 1, beta 0: ``out = x / sqrt(1 + eps)``."""
    return float(np.median((x / out) ** 2) - 1.0)


def _stats_torch():
    torch, bn = _torch_bn()
    x = batch()
    with torch.no_grad():
        bn.eval()
        eps = _eps_from_inference(x, bn(torch.from_numpy(x)).numpy())
        bn.train()
        bn(torch.from_numpy(x))
    return {**_stats_evidence(float(bn.running_mean[0]), float(bn.running_var[0]), eps), "attr_momentum": bn.momentum,
            "attr_eps": bn.eps}


def _stats_keras():
    _, bn = _keras_bn()
    x = _nhwc(batch())
    eps = _eps_from_inference(x, np.asarray(bn(x, training=False)))
    bn(x, training=True)
    return {**_stats_evidence(float(bn.moving_mean.numpy()[0]), float(bn.moving_variance.numpy()[0]), eps),
            "attr_momentum": bn.momentum, "attr_epsilon": bn.epsilon}


def _stats_reference(unbiased_running_var: bool = True):
    bn = ref.BatchNorm2d(1, unbiased_running_var=unbiased_running_var)
    x = batch()
    eps = _eps_from_inference(x, bn.eval().forward(x))
    bn.train().forward(x)
    return {**_stats_evidence(float(bn.buffers["running_mean"][0]), float(bn.buffers["running_var"][0]), eps),
            "attr_momentum": bn.momentum, "attr_eps": bn.eps}


def _stats_close(a: float, b: float) -> bool:
    # the conventions differ tenfold (0.1 vs 0.01, 1e-5 vs 1e-3): 1e-3 only absorbs float32 measurement
    return bool(np.isclose(a, b, rtol=1e-3))


def _without_variance(evidence: dict) -> dict:
    """The momentum/epsilon evidence; the variance ratio has its own probe."""
    return {k: v for k, v in evidence.items() if k != "running_var_used_over_biased_var"}


probe("batchnorm-momentum-epsilon", "batch norm: momentum convention and epsilon", "batch norm",
      f"One training step of a fresh one-channel batch norm on a {SHAPE} batch (running mean 0, var 1): "
      "the weight the batch mean gets in the running mean, and the epsilon measured from an inference "
      "output (out = x / sqrt(1 + eps)).",
      "PyTorch's momentum is the weight of the new batch (0.1: running = 0.9*running + 0.1*batch); Keras' "
      "momentum is the weight of the old value (0.99: running = 0.99*running + 0.01*batch). Porting "
      "momentum=0.1 to Keras means momentum=0.9, and Keras' default averages over ~10x more batches. "
      "Epsilon defaults differ by 100x (1e-5 vs 1e-3), which matters for channels with tiny variance. "
      "Set both explicitly when porting. reference.BatchNorm2d takes PyTorch's momentum and eps.",
      frameworks={"torch": lambda: _without_variance(_stats_torch()),
                  "keras": lambda: _without_variance(_stats_keras())},
      reference=lambda: _without_variance(_stats_reference()),
      verdict=compare_key("batch_weight", "eps_measured", equal=_stats_close, reference_equal=_stats_close))


def _var_close(a: float, b: float) -> bool:
    return bool(np.isclose(a, b, rtol=1e-6))


def _var_torch():
    return {key: v for key, v in _stats_torch().items() if key in ("running_var_used_over_biased_var", "n")}


def _var_keras():
    return {key: v for key, v in _stats_keras().items() if key in ("running_var_used_over_biased_var", "n")}


def _var_reference():
    """The default, and the ratio with ``unbiased_running_var=False`` (the switch for Keras' convention)."""
    key = "running_var_used_over_biased_var"
    return {key: _stats_reference()[key], "n": int(np.prod(SHAPE)),
            f"{key} (unbiased_running_var=False)": _stats_reference(unbiased_running_var=False)[key]}


probe("batchnorm-running-variance", "batch norm: biased or unbiased variance in the running statistics",
      "batch norm",
      f"The same step: the variance folded into the running variance, divided by the biased batch variance "
      f"(n = {int(np.prod(SHAPE))} values per channel; unbiased would give n/(n-1)).",
      "PyTorch normalises the batch with the biased variance but stores the unbiased one (x n/(n-1)) in "
      "running_var; Keras stores the biased one. With small batches or small feature maps (n = N*H*W per "
      "channel) inference outputs differ after porting the running statistics; multiply Keras' "
      "moving_variance by n/(n-1) or accept the difference. The reference follows PyTorch by default; "
      "reference.BatchNorm2d(..., unbiased_running_var=False) stores the biased one, as Keras.",
      frameworks={"torch": _var_torch, "keras": _var_keras}, reference=_var_reference,
      verdict=compare_key("running_var_used_over_biased_var", equal=_var_close, reference_equal=_var_close))


def _mode_close(a: float, b: float) -> bool:
    # training mode gives a mean of ~1e-16, inference the input's (~4.8): 1e-3 separates them plainly
    return bool(np.isclose(a, b, atol=1e-3))


def _mode_torch():
    torch, bn = _torch_bn()
    x = batch()
    with torch.no_grad():
        out = bn(torch.from_numpy(x)).numpy()
    return {"out_mean": float(out.mean()), "out_std": float(out.std()), "running_mean_after": float(bn.running_mean[0]),
            "input_mean": float(x.mean())}


def _mode_reference():
    bn = ref.BatchNorm2d(1)
    x = batch()
    out = bn.forward(x)
    return {"out_mean": float(out.mean()), "out_std": float(out.std()),
            "running_mean_after": float(bn.buffers["running_mean"][0]), "input_mean": float(x.mean())}


def _mode_keras():
    _, bn = _keras_bn()
    x = _nhwc(batch())
    out = np.asarray(bn(x))
    return {"out_mean": float(out.mean()), "out_std": float(out.std()),
            "running_mean_after": float(bn.moving_mean.numpy()[0]), "input_mean": float(x.mean())}


probe("batchnorm-default-mode", "batch norm: what a freshly built layer does when called directly",
      "batch norm",
      "Call a new batch-norm layer on the batch (mean about 5) without saying train or eval: the output's "
      "mean and std, and whether the running mean moved.",
      "A PyTorch module starts in training mode: it normalises with the batch statistics and updates "
      "its running mean until you call .eval(). A Keras layer called directly runs in inference mode "
      "(training defaults to False outside fit()): it uses the moving statistics (initially 0 and 1, "
      "so it returns x/sqrt(1+eps)) and updates nothing. Comparing the two layers on one batch needs "
      "model.eval() in PyTorch and training=False in Keras (or train() and training=True). A reference "
      "layer starts in training mode, as PyTorch's (layer.eval() / layer.train() switch it).",
      frameworks={"torch": _mode_torch, "keras": _mode_keras}, reference=_mode_reference,
      verdict=compare_key("out_mean", equal=_mode_close, reference_equal=_mode_close))


# -- a frozen layer in training ---------------------------------------------------------------------------------------
def _frozen_torch():
    torch, bn = _torch_bn()
    bn.requires_grad_(False)
    bn.train()
    x = batch()
    with torch.no_grad():
        out = bn(torch.from_numpy(x)).numpy()
    return {"frozen_by": "requires_grad_(False), train()", "out_mean": float(out.mean()),
            "running_mean_after": float(bn.running_mean[0]), "input_mean": float(x.mean())}


def _frozen_keras():
    _, bn = _keras_bn()
    bn.trainable = False
    x = _nhwc(batch())
    out = np.asarray(bn(x, training=True))
    _, live = _keras_bn()
    live_out = np.asarray(live(x, training=True))
    return {"frozen_by": "trainable = False, called with training=True", "out_mean": float(out.mean()),
            "running_mean_after": float(bn.moving_mean.numpy()[0]), "input_mean": float(x.mean()),
            "trainable=True, training=True": {"out_mean": float(live_out.mean()),
                                             "running_mean_after": float(live.moving_mean.numpy()[0])}}


def _frozen_jax():

    jnp, nnx = import_nnx()
    bn = nnx.BatchNorm(1, param_dtype=jnp.float64, rngs=nnx.Rngs(0))
    # running statistics are created float32 whatever param_dtype (flax-batchnorm-momentum-epsilon)
    bn.mean.set_value(jnp.zeros(1, jnp.float64))
    bn.var.set_value(jnp.ones(1, jnp.float64))
    bn.train()  # what model.train() sets: use_running_average=False; nnx has no per-layer trainable flag
    x = batch().transpose(0, 2, 3, 1)
    out = np.asarray(bn(jnp.asarray(x)))
    return {"frozen_by": "left out of the optimizer (nnx.Optimizer(wrt=...)), model.train()",
            "out_mean": float(out.mean()), "running_mean_after": float(bn.mean[...][0]), "input_mean": float(x.mean())}


def _frozen_reference():
    bn = ref.BatchNorm2d(1)
    x = batch()
    out = bn.train().forward(x)
    return {"frozen_by": "not stepped by the optimizer, train()", "out_mean": float(out.mean()),
            "running_mean_after": float(bn.buffers["running_mean"][0]), "input_mean": float(x.mean())}


probe("batchnorm-frozen", "batch norm: a frozen layer called in training", "batch norm",
      "A one-channel batch norm frozen the way each framework freezes layers for fine-tuning (PyTorch: "
      "requires_grad_(False) in train mode; Keras: trainable = False, called with training=True; Flax: no trainable "
      "flag, the layer in train mode and left out of the optimizer) on the batch (mean about 5): the output's mean "
      "(0: batch statistics; the input's: the moving ones) and whether the running mean moved.",
      "Keras' BatchNormalization with trainable = False runs in inference mode whatever training says: it "
      "normalises with its moving statistics and stops updating them (the fine-tuning convention since TF 2.0). "
      "PyTorch's requires_grad_(False) only freezes gamma and beta: in train() the layer still normalises with "
      "the batch statistics and keeps updating running_mean/var; Flax's nnx.BatchNorm likewise follows only "
      "use_running_average (model.train()/eval()). Port a Keras fine-tuning setup to PyTorch by also calling "
      ".eval() on the frozen batch-norm modules (again after every model.train()), and to Flax with "
      "use_running_average=True on them. The reference, like PyTorch, decides by train()/eval() only.",
      frameworks={"torch": _frozen_torch, "keras": _frozen_keras, "jax": _frozen_jax}, reference=_frozen_reference,
      verdict=compare_key("out_mean", equal=_mode_close, reference_equal=_mode_close))
