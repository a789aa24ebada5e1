"""Stateful fuzzing of the rules every layer follows (reference/layer.py): random sequences of forwards on
shapes that change back and forth, backwards (before any forward, twice), copies and pickles (between forward
and backward too), parameters changed in place or replaced, mode switches; after every step the layer must
compute exactly like a fresh layer in the same state."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tests.fuzz import budget
from tests.reference.helpers import LAYER_KINDS, assert_same, fresh_like


class LayerLifecycle(RuleBasedStateMachine):
    """One layer of kind ``KIND``, driven through a random life; ``pending`` is what the latest forward's
    backward must give (a fresh layer that ran the same forward), or None before any forward."""

    KIND = ""

    @initialize()
    def build(self):
        self.kind = kind = self.KIND
        self.build_layer, self.shapes = LAYER_KINDS[kind]
        self.layer = self.build_layer()
        self.pending = None
        self.seed = 0
        budget.tried[f"lifecycle {kind}"] += 1

    def draw(self, shape) -> np.ndarray:
        self.seed += 1
        return np.random.default_rng(self.seed).standard_normal(shape)

    @rule(which=st.integers(0, 1))
    def forward(self, which):
        x = self.draw(self.shapes[which])
        oracle = fresh_like(self.build_layer, self.layer)
        expected = oracle.forward(x)
        assert_same(self.layer.forward(x), expected, f"{self.kind} forward")
        self.pending = oracle, expected.shape

    @rule()
    def backward(self):
        if self.pending is None:
            with pytest.raises(RuntimeError, match="before forward"):
                self.layer.backward(np.ones(self.shapes[0]))
            return
        oracle, out_shape = self.pending
        dout = self.draw(out_shape)
        expected = oracle.backward(dout)
        for _ in range(2):  # backward twice repeats the same gradients
            assert_same(self.layer.backward(dout), expected, f"{self.kind} dx")
            for key, grad in oracle.grads.items():
                assert_same(self.layer.grads[key], grad, f"{self.kind} grads[{key!r}]")

    @rule(how=st.sampled_from(["deepcopy", "pickle"]))
    def copy(self, how):
        self.layer = copy.deepcopy(self.layer) if how == "deepcopy" else pickle.loads(pickle.dumps(self.layer))

    @precondition(lambda self: len(self.layer.params) > 0)
    @rule(in_place=st.booleans(), factor=st.sampled_from([-2.0, 0.5, 3.0]))
    def change_parameters(self, in_place, factor):
        for key in list(self.layer.params):
            if in_place:
                self.layer.params[key] *= factor
            else:
                self.layer.params[key] = self.layer.params[key] * factor

    @rule(training=st.booleans())
    def switch_mode(self, training):
        self.layer.train(training)

    @invariant()
    def parameters_stay_finite(self):
        for key, value in self.layer.params.items():
            assert np.isfinite(value).all(), key


def lifecycle_test(kind: str):
    """The state machine's test case for one layer kind (so that every kind gets its share of examples)."""
    machine = type(f"LayerLifecycle[{kind}]", (LayerLifecycle,), {"KIND": kind})
    machine.TestCase.settings = budget.examples(8)
    return machine.TestCase


for _kind in LAYER_KINDS:
    globals()[f"TestLifecycle_{_kind.replace('-', '_')}"] = lifecycle_test(_kind)
