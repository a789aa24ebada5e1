"""Port a model between PyTorch, Keras and the reference, and find the first layer where two models disagree.

Every port goes through the framework-neutral layer list of :mod:`.layers`: the source framework's ``port`` module
reads the model into it, the target's builds from it (``comparisons/frameworks/pytorch/port.py``,
``comparisons/frameworks/keras3/port.py``, :mod:`.reference_models`). A layer that cannot be ported exactly is
refused with a ValueError naming it (index and type) and the reason. :func:`compare_models` (:mod:`.compare`) runs
two models layer by layer.

Frameworks are imported when a function needs them, with the process settings of
:func:`comparisons.frameworks.load` (Keras on TensorFlow).
"""

from __future__ import annotations

from .compare import ComparisonReport, Row, compare_models
from .layers import PortLayer

__all__ = ["ComparisonReport", "PortLayer", "Row", "compare_models", "framework_port", "keras_to_reference",
           "keras_to_torch", "reference_to_keras", "reference_to_torch", "torch_to_keras", "torch_to_reference"]


# the package a model's class comes from -> the registry entry whose ``port`` module reads and builds it
PORTABLE = {"torch": "torch", "keras": "keras"}


def framework_port(name: str):
    """The ``port`` module of framework ``name`` (``"torch"`` or ``"keras"``), the framework loaded with this
    process's settings."""
    from comparisons import frameworks

    if name not in PORTABLE.values():
        raise ValueError(f"framework_port: name must be one of {sorted(PORTABLE.values())}, got {name!r}")
    return frameworks.load(name).port


def _torch():
    return framework_port("torch")


def _keras():
    return framework_port("keras")


def _reference():
    from . import reference_models

    return reference_models


def torch_to_keras(module, input_shape, dtype: str | None = None):
    """A ``keras.Sequential`` (channels-last, input ``(H, W, C)``) computing the (nested) ``nn.Sequential``
    ``module`` for inputs of shape ``input_shape`` ``(C, H, W)``, its weights converted; in ``dtype`` (default: the
    module's parameters')."""
    torch_port = _torch()
    return _keras().build(torch_port.read(module), input_shape, dtype or torch_port.parameter_dtype(module))


def keras_to_torch(model, dtype: str | None = None):
    """An ``nn.Sequential`` computing the (nested) ``keras.Sequential`` ``model`` (built with ``keras.Input``)."""
    keras_port = _keras()
    return _torch().build(keras_port.read(model), dtype or keras_port.parameter_dtype(model))


def reference_to_torch(model, dtype: str | None = None):
    """An ``nn.Sequential`` computing the reference ``Sequential`` ``model``."""
    reference = _reference()
    return _torch().build(reference.read(model), dtype or reference.parameter_dtype(model))


def torch_to_reference(module, dtype: str | None = None):
    """A reference ``Sequential`` computing the ``nn.Sequential`` ``module``."""
    torch_port = _torch()
    return _reference().build(torch_port.read(module), dtype or torch_port.parameter_dtype(module))


def reference_to_keras(model, input_shape, dtype: str | None = None):
    """A ``keras.Sequential`` computing the reference ``Sequential`` ``model`` for inputs ``input_shape``
    ``(C, H, W)``."""
    reference = _reference()
    return _keras().build(reference.read(model), input_shape, dtype or reference.parameter_dtype(model))


def keras_to_reference(model, dtype: str | None = None):
    """A reference ``Sequential`` computing the ``keras.Sequential`` ``model``."""
    keras_port = _keras()
    return _reference().build(keras_port.read(model), dtype or keras_port.parameter_dtype(model))
