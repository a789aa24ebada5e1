"""Running a case's exported graph (:mod:`.export`) in an ONNX Runtime ``InferenceSession`` on the CPU.

One session per graph and optimisation level, kept as long as the graph is; one thread per session (the
comparisons share two cores, and one thread makes every reduction's order fixed).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from comparisons.cases import Case
from comparisons.frameworks.protocol import RunInputs

from . import export

_sessions: OrderedDict[tuple, ort.InferenceSession] = OrderedDict()


def session(model: bytes, level: str, save_to: str | None = None) -> ort.InferenceSession:
    """An ``InferenceSession`` of ``model`` on ``CPUExecutionProvider`` with ``graph_optimization_level`` ``level``
    (a ``GraphOptimizationLevel`` member name: ``"ORT_DISABLE_ALL"``, ``"ORT_ENABLE_ALL"``); ``save_to``: a path
    where ONNX Runtime writes the graph it runs, after its optimisations."""
    options = ort.SessionOptions()
    if save_to is not None:
        options.optimized_model_filepath = save_to
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3  # warnings about unused initializers are not results
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def cached_session(key: tuple, model: bytes, level: str) -> ort.InferenceSession:
    """:func:`session`, kept per (graph key, level) for the graphs :mod:`.export` keeps."""
    skey = (key, level)
    if skey not in _sessions:
        _sessions[skey] = session(model, level)
        while len(_sessions) > 2 * export.CACHE_SIZE:
            _sessions.popitem(last=False)
    return _sessions[skey]


def run(case: Case, inputs: RunInputs, *, level: str = "ORT_DISABLE_ALL") -> dict[str, np.ndarray]:
    """``{"forward", "i.indices"..., "loss"?, buffers?}`` of the case's graph run at ``level``; no gradients
    (``inputs.dout`` is not used). Buffers in evaluation mode only, read from the graph's constants
    (:func:`.capability.unsupported` leaves out training-mode batch norm, whose update the graph does not compute).
    See :class:`comparisons.frameworks.protocol.Framework`."""
    x, labels, buffers = inputs.x, inputs.labels, inputs.buffers
    weight, pos_weight = (inputs.loss_args.get(k) if labels is not None else None for k in ("weight", "pos_weight"))
    key, model = export.exported(case, inputs.params, x, inputs.dtype, labels, buffers, inputs.masks, weight,
                                 pos_weight)
    feeds = {"x": x} if labels is None else {"x": x, "labels": labels}
    outputs = cached_session(key, model, level).run(None, feeds)
    results = {"forward": outputs[0]}
    pooled = [i for i, s in enumerate(case.specs) if s.kind in ("maxpool", "adaptivemaxpool")
              and s.kwargs.get("return_indices")]
    for i, indices in zip(pooled, outputs[1:1 + len(pooled)], strict=True):
        results[f"{i}.indices"] = indices
    if labels is not None:
        results["loss"] = outputs[1 + len(pooled)]
    if buffers and case.eval_mode:  # the running statistics are constants of the graph, read back from it
        results.update(graph_buffers(key, model, buffers))  # (training mode: the export's own update, not ORT's)
    return results


_buffers: dict[tuple, dict[str, np.ndarray]] = {}


def graph_buffers(key: tuple, model: bytes, buffers: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``{"i.running_mean": ...}``: the initializers of the exported graph named after ``buffers``' keys (the
    exporter names them ``model.i.running_mean``, :class:`.export.WithLoss` holding the model as ``model``)."""
    if key not in _buffers:
        graph = onnx.load_from_string(model).graph
        found = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
        _buffers.clear()  # one graph's at a time: verify runs a case's implementations one after the other
        _buffers[key] = {k: found[f"model.{k}"] for k in buffers}
    return _buffers[key]
