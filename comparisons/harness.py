"""The harness: run a case in the reference and in a framework, compare every quantity.

Tolerances live here, with their argument. A sum of ``K`` rounded terms is off by
at most ``K * eps`` times the sum of the terms' magnitudes (Higham, *Accuracy and
Stability of Numerical Algorithms*, 2nd ed., eq. 4.4), not times the result, which
may cancel to almost nothing. So each quantity's error is measured against the
magnitude of its terms: the reference is run a second time on ``|x|``, ``|params|``
and ``|dout|`` (for conv, linear and average pooling that computes exactly the sum
of the terms' magnitudes of every element, and through the other layers it carries a
scale of the same order), and

    max_rel_err = max|ref - fw| / max(|magnitude run|, |fw|)
    tol         = 4 * eps(dtype) * max(4, K)

where ``K`` is the longest chain of additions behind any output of the case (the sum
over its layers of each layer's longest reduction): errors of successive layers add
up, each carried forward by the magnitudes the second run also carries. The factor 4
covers both implementations erring, in opposite directions. For float64 every
tolerance in the matrix is far below 1e-10 (the tests assert it); for float32 this is
the usual ``eps * reduction length`` argument.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

import reference as ref

from .cases import Case, build_reference
from .cases_options import BinaryCrossEntropyOption, bce_probabilities, bce_targets, ce_targets
from .frameworks.protocol import Framework, RunInputs
from .kinds import reduction_length


@dataclass(frozen=True)
class Record:
    """One compared quantity; the JSON report is a list of these as dicts. A quantity the framework does not compute
    (a gradient, for a forward-only runtime) is a record with ``applicable=False`` and ``passed=None``: listed, not
    counted as a pass or a failure."""

    layer: str  # the case's family and variant, e.g. "Conv2d(grouped)"
    config: str
    impl: str | None  # "loop" or "im2col"; None for a layer with one implementation (JSON null)
    framework: str
    framework_version: str
    dtype: str
    quantity: str
    max_abs_err: float | None
    max_rel_err: float | None
    tol: float
    passed: bool | None
    applicable: bool = True  # False: the framework computes no such quantity (forward-only); passed is None

    def to_dict(self) -> dict:
        return asdict(self)


class FrameworkCrashed(RuntimeError):
    """Raised by a framework's ``run`` when the computation failed where it cannot be re-raised as is (the process
    computing it died, or raised there); the message says why. :func:`compare` turns it into one failed record per
    quantity, the message in the record's ``config``."""


@dataclass
class ReferenceRun:
    """What the reference computed for a case, and what it was fed."""

    params: dict[str, np.ndarray]
    buffers: dict[str, np.ndarray]
    masks: dict[int, np.ndarray]
    x: np.ndarray
    dout: np.ndarray | None
    labels: np.ndarray | None
    results: dict[str, np.ndarray]
    reduction_length: int
    magnitudes: dict[str, float]
    loss_args: dict | None = None


