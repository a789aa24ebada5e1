"""Keras 3 on its TensorFlow backend: :mod:`.capability` (what Keras can express, its conventions),
:mod:`.layers` (the layers Keras lacks), :mod:`.losses` (PyTorch's cross-entropy options in Keras),
:mod:`.model` (a case's model with the reference's parameters, run with ``tf.GradientTape``), :mod:`.trainer`,
:mod:`.timing`. Nothing here imports Keras until its entry's ``load()``."""

from __future__ import annotations

from comparisons.frameworks import Entry


def _environment(purpose: str) -> dict[str, tuple[str, str]]:
    """The variables Keras and TensorFlow read when imported."""
    onednn = (("0", "Eigen's CPU kernels: float64 throughout, deterministic, no oneDNN banner") if purpose == "compare"
              else ("1", "oneDNN on, as TensorFlow runs for its users by default"))
    return {"KERAS_BACKEND": ("tensorflow", "Keras 3 on TensorFlow"),
            "TF_CPP_MIN_LOG_LEVEL": ("3", "TensorFlow's C++ log lines are not results"),
            "TF_ENABLE_ONEDNN_OPTS": onednn}


def _load():
    import keras
    import tensorflow as tf

    from ..protocol import Framework
    from . import capability, model, timing, trainer

    return Framework(name="keras", version=f"keras {keras.__version__} / tensorflow {tf.__version__}",
                     versions={"keras": keras.__version__, "tensorflow": tf.__version__},
                     unsupported=capability.unsupported, reference_case=capability.reference_case, run=model.run,
                     trainer=trainer.KerasTrainer, bench_step=timing.bench_step,
                     reference_adam={"eps_hat": True})  # Keras' Adam adds eps before the bias correction


ENTRIES = (Entry("keras", ("keras", "tensorflow"), _environment, _load),)
