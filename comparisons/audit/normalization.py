"""Layer- and group-norm probes: the epsilon each framework's layer adds by default (read off its output), the
axes a layer norm normalises, which channels a group norm puts together, and how exact their float32 statistics are
on an input with a large mean.

Epsilon: every block of the float64 input holds +-1 (mean 0, biased variance 1), so with a fresh layer
(scale 1, offset 0) the output is ``x / sqrt(1 + eps)`` and ``eps = (x / out)**2 - 1``. Blocks: one input cell
is changed and the output cells that move are its block (named by the logical axes ``C``, ``H``, ``W``).
"""

from __future__ import annotations

import numpy as np

import reference as ref

from .base import compare_key, import_keras, import_nnx, import_torch, probe

SHAPE = {"n": 1, "c": 4, "h": 3, "w": 2}  # the last axis and the channels even: +-1 blocks of mean 0
GROUPS = 2


def signs() -> np.ndarray:
    """``(N, C, H, W)`` float64 of +-1 alternating along each axis: every block of even size along the normalised
    axes (the last axis, the channels, a group of 2 channels) has mean 0 and biased variance 1."""
    n, c, h, w = SHAPE["n"], SHAPE["c"], SHAPE["h"], SHAPE["w"]
    grid = np.indices((n, c, h, w)).sum(axis=0)
    return np.where(grid % 2 == 0, 1.0, -1.0)


def eps_from(x: np.ndarray, out: np.ndarray) -> float:
    """``out = x / sqrt(1 + eps)`` -> ``eps``, the median over the cells."""
    return float(np.median((x / out) ** 2) - 1.0)


def block_of(fn, cell: tuple[int, int, int, int] = (0, 1, 1, 1)) -> list[str]:
    """The logical axes along which the output cells move when ``cell`` of an NCHW input changes: ``fn(x (N, C, H,
    W)) -> (N, C, H, W)`` runs the layer (in whatever layout it needs)."""
    x = np.random.default_rng(31).standard_normal((SHAPE["n"], SHAPE["c"], SHAPE["h"], SHAPE["w"]))
    moved_x = x.copy()
    moved_x[cell] += 1.0
    moved = np.argwhere(np.abs(fn(moved_x) - fn(x)) > 1e-12)
    return [name for axis, name in zip((1, 2, 3), "CHW", strict=True) if len(set(moved[:, axis])) > 1]


def channel_groups(fn) -> list[list[int]]:
    """The channels that share statistics: for each channel, the channels whose outputs move when it changes."""
    x = np.random.default_rng(32).standard_normal((SHAPE["n"], SHAPE["c"], SHAPE["h"], SHAPE["w"]))
    base = fn(x)
    groups = []
    for c in range(SHAPE["c"]):
        moved_x = x.copy()
        moved_x[:, c] += np.linspace(0.5, 1.5, SHAPE["h"] * SHAPE["w"]).reshape(SHAPE["h"], SHAPE["w"])
        group = sorted({int(k) for k in np.argwhere(np.abs(fn(moved_x) - base) > 1e-12)[:, 1]})
        if group not in groups:
            groups.append(group)
    return groups