def run_reference(case: Case, impl: str | None, dtype: str) -> ReferenceRun:
    """Build the case in the reference, draw its input (and ``dout`` or labels), run it."""
    model = build_reference(case, impl, np.dtype(dtype))
    buffers = {key: np.array(value) for key, value in model.buffers.items()}  # as before the forward
    rng = np.random.default_rng(10_000 + case.seed)
    # drawn in float64 and rounded once, so every party sees the same values
    x = (rng.standard_normal(case.input_shape) * case.scale).astype(dtype)
    if case.binary_loss is not None and not case.binary_loss.logits:  # the probabilities the loss reads
        x = bce_probabilities(case.binary_loss, case.input_shape, dtype, rng)
    h, reduction, indices = x, 0, {}
    for i, layer in enumerate(model.layers):
        out = layer.forward(h)
        if isinstance(out, tuple):  # max pooling with return_indices: (out, indices), compared exactly
            out, indices[f"{i}.indices"] = out
        reduction += reduction_length(layer, h.shape, out.shape)
        h = out
    results = {"forward": h, **indices}
    dout = labels = loss_args = None
    if case.binary_loss is not None:
        option = case.binary_loss
        labels, weight, pos_weight, dloss = bce_targets(option, h.shape, dtype, rng)
        loss_args = {"weight": weight, "pos_weight": pos_weight, "dloss": dloss}
        loss, grad = _binary_cross_entropy(option, h, labels, loss_args)
    elif case.loss_option is not None:
        option = case.loss_option
        labels, weight, dloss = ce_targets(option, h.shape, dtype, rng)
        loss, grad = ref.softmax_cross_entropy(h, labels, **option.kwargs(weight), dloss=dloss)
        loss_args = {"weight": weight, "dloss": dloss}
    elif case.loss:
        labels = rng.integers(0, h.shape[1], h.shape[0])
        loss, grad = ref.softmax_cross_entropy(h, labels)
    if case.binary_loss is not None:
        results["loss"] = np.asarray(loss)
        reduction += h.size  # the reduction's elements (each element's loss a few operations: within max(4, K))
    elif case.loss:
        results["loss"] = np.asarray(loss)
        reduction += h.shape[1] + h.size // h.shape[1]  # the softmax's C terms, then the reduction's positions
    else:
        dout = rng.standard_normal(h.shape).astype(dtype)
        grad = dout
    results["dx"] = _backward(model, grad)
    for key in model.params:
        results[key] = model.grads[key]
    for key in model.buffers:
        results[key] = np.array(model.buffers[key])  # as after the forward (training mode updates them)
    masks = {i: layer.mask for i, layer in enumerate(model.layers)
             if isinstance(layer, ref.Dropout) and not case.eval_mode}
    params = {key: np.array(value) for key, value in model.params.items()}
    if case.binary_loss is not None:
        grad_terms = np.abs(grad) + _binary_gradient_terms(case.binary_loss, h, labels, loss_args)
    else:
        grad_terms = np.abs(grad) + (_loss_gradient_terms(case, labels, loss_args) if case.loss else 0.0)
    magnitudes = _magnitudes(case, impl, dtype, params, buffers, masks, x, grad_terms)
    if case.binary_loss is not None:
        magnitudes["loss"] = _binary_loss_magnitude(case.binary_loss, h, results["loss"], loss_args)
    elif case.loss:  # logsumexp(scores) - score[y]: terms of the size of the scores themselves
        magnitudes["loss"] = float(np.max(np.abs(results["loss"]), initial=0.0) + np.max(np.abs(h)))
    return ReferenceRun(params, buffers, masks, x, dout, labels, results, max(reduction, 1), magnitudes, loss_args)


def _loss_gradient_terms(case: Case, labels: np.ndarray, loss_args: dict | None) -> float:
    """A bound on the terms behind each element of the loss's gradient: ``dscores = u * (p * S - q)`` with ``p``
    the softmax, ``q`` the weighted target mass and ``S = sum(q)``, ``u`` the upstream gradient over the mean's
    denominator. ``p * S`` and ``q`` are each at most ``max(weight)``, so a term is at most
    ``|u| * max(weight)``; where ``p * S`` and ``q`` cancel (a confident right prediction), the gradient itself
    is rounding noise of that size, and that size is the scale its error is measured against."""
    option = case.loss_option
    weight, dloss = (loss_args or {}).get("weight"), (loss_args or {}).get("dloss", 1.0)
    w_max = 1.0 if weight is None else float(np.max(np.abs(weight)))
    upstream = float(np.max(np.abs(dloss), initial=0.0))
    if option is not None and option.reduction != "mean":
        return upstream * w_max
    if option is not None and option.target == "prob":
        denominator = labels.size // labels.shape[1]
    else:
        counted = labels != (-100 if option is None or option.ignore is None else option.ignore)
        denominator = float(weight[labels[counted]].sum()) if weight is not None else int(counted.sum())
    return upstream * w_max / denominator if denominator else 0.0


def _binary_cross_entropy(option: BinaryCrossEntropyOption, h: np.ndarray, target: np.ndarray, loss_args: dict):
    """``(loss, dinput)`` of the reference's binary cross-entropy of ``option`` (its ``clip_epsilon`` included)."""
    kwargs = option.kwargs(loss_args["weight"], loss_args["pos_weight"])
    if option.logits:
        return ref.binary_cross_entropy_with_logits(h, target, **kwargs, dloss=loss_args["dloss"])
    return ref.binary_cross_entropy(h, target, **kwargs, dloss=loss_args["dloss"], clip_epsilon=option.clip_epsilon)


