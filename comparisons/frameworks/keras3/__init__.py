"""Keras 3 on each of its backends: :mod:`.capability` (what Keras can express, its conventions), :mod:`.kinds`
(the Keras layers of each layer kind), :mod:`.layers` (the layers Keras lacks), :mod:`.losses` (PyTorch's
cross-entropy options and the binary cross-entropies in Keras), :mod:`.model` (a case's
model with the reference's parameters), :mod:`.gradients` (backward through the backend's own autodiff),
:mod:`.trainer`, :mod:`.timing`, :mod:`.worker` (a backend in its own process). Nothing here imports Keras until
an entry's ``load()``.

Entries: ``keras`` (the TensorFlow backend, in this process), ``keras-jax`` and ``keras-torch`` (the JAX and
PyTorch backends, each in its worker process: Keras' backend is fixed at its import, see :mod:`.worker`).
"""

from __future__ import annotations

import functools
import importlib
import os

from comparisons.frameworks import Entry

from .worker import WORKER_VAR

BACKENDS = {"keras": "tensorflow", "keras-jax": "jax", "keras-torch": "torch"}
PACKAGES = {"keras": ("keras", "tensorflow"), "keras-jax": ("keras", "jax"), "keras-torch": ("keras", "torch")}


def _environment(purpose: str) -> dict[str, tuple[str, str]]:
    """The variables Keras and TensorFlow read when imported."""
    onednn = (("0", "Eigen's CPU kernels: float64 throughout, deterministic, no oneDNN banner") if purpose == "compare"
              else ("1", "oneDNN on, as TensorFlow runs for its users by default"))
    return {"KERAS_BACKEND": ("tensorflow", "Keras 3 on TensorFlow"),
            "TF_CPP_MIN_LOG_LEVEL": ("3", "TensorFlow's C++ log lines are not results"),
            "TF_ENABLE_ONEDNN_OPTS": onednn}


XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def worker_settings(name: str, purpose: str = "compare") -> dict[str, tuple[str, str]]:
    """What the worker process of entry ``name`` sets before it imports Keras for ``purpose``, with the reasons."""
    backend = BACKENDS[name]
    found = {"KERAS_BACKEND": (backend, f"Keras 3 on {backend}, in this entry's own worker process")}
    if backend == "jax":
        found["JAX_ENABLE_X64"] = ("1", "without it JAX computes float64 arrays in float32 (a float64 layer "
                                        "returns float32), so float64 would not be compared")
        if purpose == "time":
            from comparisons.bench.measure import THREADS_VAR

            if os.environ.get(THREADS_VAR) == "1":
                found["XLA_FLAGS"] = (XLA_ONE_THREAD, f"{THREADS_VAR}=1: XLA's CPU pool is sized when the process "
                                                      "starts, and these flags are its one-thread setting")
    return found


def _worker_environment(name: str):
    def environment(purpose: str) -> dict[str, tuple[str, str]]:
        """:func:`worker_settings` in the entry's worker process; nothing in any other process (the parent runs Keras
        on TensorFlow for the ``keras`` entry: its ``KERAS_BACKEND`` must stay)."""
        return worker_settings(name, purpose) if os.environ.get(WORKER_VAR) == name else {}

    return environment


def local_framework(name: str):
    """Entry ``name``'s :class:`~comparisons.frameworks.protocol.Framework` in this process: Keras must run on the
    entry's backend here (RuntimeError otherwise)."""
    import keras

    from ..protocol import Framework
    from . import capability, kinds, model, port, timing, trainer

    backend = keras.backend.backend()
    if backend != BACKENDS[name]:
        raise RuntimeError(f"{name}: Keras runs on {backend} in this process, the entry needs {BACKENDS[name]}")
    package = importlib.import_module(backend)
    version = f"keras {keras.__version__} / {backend} {package.__version__}"
    if backend == "jax":
        import jax

        version += ", x64 on" if jax.config.jax_enable_x64 else ", x64 off (float64 computed as float32)"
    return Framework(name=name, version=version, versions={"keras": keras.__version__, backend: package.__version__},
                     unsupported=capability.unsupported, reference_case=capability.reference_case, run=model.run,
                     trainer=trainer.KerasTrainer, bench_step=timing.bench_step, dtype_reason=capability.dtype_reason,
                     kinds=frozenset(kinds.KERAS_KINDS), port=port,
                     reference_adam={"eps_hat": True})  # Keras' Adam adds eps before the bias correction


def _load():
    import tensorflow  # noqa: F401  (imported here so that a missing TensorFlow reads "not installed")

    return local_framework("keras")


def _remote_loader(name: str):
    def load():
        from comparisons import frameworks

        from . import worker

        return worker.framework(name, frameworks._prepared.get(name, "compare"), PACKAGES[name], local_framework)

    return load


ENTRIES = (Entry("keras", PACKAGES["keras"], _environment, _load),
           *(Entry(name, PACKAGES[name], _worker_environment(name), _remote_loader(name),
                   worker_environment=functools.partial(worker_settings, name))
             for name in ("keras-jax", "keras-torch")))
