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
from typing import Protocol

import numpy as np

import reference as ref

from .cases import Case, build_reference
from .cases_options import ce_targets


@dataclass(frozen=True)
class Record:
    """One compared quantity; the JSON report is a list of these as dicts."""

    layer: str
    config: str
    impl: str
    framework: str
    framework_version: str
    dtype: str
    quantity: str
    max_abs_err: float
    max_rel_err: float
    tol: float
    passed: bool

    def to_dict(self) -> dict:
        return asdict(self)


class Adapter(Protocol):
    """A framework behind one small module: builds the case's model with given parameters."""

    name: str
    version: str

    def unsupported(self, case: Case) -> str | None:
        """Why the framework cannot express ``case``, or None when it can."""

    def reference_case(self, case: Case) -> Case:
        """``case`` with the reference options set to the framework's conventions where the reference
        has a documented switch for them (Keras: ``unbiased_running_var=False`` in batch norm)."""

    def run(self, case: Case, params: dict[str, np.ndarray], x: np.ndarray, dtype: str,
            dout: np.ndarray | None, labels: np.ndarray | None, buffers: dict[str, np.ndarray] | None = None,
            masks: dict[int, np.ndarray] | None = None, loss_args: dict | None = None) -> dict[str, np.ndarray]:
        """Forward ``x`` (always batched) and backward; every quantity in the reference layout.

        The model runs in evaluation mode when ``case.eval_mode``, else in training mode. ``buffers``
        (``"1.running_mean"``) are set in the framework before the forward; ``masks`` maps the index of
        each dropout layer to the keep-mask (batched) to apply as ``x * mask / (1 - p)`` in training mode.
        Keys: ``forward`` (the model's output), ``dx``, each parameter key of the reference model
        (``"0.weight"``), each buffer key (its value after the forward), ``"i.indices"`` for a max
        pooling layer ``i`` with ``return_indices``, and ``loss`` when ``labels`` are given (then the
        backward starts from the loss instead of ``dout``). With ``case.loss_option`` the loss has those
        options (``labels`` are class indices or probabilities) and ``loss_args`` holds ``weight`` (or None)
        and ``dloss``, the loss's upstream gradient (a float, or an array for ``reduction="none"``).
        """


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


def _layer_reduction(layer: ref.Layer, x_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> int:
    """Longest sum behind any output or gradient of one layer."""
    if isinstance(layer, ref.Conv2d):
        kh, kw = layer.kernel_size
        positions = int(np.prod(out_shape)) // layer.out_channels
        g = layer.groups  # each output sums over its group's C/g input channels only
        return max(layer.in_channels // g * kh * kw, layer.out_channels // g * kh * kw, positions)
    if isinstance(layer, (ref.MaxPool2d, ref.AvgPool2d)):
        return layer.kernel_size[0] * layer.kernel_size[1]
    if isinstance(layer, (ref.GlobalAvgPool2d, ref.AdaptiveAvgPool2d)):  # a window is at most the input plane
        return x_shape[-2] * x_shape[-1]
    if isinstance(layer, ref.BatchNorm2d):
        # training: the mean, the variance after it and the backward's two means, each over n = N*H*W
        # values, in sequence; evaluation: only the parameter gradients' sums over n
        n = int(np.prod(x_shape)) // layer.num_features
        return 3 * n if layer.training else n
    if isinstance(layer, ref.Linear):
        return max(layer.in_features, layer.out_features, out_shape[0])
    return 1


def run_reference(case: Case, impl: str, dtype: str) -> ReferenceRun:
    """Build the case in the reference, draw its input (and ``dout`` or labels), run it."""
    model = build_reference(case, impl, np.dtype(dtype))
    buffers = {key: np.array(value) for key, value in model.buffers.items()}  # as before the forward
    rng = np.random.default_rng(10_000 + case.seed)
    # drawn in float64 and rounded once, so every party sees the same values
    x = (rng.standard_normal(case.input_shape) * case.scale).astype(dtype)
    h, reduction, indices = x, 0, {}
    for i, layer in enumerate(model.layers):
        out = layer.forward(h)
        if isinstance(out, tuple):  # max pooling with return_indices: (out, indices), compared exactly
            out, indices[f"{i}.indices"] = out
        reduction += _layer_reduction(layer, h.shape, out.shape)
        h = out
    results = {"forward": h, **indices}
    dout = labels = loss_args = None
    if case.loss_option is not None:
        option = case.loss_option
        labels, weight, dloss = ce_targets(option, h.shape, dtype, rng)
        loss, grad = ref.softmax_cross_entropy(h, labels, **option.kwargs(weight), dloss=dloss)
        loss_args = {"weight": weight, "dloss": dloss}
    elif case.loss:
        labels = rng.integers(0, h.shape[1], h.shape[0])
        loss, grad = ref.softmax_cross_entropy(h, labels)
    if case.loss:
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
    magnitudes = _magnitudes(case, impl, dtype, params, buffers, masks, x, np.abs(grad))
    if case.loss:  # logsumexp(scores) - score[y]: terms of the size of the scores themselves
        magnitudes["loss"] = float(np.max(np.abs(results["loss"]), initial=0.0) + np.max(np.abs(h)))
    return ReferenceRun(params, buffers, masks, x, dout, labels, results, max(reduction, 1), magnitudes, loss_args)


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


def compare(case: Case, impl: str, dtype: str, adapter: Adapter) -> list[Record]:
    """Run ``case`` in the reference (``impl``) and in ``adapter``; one Record per quantity.

    The reference runs ``adapter.reference_case(case)``: the case with the reference's documented
    convention switches set to the framework's (the record's config shows them).
    """
    case = adapter.reference_case(case)
    run = run_reference(case, impl, dtype)
    masks = {i: _batched(mask, case) for i, mask in run.masks.items()}
    theirs = adapter.run(case, run.params, _batched(run.x, case), dtype, _batched(run.dout, case), run.labels,
                         buffers=run.buffers, masks=masks, loss_args=run.loss_args)
    tol = tolerance(dtype, run.reduction_length)
    records = []
    for key, mine in run.results.items():
        other = np.asarray(theirs[key])
        if case.single and other.shape != mine.shape and other.shape[1:] == mine.shape:
            other = other[0]
        # integer indices: one off is a relative error >= 1 / (H*W), far above any tolerance, so they pass only equal
        abs_err, rel_err = errors(mine, other, run.magnitudes.get(key, 0.0))
        records.append(Record(case.layer, f"{case.id}: {case.config}", impl, adapter.name, adapter.version, dtype,
                              quantity_name(key, case), abs_err, rel_err, tol, bool(rel_err <= tol)))
    return records
