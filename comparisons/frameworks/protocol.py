"""What a framework module provides: the :class:`Framework` record every consumer reads.

The harness (:func:`comparisons.harness.compare`), ``cnnref verify``, ``train``, ``bench`` and the tests reach a
framework only through this record, from :func:`comparisons.frameworks.load`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Protocol

import numpy as np

OPTIMIZERS = ("adam", "sgd")
ADAM_EPS = 1e-8  # every trainer's Adam epsilon: PyTorch's default (Keras' is 1e-7, so Keras is given this one)


@dataclass(frozen=True)
class RunInputs:
    """What a framework's ``run`` is fed: everything the reference used, in the reference layout, the batch axis
    present (a single ``(C, H, W)`` image arrives as a batch of one).

    - ``params``: ``{"0.weight": ...}``, the values the reference's forward used; ``buffers``: its running
      statistics as before the forward (``{"0.running_mean": ...}``).
    - ``x``: the input ``(N, ...)`` in ``dtype`` (``"float64"`` or ``"float32"``).
    - ``dout``: the gradient of the output when the case has no loss, else None; ``labels``: the loss's targets
      when it has one (class indices ``(N, ...)`` or probabilities ``(N, C, ...)``), else None.
    - ``masks``: ``{layer index: mask}`` of each dropout layer in training mode (the reference's draw).
    - ``loss_args``: the loss's ``weight`` (class weights or None), ``pos_weight`` (a binary cross-entropy's, or
      None) and ``dloss`` (its upstream gradient); a binary cross-entropy's ``labels`` are float targets shaped
      like ``x``.
    """

    params: dict[str, np.ndarray]
    x: np.ndarray
    dtype: str
    dout: np.ndarray | None = None
    labels: np.ndarray | None = None
    buffers: dict[str, np.ndarray] = field(default_factory=dict)
    masks: dict[int, np.ndarray] = field(default_factory=dict)
    loss_args: dict = field(default_factory=dict)


class Trainer(Protocol):
    """One training step of a case's model, channels-first numpy in and out.

    ``step(x (N, C, H, W), y (N,)) -> (loss, correct)``: one optimizer update, the batch's mean cross-entropy
    before it and how many of the batch were classified right; ``predict(x) -> scores (N, classes)``.
    """

    name: str

    def step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]: ...

    def predict(self, x: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Framework:
    """A framework behind one interface.

    - ``name``, ``version``; ``versions``: every package version worth reporting (a backend's too).
    - ``unsupported(case) -> str | None``: why the framework cannot express a case, or None.
    - ``reference_case(case) -> Case``: the case with the reference's documented convention switches set to the
      framework's (Keras: ``unbiased_running_var=False`` in batch norm).
    - ``run(case, inputs: RunInputs) -> dict``: forward and backward of the case's model built with the
      reference's parameters; every quantity in the reference layout (keys: ``forward``, ``dx``, each parameter
      key ``"0.weight"``, each buffer key, ``"i.indices"``, ``loss``).
    - ``trainer(case, params, dtype, optimizer, lr) -> Trainer``.
    - ``reference_adam``: the :class:`reference.optim.Adam` options that compute this framework's Adam (Keras:
      ``{"eps_hat": True}``, eps before the bias correction); empty when it is PyTorch's.
    - ``gradients``: False for a forward-only runtime (ONNX Runtime): its records of gradients are "not
      applicable" (:attr:`comparisons.harness.Record.applicable`), never silently left out.
    - ``kinds``: the layer kinds (:data:`comparisons.kinds.KINDS` names) its model builder has, or None for all: a
      case with another kind is skipped with that reason (the same reason for every framework, counted per kind).
    - ``dtype_reason(case, dtype) -> str | None``: why the framework cannot run ``case`` in ``dtype`` (a runtime
      without float64 kernels for a layer), or None.
    - ``bench_step(layer, shape, dtype, threads, seed) -> step``: a zero-argument forward + backward of the
      benchmarked layer (``comparisons.bench``), or :class:`comparisons.bench.measure.Unavailable`.
    - ``set_threads(threads)``: the framework's own thread count in this process, for what is timed outside
      ``bench_step`` (a training step); nothing where the framework has no such setting.
    - ``port``: the module reading and building this framework's models for :mod:`comparisons.port`, or None.
    """

    name: str
    version: str
    unsupported: Callable
    reference_case: Callable
    run: Callable
    trainer: Callable
    bench_step: Callable
    versions: dict[str, str] = field(default_factory=dict)
    reference_adam: dict = field(default_factory=dict)
    gradients: bool = True
    dtype_reason: Callable = lambda case, dtype: None
    kinds: frozenset | None = None
    set_threads: Callable = lambda threads: None
    port: ModuleType | None = None
