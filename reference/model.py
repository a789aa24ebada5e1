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
        return getattr(self._layers[int(index)], self._attr), key

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
            for key in getattr(layer, self._attr):
                yield f"{i}.{key}"

    def __len__(self) -> int:
        return sum(len(getattr(layer, self._attr)) for layer in self._layers)


class Sequential(Layer):
    """``Sequential([layer, ...])``: ``forward`` runs them in order, ``backward`` in reverse.

    ``params`` and ``grads`` are live mappings over every layer's parameters, keyed
    ``"{index}.{name}"`` (``"0.weight"``), for optimizers; ``buffers`` the same over the
    layers' untrained state (``"1.running_mean"``).
    """

    def __init__(self, layers) -> None:
        super().__init__()
        self.layers = list(layers)
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: layers[{i}] must be a Layer, got {type(layer).__name__}")
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
            layer.train(mode)
        return self

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray:
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout
