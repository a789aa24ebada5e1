"""ONNX Runtime (CPU execution provider), forward only: each case's PyTorch model (:mod:`..pytorch.model`)
exported by the TorchScript-based exporter (:mod:`.export`) and run by an ``InferenceSession`` (:mod:`.model`).

Two registry entries from one implementation, differing in one setting: ``"onnxruntime"`` runs the graph as
exported (``ORT_DISABLE_ALL``), ``"onnxruntime-optimized"`` with every graph optimisation on (``ORT_ENABLE_ALL``:
constant folding, batch norm folded into conv, fused activations). :mod:`.capability` says what the exporter and
the runtime cannot express; :mod:`.timing` why neither trains nor is benchmarked. Nothing here imports torch,
onnx or onnxruntime until an entry's ``load()``.
"""

from __future__ import annotations

import functools

from comparisons.frameworks import Entry
from comparisons.kinds import CORE_KINDS

OPSET = 17  # the TorchScript exporter's default opset: every graph is exported at it
LEVELS = {"onnxruntime": "ORT_DISABLE_ALL", "onnxruntime-optimized": "ORT_ENABLE_ALL"}  # registry name -> level
# the layer kinds whose export and runtime limits are measured and pinned (capability.py)
KINDS = CORE_KINDS | {"softmax", "convtranspose", "upsample", "layernorm", "groupnorm", "gelu", "hardsigmoid"}


def _environment(purpose: str) -> dict[str, tuple[str, str]]:
    """ONNX Runtime reads no environment variable at import that changes its results here (threads are set per
    session, in :mod:`.model`)."""
    return {}


def _load(name: str):
    import onnx
    import onnxruntime

    from ..protocol import Framework
    from . import capability, model, timing

    return Framework(name=name, version=f"onnxruntime {onnxruntime.__version__} / onnx {onnx.__version__}",
                     versions={"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__},
                     unsupported=capability.unsupported, reference_case=capability.reference_case,
                     run=functools.partial(model.run, level=LEVELS[name]),
                     trainer=functools.partial(timing.trainer, name), bench_step=timing.bench_step,
                     gradients=False, dtype_reason=capability.dtype_reason, kinds=KINDS)


ENTRIES = tuple(Entry(name, ("onnxruntime", "onnx", "torch"), _environment, functools.partial(_load, name))
                for name in LEVELS)
