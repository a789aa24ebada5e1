"""Run two models (any two of PyTorch, Keras, the reference) on the same input layer by layer, and find the first
layer that disagrees.

Each model is read into the neutral layer list (:mod:`comparisons.port.layers`) and run layer by layer by its
framework's ``port`` module, every output converted to the reference layout. The layers are matched in order, a
padding layer folded into the convolution or pooling it serves (a port to Keras adds ``ZeroPadding2D`` where
``padding="same"`` does not pad as PyTorch does). Each row's bound is the harness's tolerance
(:func:`comparisons.harness.tolerance`: ``4 * eps * max(4, K)``) with ``K`` the sum of the reduction lengths
(:func:`comparisons.kinds.reduction_length`) of the first model's layers up to that row for an output, and of all
its layers for a parameter gradient (the backward runs through every layer after it). Errors are relative to the
magnitude of the terms, as in the harness: the reference runs the first model on ``|x|`` with ``|params|``
(``|dout|``), and ``max_rel_err = max|a - b| / max(magnitude, max|a|)``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

import reference as ref
from comparisons.harness import errors, tolerance
from comparisons.kinds import reduction_length

from . import reference_models
from .layers import NO_PADS, PADDED_KINDS, PortLayer, add_pads, same_function_options, shapes

# audit findings (comparisons/audit, ``cnnref audit``) that explain a divergence of a layer of each kind
FLATTEN_FINDING = "layout-flatten-order"


@dataclass
class Row:
    """One layer of the first model (with the padding layers that serve it) against its match in the second."""

    index: int
    name: str
    type: str
    other: str  # the matched layer(s) of the second model
    output_shape: tuple[int, ...]
    max_abs_error: float
    max_rel_error: float
    bound: float
    passed: bool
    grad_max_abs_error: float | None = None
    grad_max_rel_error: float | None = None
    grad_bound: float | None = None
    grad_errors: dict[str, tuple[float, float]] = field(default_factory=dict)
    finding: str | None = None
    note: str = ""


@dataclass
class ComparisonReport:
    """What :func:`compare_models` found: a :class:`Row` per matched layer, the first divergence (``(index, name)``
    or None), where the structures differ (or None) and notes on conventions that differ without changing the
    outputs."""

    frameworks: tuple[str, str]
    dtype: str
    input_shape: tuple[int, ...]
    grads: bool
    rows: list[Row]
    first_divergence: tuple[int, str] | None
    structure: str | None
    notes: list[str] = field(default_factory=list)

    @property
    def agree(self) -> bool:
        return self.first_divergence is None and self.structure is None

    def to_dict(self) -> dict:
        found = asdict(self)
        found["agree"] = self.agree
        return found

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=float)

    def summary(self) -> str:
        a, b = self.frameworks
        lines = []
        if self.structure:
            lines.append(f"structure differs: {self.structure}")
        if self.first_divergence is None:
            lines.append(f"first divergence: none ({a} and {b} agree on every compared layer)")
        else:
            index, name = self.first_divergence
            row = self.rows[index]
            found = f" (audit finding: {row.finding})" if row.finding else ""
            lines.append(f"first divergence: layer {index} '{name}' ({row.type}){found}")
        return "\n".join(lines)

    def to_markdown(self) -> str:
        a, b = self.frameworks
        mode = "training mode, with parameter gradients" if self.grads else "evaluation mode"
        lines = [f"{a} vs {b}, {self.dtype}, input {self.input_shape}, {mode}", ""]
        head = "| # | layer | type | matched | output shape | max abs err | max rel err | bound |"
        rule = "|---|---|---|---|---|---|---|---|"
        if self.grads:
            head += " grad max rel err | grad bound |"
            rule += "---|---|"
        lines += [head + " ok | finding / note |", rule + "---|---|"]
        for r in self.rows:
            cells = [str(r.index), f"`{r.name}`", r.type, r.other, "x".join(map(str, r.output_shape)),
                     f"{r.max_abs_error:.2e}", f"{r.max_rel_error:.2e}", f"{r.bound:.1e}"]
            if self.grads:
                cells += ["-" if r.grad_max_rel_error is None else f"{r.grad_max_rel_error:.2e}",
                          "-" if r.grad_bound is None else f"{r.grad_bound:.1e}"]
            explain = "; ".join(x for x in (r.finding and f"audit: {r.finding}", r.note) if x)
            cells += ["yes" if r.passed else "**NO**", explain]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", self.summary()]
        lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines) + "\n"


def side(model):
    """``(framework name, its port module)`` for a model of PyTorch, Keras or the reference."""
    if isinstance(model, ref.Layer):
        return "reference", reference_models
    from . import PORTABLE, framework_port

    package = type(model).__module__.split(".")[0]
    if package in PORTABLE:
        return PORTABLE[package], framework_port(PORTABLE[package])
    raise ValueError(f"compare_models: a model must be a torch nn.Sequential, a keras.Sequential or a reference "
                     f"Sequential, got {type(model).__module__}.{type(model).__name__}")


def groups(layers: list[PortLayer]) -> list[list[int]]:
    """The indices of ``layers`` grouped as the rows see them: padding layers with the layer they serve."""
    found, pending = [], []
    for i, layer in enumerate(layers):
        if layer.kind == "zeropad":
            pending.append(i)
            continue
        if pending and layer.kind not in PADDED_KINDS:
            found.extend([[j] for j in pending])
            pending = []
        found.append([*pending, i])
        pending = []
    return found + [[j] for j in pending]


def _pads(layers: list[PortLayer], group: list[int]):
    pads = NO_PADS
    for i in group:
        pads = add_pads(pads, layers[i].options.get("pads", NO_PADS))
    return pads


def _label(layers: list[PortLayer], group: list[int]) -> tuple[str, str]:
    """``(name, type)`` of a group: the served layer's name, the types joined (``ZeroPadding2D+Conv2D``)."""
    return layers[group[-1]].name, "+".join(layers[i].type or layers[i].kind for i in group)