def _upstream_per_element(option: BinaryCrossEntropyOption, h: np.ndarray, dloss) -> np.ndarray | float:
    """``|dloss|`` per element of the input, over the element count for the mean."""
    upstream = np.abs(np.asarray(dloss, dtype=np.float64))
    return upstream / h.size if option.reduction == "mean" else upstream


def _binary_gradient_terms(option: BinaryCrossEntropyOption, h: np.ndarray, target: np.ndarray,
                           loss_args: dict) -> np.ndarray:
    """Per element, the terms behind the binary cross-entropy's gradient, times the weight and the upstream
    gradient: on logits ``(1 + (c - 1) t) sigmoid(x) - c t``, terms ``(1 + (c - 1) t) sigmoid(x) + c t``
    (``c`` the pos_weight, 1 without); on probabilities ``(p - t) / max(p (1 - p), 1e-12)``, terms ``(p + t) /
    max(p (1 - p), 1e-12)`` (0 where Keras' clip makes the gradient 0). Where the terms cancel (a confident right
    prediction) the gradient is rounding noise of their size, the scale its error is measured against."""
    x, t = h.astype(np.float64), target.astype(np.float64)
    weight, pos_weight = loss_args["weight"], loss_args["pos_weight"]
    if option.logits:
        c = 1.0 if pos_weight is None else np.abs(pos_weight.astype(np.float64))
        terms = (1 + np.abs(c - 1) * t) * np.exp(ref.binary_losses.log_sigmoid(x)) + c * t
    else:
        terms = (x + t) / np.maximum(x * (1 - x), ref.binary_losses.GRAD_EPSILON)
        if option.clip_epsilon is not None:
            terms = np.where((x >= option.clip_epsilon) & (x <= 1 - option.clip_epsilon), terms, 0.0)
    w = 1.0 if weight is None else np.abs(weight.astype(np.float64))
    return terms * w * _upstream_per_element(option, h, loss_args["dloss"])


def _binary_loss_magnitude(option: BinaryCrossEntropyOption, h: np.ndarray, loss: np.ndarray,
                           loss_args: dict) -> float:
    """The scale of the binary cross-entropy's terms: on probabilities every term is non-negative, so the loss's
    own size (``max |loss|``); on logits ``(1 - t) x - (1 + (c - 1) t) log_sigmoid(x)`` cancels terms of the size of
    the logits (a large negative ``x`` with ``t = 0``), so also ``|x|`` times the weight and ``max(1, c)``, reduced
    as the loss is (mean, sum, or the largest element for none)."""
    found = float(np.max(np.abs(loss), initial=0.0))
    if not option.logits:
        return found
    weight, pos_weight = loss_args["weight"], loss_args["pos_weight"]
    w = 1.0 if weight is None else np.abs(weight.astype(np.float64))
    c = 1.0 if pos_weight is None else np.maximum(1.0, np.abs(pos_weight.astype(np.float64)))
    terms = np.abs(h.astype(np.float64)) * w * c
    reduce = {"mean": np.mean, "sum": np.sum, "none": np.max}[option.reduction]
    return found + float(reduce(terms)) if terms.size else found


def _backward(model: ref.Sequential, grad: np.ndarray) -> np.ndarray:
    """Back through ``model``'s layers one by one, as the harness ran them forward one by one (a max-pooling
    layer with ``return_indices`` returns a pair, which ``Sequential.forward`` would pass on)."""
    for layer in reversed(model.layers):
        grad = layer.backward(grad)
    return grad


def _magnitudes(case: Case, impl: str, dtype: str, params, buffers, masks, x, abs_grad) -> dict[str, float]:
    """The case run again on ``|x|``, ``|params|`` and ``|dout|``: per quantity, the largest magnitude
    its terms add up to (see the module docstring)."""
    model = build_reference(case, impl, np.dtype(dtype))
    for key, value in params.items():
        model.params[key] = np.abs(value)
    for key, value in buffers.items():
        model.buffers[key] = np.abs(value)
    for i, mask in masks.items():
        model.layers[i].set_mask(mask)
    out = np.abs(x)
    for layer in model.layers:
        out = layer.forward(out)
        out = out[0] if isinstance(out, tuple) else out
    dx = _backward(model, abs_grad)
    found = {"forward": out, "dx": dx, **{k: model.grads[k] for k in model.params},
             **{k: model.buffers[k] for k in model.buffers}}
    return {key: float(np.max(np.abs(value))) if np.size(value) else 0.0 for key, value in found.items()}


