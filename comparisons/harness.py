"""The harness: run a case in the reference and in a framework, compare every quantity.

Tolerances live here, with their argument. A quantity passes when its normwise
relative error ``max|ref - fw| / max|fw|`` is at most

    tol = 4 * eps(dtype) * max(4, K)

where ``K`` is the longest chain of floating-point additions behind any output of
the case (the sum over its layers of each layer's longest reduction). A sum of
``K`` rounded terms is off by at most ``K * eps`` times the sum of the magnitudes
(Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., eq. 4.4); the
factor 4 absorbs the terms' magnitudes exceeding the result's and the two
implementations erring in opposite directions. For float64 this is far below 1e-10
for every case in the matrix (the tests assert it); for float32 it is the usual
``eps * reduction length`` argument. The error is normwise, not element-wise,
because an element whose exact value cancels to ~0 has no meaningful relative error.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np

import reference as ref

from .cases import Case, build_reference


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

    def run(self, case: Case, params: dict[str, np.ndarray], x: np.ndarray, dtype: str,
            dout: np.ndarray | None, labels: np.ndarray | None) -> dict[str, np.ndarray]:
        """Forward ``x`` (always batched) and backward; every quantity in the reference layout.

        Keys: ``forward`` (the model's output), ``dx``, each parameter key of the
        reference model (``"0.weight"``), and ``loss`` when ``labels`` are given (then
        the backward starts from the mean loss instead of ``dout``).
        """


@dataclass
class ReferenceRun:
    """What the reference computed for a case, and what it was fed."""

    params: dict[str, np.ndarray]
    x: np.ndarray
    dout: np.ndarray | None
    labels: np.ndarray | None
    results: dict[str, np.ndarray]
    reduction_length: int


def _layer_reduction(layer: ref.Layer, x_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> int:
    """Longest sum behind any output or gradient of one layer."""
    if isinstance(layer, ref.Conv2d):
        kh, kw = layer.kernel_size
        positions = int(np.prod(out_shape)) // layer.out_channels
        return max(layer.in_channels * kh * kw, layer.out_channels * kh * kw, positions)
    if isinstance(layer, (ref.MaxPool2d, ref.AvgPool2d)):
        return layer.kernel_size[0] * layer.kernel_size[1]
    if isinstance(layer, ref.Linear):
        return max(layer.in_features, layer.out_features, out_shape[0])
    return 1


def run_reference(case: Case, impl: str, dtype: str) -> ReferenceRun:
    """Build the case in the reference, draw its input (and ``dout`` or labels), run it."""
    model = build_reference(case, impl, np.dtype(dtype))
    rng = np.random.default_rng(10_000 + case.seed)
    # drawn in float64 and rounded once, so every party sees the same values
    x = (rng.standard_normal(case.input_shape) * case.scale).astype(dtype)
    h, reduction = x, 0
    for layer in model.layers:
        out = layer.forward(h)
        reduction += _layer_reduction(layer, h.shape, out.shape)
        h = out
    results = {"forward": h}
    dout = labels = None
    if case.loss:
        labels = rng.integers(0, h.shape[1], h.shape[0])
        loss, grad = ref.softmax_cross_entropy(h, labels)
        results["loss"] = np.asarray(loss)
        reduction += h.shape[1] + h.shape[0]
    else:
        dout = rng.standard_normal(h.shape).astype(dtype)
        grad = dout
    results["dx"] = model.backward(grad) if model.layers else grad
    for key in model.params:
        results[key] = model.grads[key]
    params = {key: np.array(value) for key, value in model.params.items()}
    return ReferenceRun(params, x, dout, labels, results, max(reduction, 1))


def tolerance(dtype: str, reduction_length: int) -> float:
    """``4 * eps(dtype) * max(4, K)``: see the module docstring for the argument."""
    return 4.0 * float(np.finfo(dtype).eps) * max(4, reduction_length)


def errors(actual: np.ndarray, expected: np.ndarray) -> tuple[float, float]:
    """``(max |a - e|, max |a - e| / max |e|)``: absolute and normwise relative error."""
    a, e = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        raise ValueError(f"errors: shapes differ, reference {a.shape} vs framework {e.shape}")
    abs_err = float(np.max(np.abs(a - e))) if a.size else 0.0
    return abs_err, ref.max_rel_error(a, e)


def _batched(a: np.ndarray | None, case: Case) -> np.ndarray | None:
    """A single image's array with a batch axis of 1, as frameworks want it."""
    return a[np.newaxis] if a is not None and case.single and a.ndim == 3 else a


def quantity_name(key: str, case: Case) -> str:
    """``"0.weight"`` reads ``"weight"`` in a one-layer case."""
    return key.split(".", 1)[1] if len(case.specs) == 1 and "." in key else key


def compare(case: Case, impl: str, dtype: str, adapter: Adapter) -> list[Record]:
    """Run ``case`` in the reference (``impl``) and in ``adapter``; one Record per quantity."""
    run = run_reference(case, impl, dtype)
    theirs = adapter.run(case, run.params, _batched(run.x, case), dtype, _batched(run.dout, case), run.labels)
    tol = tolerance(dtype, run.reduction_length)
    records = []
    for key, mine in run.results.items():
        other = np.asarray(theirs[key])
        if case.single and other.shape != mine.shape and other.shape[1:] == mine.shape:
            other = other[0]
        abs_err, rel_err = errors(mine, other)
        records.append(Record(case.layer, f"{case.id}: {case.config}", impl, adapter.name, adapter.version, dtype,
                              quantity_name(key, case), abs_err, rel_err, tol, bool(rel_err <= tol)))
    return records