def _differences(la, ga, lb, gb) -> list[str]:
    a, b = la[ga[-1]], lb[gb[-1]]
    # the padding is compared over the group; the running-variance convention is a note (it changes no output)
    found = [d for d in same_function_options(a, b) if not d.startswith(("pads ", "unbiased_running_var "))]
    pa, pb = _pads(la, ga), _pads(lb, gb)
    if pa != pb:
        found.insert(0, f"padding {pa} vs {pb}")
    return found


def _structure_problem(la, ga, sa, lb, gb, sb) -> str | None:
    """Why the groups cannot be compared (kinds or output shapes differ), or None."""
    a, b = la[ga[-1]], lb[gb[-1]]
    if a.kind != b.kind:
        return f"{a.label()} is a {a.kind}, {b.label()} a {b.kind}"
    if sa != sb:
        return f"{a.label()} outputs {sa}, {b.label()} outputs {sb}"
    return None


def _finding(a: PortLayer, b: PortLayer, differences: list[str], flattened_before: bool, grads: bool) -> str | None:
    """The audit finding that explains a divergence at layer ``a`` (matched with ``b``), or None."""
    if a.kind == "batchnorm":
        changed = any(d.startswith(("eps", "momentum")) for d in differences)
        return "batchnorm-momentum-epsilon" if changed or not grads else "batchnorm-default-mode"
    if a.kind == "linear":
        return FLATTEN_FINDING if flattened_before else "layout-dense-weight"
    if a.kind == "conv":
        if any(d.startswith("padding") for d in differences):
            return "conv-same-stride" if max(a.options["stride"]) > 1 else "conv-same-even-kernel"
        return "layout-conv-kernel"
    if a.kind == "avgpool":
        return "avgpool-padding-divisor"
    if a.kind == "maxpool":
        return "maxpool-padding" if _any_pads(a) else ("maxpool-tie-gradient" if grads else "pool-output-size")
    return {"dropout": "dropout-scaling", "leakyrelu": "leaky-relu-slope"}.get(a.kind)


def _any_pads(layer: PortLayer) -> bool:
    return layer.options.get("pads", NO_PADS) != NO_PADS


def _reference_layers(layers: list[PortLayer], training: bool) -> list | None:
    """Float64 reference layers computing ``layers`` one for one, or None when one has no reference equivalent."""
    try:
        made = [reference_models.layer(port, np.float64) for port in layers]
    except ValueError:
        return None
    for item in made:
        item.train(training)
    return made


