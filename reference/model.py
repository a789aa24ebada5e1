"""Sequential: layers chained forward, gradients chained backward."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping

import numpy as np

from .layer import Layer


class _ParameterView(MutableMapping):
    """``"{index}.{key}"`` -> the layer's own array (PyTorch ``state_dict`` naming).

    Reading gives the layer's array itself (in-place updates reach the layer);
    assigning replaces the layer's entry.
    """

    def __init__(self, layers: list[Layer], attr: str) -> None:
        self._layers, self._attr = layers, attr

    def _split(self, name: str) -> tuple[dict, str]:
        index, _, key = name.partition(".")
        if not index.isdigit() or int(index) >= len(self._layers):
            raise KeyError(name)
        return getattr(self._layers[int(index)], self._attr, {}), key

    def __getitem__(self, name: str) -> np.ndarray:
        store, key = self._split(name)
        return store[key]

    def __setitem__(self, name: str, value: np.ndarray) -> None:
        store, key = self._split(name)
        if self._attr in ("params", "buffers") and key not in store:
            raise KeyError(f"{name}: layer {name.partition('.')[0]} has no {self._attr[:-1]} {key!r}")
        store[key] = value

    def __delitem__(self, name: str) -> None:
        raise TypeError(f"{self._attr} cannot be deleted from a Sequential")

    def __iter__(self) -> Iterator[str]:
        for i, layer in enumerate(self._layers):
            for key in getattr(layer, self._attr, {}):
                yield f"{i}.{key}"

    def __len__(self) -> int:
        return sum(len(getattr(layer, self._attr, {})) for layer in self._layers)


class Sequential(Layer):
    """``Sequential([layer, ...])``: ``forward`` runs them in order, ``backward`` in reverse.

    ``params`` and ``grads`` are live mappings over every layer's parameters, keyed
    ``"{index}.{name}"`` (``"0.weight"``), for optimizers; ``buffers`` the same over the
    layers' untrained state (``"1.running_mean"``).

    Each layer instance may stand once in a model (nested models included): a layer holds one forward's
    cache, so a second place would overwrite the first's and its gradients would be wrong. ``backward``
    checks that every layer's cache is still the one this model's forward made (see :mod:`reference.layer`).

    A layer may also be any object with the layer protocol (:func:`is_layer_like`: ``forward(x)``,
    ``backward(dout) -> dx``, ``params`` and ``grads`` dicts; ``buffers`` and ``train(mode)`` when it has
    them), e.g. your own layer next to reference ones. It too may stand once only; but an object without a
    ``forward_token`` attribute cannot tell whether another forward overwrote its cache, so for it the
    ``backward`` check above does not apply.
    """

    def __init__(self, layers) -> None:
        super().__init__()
        try:
            items = None if isinstance(layers, (str, bytes)) else iter(layers)
        except TypeError:
            items = None
        if items is None:
            raise TypeError(f"Sequential: layers must be an iterable of Layers, got {layers!r} "
                            f"({type(layers).__name__})")
        self.layers = list(items)
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Layer) and not is_layer_like(layer):
                raise TypeError(f"Sequential: layers[{i}] must be a Layer or have forward, backward, params and "
                                f"grads, got {type(layer).__name__}")
        _check_each_once(self)
        self.params = _ParameterView(self.layers, "params")
        self.grads = _ParameterView(self.layers, "grads")
        self.buffers = _ParameterView(self.layers, "buffers")

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)"

    def __getitem__(self, index: int) -> Layer:
        return self.layers[index]

    def __len__(self) -> int:
        return len(self.layers)

    def train(self, mode: bool = True) -> Sequential:
        self.training = mode
        for layer in self.layers:
            if hasattr(layer, "train"):
                layer.train(mode)
        return self

    def forward(self, x: np.ndarray) -> np.ndarray:
        tokens = []
        for layer in self.layers:
            x = layer.forward(x)
            tokens.append(getattr(layer, "forward_token", None))
        self._cache = (list(self.layers), tokens)
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray:
        if self._cache is None:
            raise RuntimeError("Sequential.backward called before forward")
        layers, tokens = self._cache
        if layers != self.layers:
            raise RuntimeError("Sequential.backward: the layers list changed since forward; run forward again")
        for i, (layer, token) in enumerate(zip(layers, tokens, strict=True)):
            if token is not None and layer.forward_token is not token:  # None: a foreign layer, see the docstring
                raise RuntimeError(
                    f"Sequential.backward: layer {i} ({_name(layer)}) ran another forward since this model's "
                    f"forward (is it shared with another model, or used twice?); its cache belongs to that call, "
                    f"so its gradients here would be wrong. Run this model's forward again before backward")
        for layer in reversed(layers):
            dout = layer.backward(dout)
        return dout


def is_layer_like(obj) -> bool:
    """Whether ``obj`` has the layer protocol: callable ``forward`` and ``backward``, ``params`` and ``grads``."""
    return (callable(getattr(obj, "forward", None)) and callable(getattr(obj, "backward", None))
            and hasattr(obj, "params") and hasattr(obj, "grads"))


def _name(layer) -> str:
    return getattr(layer, "name", None) or type(layer).__name__


def _check_each_once(model: Sequential) -> None:
    """Raise ValueError when a layer instance stands twice in ``model`` (nested Sequentials included)."""
    seen: dict[int, str] = {}

    def walk(seq: Sequential, path: str, stack: tuple[int, ...]) -> None:
        for i, layer in enumerate(seq.layers):
            where = f"{path}[{i}]"
            if id(layer) in stack:
                raise ValueError(f"Sequential: {where} contains the Sequential itself")
            if id(layer) in seen:
                raise ValueError(
                    f"Sequential: layers{where} is the same {_name(layer)} instance as layers{seen[id(layer)]}; a "
                    f"layer holds one forward's cache, so a second place would overwrite the first's and give wrong "
                    f"gradients. Use a separate layer (copy.deepcopy(layer) for the same initial values)")
            seen[id(layer)] = where
            if isinstance(layer, Sequential):
                walk(layer, where, (*stack, id(layer)))

    walk(model, "", (id(model),))