def _nhwc(fn):
    """``fn`` on NHWC arrays as a function of NCHW arrays."""
    return lambda x: np.asarray(fn(x.transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)


# -- layer norm -------------------------------------------------------------------------------------------------
def _layer_torch():
    torch = import_torch()
    w = SHAPE["w"]
    layer = torch.nn.LayerNorm(w, dtype=torch.float64)
    full = torch.nn.LayerNorm((SHAPE["c"], SHAPE["h"], w), dtype=torch.float64)

    def run(module):
        return lambda x: module(torch.from_numpy(x)).detach().numpy()

    return {"built_as": f"LayerNorm({w}) (the last axis of NCHW)", "eps_attr": layer.eps,
            "eps_measured": eps_from(signs(), run(layer)(signs())), "normalized_axes": block_of(run(layer)),
            "LayerNorm((C, H, W))": {"normalized_axes": block_of(run(full)),
                                     "weight_shape": list(full.weight.shape)},
            "default": "none: normalized_shape is required"}


def _layer_keras():
    keras = import_keras()
    layer = keras.layers.LayerNormalization(dtype="float64")
    full = keras.layers.LayerNormalization(axis=[1, 2, 3], dtype="float64")
    run, run_full = _nhwc(layer), _nhwc(full)
    evidence = {"built_as": "LayerNormalization() on NHWC", "eps_attr": layer.epsilon, "axis_attr": layer.axis,
                "eps_measured": eps_from(signs(), run(signs())), "normalized_axes": block_of(run)}
    evidence["LayerNormalization(axis=[1, 2, 3])"] = {"normalized_axes": block_of(run_full),
                                                       "gamma_shape": list(full.gamma.shape)}
    return evidence


def _layer_jax():

    jnp, nnx = import_nnx()
    layer = nnx.LayerNorm(SHAPE["c"], param_dtype=jnp.float64, rngs=nnx.Rngs(0))
    run = _nhwc(lambda x: layer(jnp.asarray(x)))
    return {"built_as": f"nnx.LayerNorm({SHAPE['c']}) on NHWC", "eps_attr": layer.epsilon,
            "reduction_axes_attr": layer.reduction_axes, "use_fast_variance": layer.use_fast_variance,
            "eps_measured": eps_from(signs(), run(signs())), "normalized_axes": block_of(run)}


def _layer_reference():
    layer = ref.LayerNorm(SHAPE["w"])
    return {"built_as": f"LayerNorm({SHAPE['w']}) (the last axis of NCHW)", "eps_attr": layer.eps,
            "eps_measured": eps_from(signs(), layer.forward(signs())), "normalized_axes": block_of(layer.forward)}


def _eps_close(a: float, b: float) -> bool:
    # the defaults differ tenfold or more (1e-6, 1e-5, 1e-3); eps is read off (x/out)**2 - 1 (~1e-10 relative)
    return bool(np.isclose(a, b, rtol=1e-3))


probe("layernorm-epsilon", "layer norm: default epsilon", "normalization",
      "A fresh layer norm over the last axis on float64 blocks of +-1 (variance 1): epsilon read off the output, "
      "out = x / sqrt(1 + eps), and the layer's attribute.",
      "The defaults differ: PyTorch's nn.LayerNorm eps=1e-5, Keras' LayerNormalization epsilon=1e-3, Flax's "
      "nnx.LayerNorm epsilon=1e-6. On a block of variance v the output scales by sqrt(v / (v + eps)): 5e-4 "
      "relative at v = 1 between Keras and PyTorch, and much more for blocks of small variance. Set epsilon "
      "explicitly when porting (Transformers use 1e-5, 1e-6 or 1e-12). Flax's layer norm also computes the "
      "variance as E[x^2] - E[x]^2 (use_fast_variance=True), which loses precision in float32 when the mean is "
      "large against the spread. The reference takes PyTorch's 1e-5.",
      frameworks={"torch": _layer_torch, "keras": _layer_keras, "jax": _layer_jax}, reference=_layer_reference,
      verdict=compare_key("eps_measured", equal=_eps_close, reference_equal=_eps_close))


probe("layernorm-axes", "layer norm: which axes of a feature map it normalises", "normalization",
      f"A layer norm built for the last axis of each framework's layout (PyTorch LayerNorm(W) on NCHW, Keras "
      f"LayerNormalization() and Flax nnx.LayerNorm(C) on NHWC) on a (N, C, H, W) = {tuple(SHAPE.values())} map: "
      "the logical axes of the block whose outputs move when one input cell changes; and the layers that "
      "normalise over (C, H, W) in PyTorch and Keras, with their parameter shapes.",
      "Each normalises its last axis by default, which is the width in PyTorch's NCHW and the channels in Keras' "
      "and Flax's NHWC. Keras' LayerNormalization() on a feature map is PyTorch's LayerNorm(C) applied to "
      "x.permute(0, 2, 3, 1) (ConvNeXt's 'channels_last' layer norm); nn.LayerNorm(C) on NCHW raises unless "
      "W == C, and then silently normalises over the width. PyTorch's LayerNorm((C, H, W)) normalises the whole "
      "map with a (C, H, W) weight; Keras' LayerNormalization(axis=[1, 2, 3]) does too, with an (H, W, C) gamma "
      "(transpose it when porting). The reference normalises its trailing normalized_shape axes, as PyTorch.",
      frameworks={"torch": _layer_torch, "keras": _layer_keras, "jax": _layer_jax}, reference=_layer_reference,
      verdict=compare_key("normalized_axes"))


# -- group norm -------------------------------------------------------------------------------------------------
def _group_torch():
    torch = import_torch()
    layer = torch.nn.GroupNorm(GROUPS, SHAPE["c"], dtype=torch.float64)

    def run(x):
        return layer(torch.from_numpy(x)).detach().numpy()

    return {"built_as": f"GroupNorm({GROUPS}, {SHAPE['c']})", "eps_attr": layer.eps,
            "eps_measured": eps_from(signs(), run(signs())), "channel_groups": channel_groups(run),
            "default_groups": "none: num_groups is required"}


def _group_keras():
    keras = import_keras()
    layer = keras.layers.GroupNormalization(groups=GROUPS, dtype="float64")
    run = _nhwc(layer)
    return {"built_as": f"GroupNormalization(groups={GROUPS}) on NHWC", "eps_attr": layer.epsilon,
            "eps_measured": eps_from(signs(), run(signs())), "channel_groups": channel_groups(run),
            "default_groups": keras.layers.GroupNormalization().groups}


def _group_jax():

    jnp, nnx = import_nnx()
    layer = nnx.GroupNorm(SHAPE["c"], num_groups=GROUPS, param_dtype=jnp.float64, rngs=nnx.Rngs(0))
    run = _nhwc(lambda x: layer(jnp.asarray(x)))
    return {"built_as": f"nnx.GroupNorm({SHAPE['c']}, num_groups={GROUPS}) on NHWC", "eps_attr": layer.epsilon,
            "eps_measured": eps_from(signs(), run(signs())), "channel_groups": channel_groups(run),
            "default_groups": nnx.GroupNorm(32, rngs=nnx.Rngs(0)).num_groups}


def _group_reference():
    layer = ref.GroupNorm(GROUPS, SHAPE["c"])
    return {"built_as": f"GroupNorm({GROUPS}, {SHAPE['c']})", "eps_attr": layer.eps,
            "eps_measured": eps_from(signs(), layer.forward(signs())), "channel_groups": channel_groups(layer.forward)}


probe("groupnorm-epsilon", "group norm: default epsilon and the channels of a group", "normalization",
      f"A fresh group norm with {GROUPS} groups of {SHAPE['c']} channels on float64 blocks of +-1: epsilon read off "
      "the output, which channels share statistics (changing one channel moves the outputs of its group), and "
      "the default number of groups.",
      "The grouping agrees (consecutive channels, in each framework's channel axis), epsilon does not: PyTorch's "
      "nn.GroupNorm eps=1e-5, Keras' GroupNormalization epsilon=1e-3, Flax's nnx.GroupNorm epsilon=1e-6. Keras "
      "and Flax also default to 32 groups where PyTorch requires num_groups. Set epsilon and the groups "
      "explicitly when porting. The reference takes PyTorch's 1e-5.",
      frameworks={"torch": _group_torch, "keras": _group_keras, "jax": _group_jax}, reference=_group_reference,
      verdict=compare_key("eps_measured", "channel_groups", equal=lambda a, b: a == b or (
          isinstance(a, float) and _eps_close(a, b)), reference_equal=lambda a, b: a == b or (
          isinstance(a, float) and _eps_close(a, b))))


# -- float32 statistics of a large-mean input -------------------------------------------------------------------------
LARGE = {"rows": (8, 64), "map": (4, 8, 4, 4), "groups": 2, "mean": 1e4, "std": 1.0, "eps": 1e-5}
ACCURATE = 1e-2  # float32 outputs of mean-1e4 inputs err ~1e-3 (the input's own rounding); a cancelled variance ~1e3


def large_mean(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """float32 values of mean 1e4 and std 1 (seeded)."""
    return (LARGE["mean"] + LARGE["std"] * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def standardized(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """``x`` standardised over ``axes`` in float64, two-pass, with ``eps``: the exact output."""
    x = x.astype(np.float64)
    centred = x - x.mean(axis=axes, keepdims=True)
    return centred / np.sqrt((centred ** 2).mean(axis=axes, keepdims=True) + LARGE["eps"])


def _large_evidence(layer_out, group_out) -> dict:
    """Max abs errors of the layer-norm output (rows, the last axis) and the group-norm output (NCHW, 2 groups)
    against :func:`standardized`."""
    rows, fmap = large_mean(LARGE["rows"], 51), large_mean(LARGE["map"], 52)
    n, c, h, w = LARGE["map"]
    grouped = standardized(fmap.reshape(n, LARGE["groups"], c // LARGE["groups"], h, w), (2, 3, 4)).reshape(fmap.shape)
    layer_err = float(np.abs(np.asarray(layer_out, np.float64) - standardized(rows, (1,))).max())
    group_err = float(np.abs(np.asarray(group_out, np.float64) - grouped).max())
    return {"layer_norm_max_abs_err": layer_err, "group_norm_max_abs_err": group_err,
            "layer_norm_accurate": layer_err < ACCURATE, "group_norm_accurate": group_err < ACCURATE}


def _large_torch():
    torch = import_torch()
    rows, fmap = large_mean(LARGE["rows"], 51), large_mean(LARGE["map"], 52)
    layer = torch.nn.LayerNorm(rows.shape[1], eps=LARGE["eps"])
    group = torch.nn.GroupNorm(LARGE["groups"], fmap.shape[1], eps=LARGE["eps"])
    with torch.no_grad():
        return _large_evidence(layer(torch.from_numpy(rows)).numpy(), group(torch.from_numpy(fmap)).numpy())


def _large_keras():
    keras = import_keras()
    rows, fmap = large_mean(LARGE["rows"], 51), large_mean(LARGE["map"], 52)
    layer = keras.layers.LayerNormalization(epsilon=LARGE["eps"])
    group = keras.layers.GroupNormalization(groups=LARGE["groups"], epsilon=LARGE["eps"])
    return _large_evidence(layer(rows), _nhwc(group)(fmap))


def _large_jax():

    jnp, nnx = import_nnx()
    rows, fmap = large_mean(LARGE["rows"], 51), large_mean(LARGE["map"], 52)

    def measured(**kwargs) -> dict:
        layer = nnx.LayerNorm(rows.shape[1], epsilon=LARGE["eps"], rngs=nnx.Rngs(0), **kwargs)
        group = nnx.GroupNorm(fmap.shape[1], num_groups=LARGE["groups"], epsilon=LARGE["eps"], rngs=nnx.Rngs(0),
                              **kwargs)
        return {**_large_evidence(layer(jnp.asarray(rows)), _nhwc(lambda x: group(jnp.asarray(x)))(fmap)),
                "use_fast_variance": layer.use_fast_variance}

    return {**measured(), "use_fast_variance=False": measured(use_fast_variance=False)}


def _large_reference():
    rows, fmap = large_mean(LARGE["rows"], 51), large_mean(LARGE["map"], 52)
    layer = ref.LayerNorm(rows.shape[1], eps=LARGE["eps"], dtype=np.float32)
    group = ref.GroupNorm(LARGE["groups"], fmap.shape[1], eps=LARGE["eps"], dtype=np.float32)
    return _large_evidence(layer.forward(rows), group.forward(fmap))


probe("norm-float32-large-mean", "layer and group norm: float32 statistics of an input with a large mean",
      "normalization",
      f"Float32 inputs of mean {LARGE['mean']:g} and std {LARGE['std']:g} through a layer norm over the last axis "
      f"of {LARGE['rows']} and a group norm ({LARGE['groups']} groups) of {LARGE['map']} NCHW, epsilon "
      f"{LARGE['eps']:g} everywhere: the largest error of the output against the float64 two-pass result (~1e-3: "
      "the input's own rounding; ~1e3: the variance cancelled).",
      "Flax's nnx.LayerNorm and nnx.GroupNorm default to use_fast_variance=True: they compute the variance as "
      "E[x^2] - E[x]^2, which in float32 loses every digit when the mean is large against the spread (x^2 ~ 1e8, "
      "float32 resolves ~8 there, the variance is 1): the variance comes out ~0 and the output is off by ~1e3. "
      "PyTorch and Keras (TensorFlow) subtract the mean first and stay at the input's rounding. Un-normalised "
      "inputs (raw pixel values, positions, embeddings with an offset) meet this in the first normalisation "
      "layer: pass use_fast_variance=False to Flax's norm layers when porting (or compute in float32 only "
      "after centring). The reference computes two-pass statistics.",
      frameworks={"torch": _large_torch, "keras": _large_keras, "jax": _large_jax}, reference=_large_reference,
      verdict=compare_key("layer_norm_accurate", "group_norm_accurate"))