def _magnitudes(layers: list[PortLayer], x, dout, training: bool) -> list | None:
    """The first model's layers on ``|x|`` with ``|params|``, ``|buffers|`` (and ``|dout|``): the magnitude of the
    terms behind each output and gradient (:mod:`comparisons.harness`), or None when the reference cannot run it."""
    made = _reference_layers(layers, training)
    if made is None:
        return None
    for item in made:
        for store in (item.params, getattr(item, "buffers", {})):
            for key, value in store.items():
                store[key] = np.abs(value)
    return reference_models.run_layers(made, np.abs(np.asarray(x, np.float64)), training=training,
                                       dout=None if dout is None else np.abs(dout))


def _reductions(layers: list[PortLayer], in_shapes, batch: int, training: bool) -> list[int]:
    """Each layer's longest sum (:func:`comparisons.kinds.reduction_length` of its reference layer); a layer the
    reference pads differently (a Keras "same" pool's asymmetric padding) is measured without its padding, which
    changes no sum's length."""
    found = []
    for i, port in enumerate(layers):
        try:
            item = reference_models.layer(port, np.float64)
        except ValueError:
            unpadded = PortLayer(port.kind, {**port.options, "pads": NO_PADS}, name=port.name, type=port.type)
            item = reference_models.layer(unpadded, np.float64)
        item.train(training)
        found.append(reduction_length(item, (batch, *in_shapes[i]), (batch, *in_shapes[i + 1])))
    return found


def _dtype(names) -> str:
    """The coarser of the two models' float dtypes: its eps sets the bound."""
    return max(names, key=lambda name: float(np.finfo(np.dtype(name)).eps))


def _check_grads(layers: list[PortLayer], framework: str) -> None:
    for port in layers:
        if port.kind == "dropout" and port.options["p"] > 0:
            raise ValueError(f"compare_models: grads=True runs in training mode, where {framework} layer "
                             f"{port.label()} drops at random (p={port.options['p']}); compare gradients with "
                             f"dropout p=0")


def _notes(la, lb, pairs, frameworks) -> list[str]:
    notes = []
    for ga, gb in pairs:
        a, b = la[ga[-1]], lb[gb[-1]]
        if a.kind == "batchnorm" and a.options["unbiased_running_var"] != b.options["unbiased_running_var"]:
            how = {True: "unbiased", False: "biased"}
            notes.append(f"batch norm {a.label()}: {frameworks[0]} updates the running variance with the "
                         f"{how[a.options['unbiased_running_var']]} batch variance, {frameworks[1]} with the "
                         f"{how[b.options['unbiased_running_var']]} one (audit: batchnorm-running-variance): outputs "
                         f"and gradients agree, the running statistics after a training step do not")
    return notes