def tolerance(dtype: str, reduction_length: int) -> float:
    """``4 * eps(dtype) * max(4, K)``: see the module docstring for the argument."""
    return 4.0 * float(np.finfo(dtype).eps) * max(4, reduction_length)


def errors(actual: np.ndarray, expected: np.ndarray, magnitude: float = 0.0) -> tuple[float, float]:
    """``(max |a - e|, max |a - e| / max(magnitude, max |e|))``: absolute and relative error, the latter
    relative to the magnitude of the terms behind the values (0.0 when everything is 0)."""
    a, e = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        raise ValueError(f"errors: shapes differ, reference {a.shape} vs framework {e.shape}")
    if a.size == 0:
        return 0.0, 0.0
    abs_err = float(np.max(np.abs(a - e)))
    scale = max(magnitude, float(np.max(np.abs(e))))
    if scale == 0.0:
        return abs_err, 0.0 if abs_err == 0.0 else float("inf")
    return abs_err, abs_err / scale


def _batched(a: np.ndarray | None, case: Case) -> np.ndarray | None:
    """A single image's array (``(C, H, W)``, or ``(C,)`` after global pooling) with a batch axis of 1, as
    frameworks want it; per-batch arrays such as a single image's ``(1, K)`` scores are left alone."""
    return a[np.newaxis] if a is not None and case.single and a.ndim in (1, 3) else a


def quantity_name(key: str, case: Case) -> str:
    """``"0.weight"`` reads ``"weight"`` in a one-layer case."""
    return key.split(".", 1)[1] if len(case.specs) == 1 and "." in key else key


def skip_reason(framework: Framework, case: Case, dtype: str) -> str | None:
    """Why ``framework`` cannot run ``case`` in ``dtype`` (a layer kind it has no builder for, its ``unsupported`` or
    ``dtype_reason``), or None."""
    if framework.kinds is not None:
        missing = [s.kind for s in case.specs if s.kind not in framework.kinds]
        if missing:
            return f"{framework.name} builds no layer of kind {missing[0]!r}"
    return framework.unsupported(case) or framework.dtype_reason(case, dtype)


GRADIENT_QUANTITIES = ("dx",)  # besides every parameter key: what a forward-only framework does not compute


def compare(case: Case, impl: str | None, dtype: str, framework: Framework) -> list[Record]:
    """Run ``case`` in the reference (``impl``) and in ``framework``; one Record per quantity.

    The reference runs ``framework.reference_case(case)``: the case with the reference's documented
    convention switches set to the framework's (the record's config shows them). A :class:`FrameworkCrashed` from
    ``framework.run`` gives one failed record per quantity (errors ``inf``), its message in the config.
    """
    case = framework.reference_case(case)
    run = run_reference(case, impl, dtype)
    masks = {i: _batched(mask, case) for i, mask in run.masks.items()}
    config = f"{case.id}: {case.config}"
    try:
        theirs = framework.run(case, RunInputs(run.params, _batched(run.x, case), dtype, _batched(run.dout, case),
                                               run.labels, run.buffers, masks, run.loss_args or {}))
    except FrameworkCrashed as exc:
        theirs, config = None, f"{config} [framework failed: {exc}]"
    tol = tolerance(dtype, run.reduction_length)
    records = []
    gradient_keys = {*GRADIENT_QUANTITIES, *run.params}
    for key, mine in run.results.items():
        if not framework.gradients and key in gradient_keys:
            records.append(Record(case.layer, config, impl, framework.name, framework.version,
                                  dtype, quantity_name(key, case), None, None, tol, None, False))
            continue
        if theirs is None:  # FrameworkCrashed: every quantity failed, the reason in the config
            records.append(Record(case.layer, config, impl, framework.name, framework.version, dtype,
                                  quantity_name(key, case), float("inf"), float("inf"), tol, False))
            continue
        other = np.asarray(theirs[key])
        if case.single and other.shape != mine.shape and other.shape[1:] == mine.shape:
            other = other[0]
        # integer indices: one off is a relative error >= 1 / (H*W), far above any tolerance, so they pass only equal
        abs_err, rel_err = errors(mine, other, run.magnitudes.get(key, 0.0))
        records.append(Record(case.layer, config, impl, framework.name, framework.version, dtype,
                              quantity_name(key, case), abs_err, rel_err, tol, bool(rel_err <= tol)))
    return records
