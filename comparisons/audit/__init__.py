"""``cnnref audit``: live probes of where the frameworks disagree, and what the reference does.

Importing the package registers every probe in :data:`PROBES` (id -> Probe); :func:`run_all`
runs them area by area in the order of :data:`AREAS` (the order of the porting guide).
"""

from __future__ import annotations

# Each area module registers its probes on import.
from . import (  # noqa: F401
    activations,
    adaptive_optimizers,
    batchnorm,
    clipping,
    flax_defaults,
    initializers,
    keras_backends,
    layout,
    losses,
    normalization,
    numerics,
    onnx_runtime,
    optimizers,
    padding,
    pooling,
    pooling_global,
    resizing,
    transposed_conv,
)
from .base import NOT_IMPLEMENTED, PROBES, Decision, Finding, Probe, compare_key, decide, probe, run_probe

__all__ = ["AREAS", "NOT_IMPLEMENTED", "PROBES", "Decision", "Finding", "Probe", "compare_key", "decide",
           "ordered_probes", "probe", "run_all", "run_probe"]

AREAS = ("convolution padding", "layouts", "pooling", "transposed convolution and resizing", "losses", "optimizers",
         "batch norm", "normalization", "activations and dropout", "initialisation", "numerics")


def ordered_probes() -> list[Probe]:
    """Every registered probe, grouped by area in :data:`AREAS` order (registration order within)."""
    return sorted(PROBES.values(), key=lambda p: AREAS.index(p.area))


def run_all(ids: list[str] | None = None) -> list[Finding]:
    """Run the probes named in ``ids`` (all when None), in :func:`ordered_probes` order."""
    unknown = sorted(set(ids or ()) - set(PROBES))
    if unknown:
        raise ValueError(f"run_all: unknown probe ids {unknown}; known: {sorted(PROBES)}")
    return [run_probe(p) for p in ordered_probes() if ids is None or p.id in ids]