def compare_models(a, b, x, *, grads: bool = False) -> ComparisonReport:
    """Run models ``a`` and ``b`` on ``x`` ``(N, C, H, W)`` (reference layout) layer by layer: evaluation mode, or
    training mode with the parameter gradients of ``sum(out * dout)`` (``dout`` drawn from seed 0) when ``grads``.
    Returns a :class:`ComparisonReport` with a row per layer of ``a``."""
    x = np.asarray(x)
    if x.ndim != 4 or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"compare_models: x must be a float (N, C, H, W) batch, got {x.dtype} shape {x.shape}")
    (name_a, port_a), (name_b, port_b) = side(a), side(b)
    la, lb = port_a.read(a), port_b.read(b)
    dtype = _dtype([port_a.parameter_dtype(a), port_b.parameter_dtype(b)])
    in_shape, batch = tuple(x.shape[1:]), x.shape[0]
    sa, sb = shapes(la, in_shape), shapes(lb, in_shape)
    ga, gb = groups(la), groups(lb)
    pairs, structure = [], None
    for i, (group_a, group_b) in enumerate(zip(ga, gb, strict=False)):  # a length difference is reported below
        structure = _structure_problem(la, group_a, sa[group_a[-1] + 1], lb, group_b, sb[group_b[-1] + 1])
        if structure:
            structure = f"layer {i}: {structure}"
            break
        pairs.append((group_a, group_b))
    if structure is None and len(ga) != len(gb):
        structure = f"{name_a} has {len(ga)} layers, {name_b} {len(gb)}"
    grads = grads and structure is None  # gradients need the same final output
    if grads:
        _check_grads(la, name_a)
        _check_grads(lb, name_b)
    dout = np.random.default_rng(0).standard_normal((batch, *sa[-1])) if grads else None
    ta = port_a.trace(a, x, training=grads, dout=dout)
    tb = port_b.trace(b, x, training=grads, dout=dout)
    magnitudes = _magnitudes(la, x, dout, grads)
    cumulative = np.cumsum(_reductions(la, sa, batch, grads))
    grad_bound = tolerance(dtype, int(cumulative[-1])) if grads else None
    rows, context, flattened = [], [], False
    for index, (group_a, group_b) in enumerate(pairs):
        ia, ib = group_a[-1], group_b[-1]
        magnitude = 0.0 if magnitudes is None else float(np.max(np.abs(magnitudes[ia].output), initial=0.0))
        abs_err, rel_err = errors(tb[ib].output, ta[ia].output, magnitude)
        bound = tolerance(dtype, int(cumulative[ia]))
        name, type_name = _label(la, group_a)
        row = Row(index, name, type_name, "+".join(lb[i].type or lb[i].kind for i in group_b),
                  (batch, *sa[ia + 1]), abs_err, rel_err, bound, bool(rel_err <= bound))
        if grads:
            _grad_errors(row, ta[ia].grads, tb[ib].grads, magnitudes and magnitudes[ia].grads, grad_bound)
        differences = _differences(la, group_a, lb, group_b)
        row.note = "; ".join(differences)
        rows.append(row)
        context.append((la[ia], lb[ib], differences, flattened))
        flattened = flattened or (la[ia].kind == "flatten" and len(sa[ia]) == 3)
    first = _first_divergence(rows)
    for row, (a_layer, b_layer, differences, flattened_before) in zip(rows, context, strict=True):
        if not row.passed and (row.index == first or differences):
            row.finding = _finding(a_layer, b_layer, differences, flattened_before, grads)
    return ComparisonReport((name_a, name_b), dtype, (batch, *in_shape), grads, rows,
                            None if first is None else (first, rows[first].name), structure,
                            _notes(la, lb, pairs, (name_a, name_b)))


def _first_divergence(rows: list[Row]) -> int | None:
    """The row where the models first disagree: the first whose output exceeds its bound; when every output agrees,
    the last whose parameter gradients exceed theirs (the backward runs from the last layer to the first, so a
    wrong gradient spreads to every layer before the one where it starts)."""
    outputs = [row.index for row in rows if not row.max_rel_error <= row.bound]
    if outputs:
        return outputs[0]
    gradients = [row.index for row in rows if not row.passed]
    return gradients[-1] if gradients else None


def _grad_errors(row: Row, ga: dict, gb: dict, magnitudes: dict | None, bound: float) -> None:
    """Fill ``row``'s gradient errors (the largest over the layer's parameters) and update ``passed``.

    Errors are relative to one scale per layer: the largest magnitude (or value) of any of its parameters'
    gradients. A bias before a batch norm in training mode has a gradient that cancels to ~0 (the batch norm
    removes the mean), in the ``|x|`` run as well; its terms are of the order of the weight gradient's."""
    row.grad_bound = bound
    worst_abs = worst_rel = 0.0
    scale = max([float(np.max(np.abs(v), initial=0.0)) for v in (*(magnitudes or {}).values(), *ga.values())],
                default=0.0)
    for key in sorted(set(ga) | set(gb)):
        if key not in ga or key not in gb:
            row.grad_errors[key] = (float("inf"), float("inf"))
            row.note = f"{row.note}; " if row.note else ""
            row.note += f"parameter {key!r} only in one model"
            worst_abs = worst_rel = float("inf")
            continue
        abs_err, rel_err = errors(gb[key], ga[key], scale)
        row.grad_errors[key] = (abs_err, rel_err)
        worst_abs, worst_rel = max(worst_abs, abs_err), max(worst_rel, rel_err)
    if row.grad_errors:
        row.grad_max_abs_error, row.grad_max_rel_error = worst_abs, worst_rel
        row.passed = row.passed and worst_rel <= bound
