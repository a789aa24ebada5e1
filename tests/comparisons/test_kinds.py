"""The layer-kind registry (:mod:`comparisons.kinds`): every kind builds its reference layer, families are the
reference class names, ``spatial`` is true exactly for the layers that take ``impl``, and the reduction
lengths behind the tolerances equal hand counts."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import reference as ref
from comparisons import cases, kinds

# one spec of each kind as the matrix uses it
SPECS = {}
for _case in cases.all_cases():
    for _spec in _case.specs:
        SPECS.setdefault(_spec.kind, _spec)


@pytest.mark.parametrize("name", list(kinds.KINDS))
def test_every_kind_builds_its_reference_layer(name):
    record = kinds.kind(name)
    assert record.name == name
    impls = ("loop", "im2col") if record.spatial else ("im2col",)
    for impl in impls:
        layer = record.build(SPECS[name].kwargs, impl, np.dtype("float64"), np.random.default_rng(0))
        assert type(layer) is getattr(ref, record.family)
        assert getattr(layer, "impl", impl) == impl


def test_families_are_unique_reference_class_names():
    families = [k.family for k in kinds.KINDS.values()]
    assert len(families) == len(set(families)) == len(kinds.FAMILIES)
    assert set(families) == set(kinds.FAMILIES)
    for family in families:
        assert inspect.isclass(getattr(ref, family)) and getattr(ref, family).__name__ == family


def test_spatial_exactly_for_the_layers_that_take_impl():
    for record in kinds.KINDS.values():
        takes_impl = "impl" in inspect.signature(getattr(ref, record.family)).parameters
        assert record.spatial == takes_impl, record.name


def test_unknown_kind_names_the_registered_ones():
    with pytest.raises(ValueError, match="unknown layer kind 'nope'.*conv"):
        kinds.kind("nope")


def reduction(layer, x_shape):
    out = layer.forward(np.zeros(x_shape))
    return kinds.reduction_length(layer, x_shape, out.shape)


def test_reduction_lengths_equal_hand_counts():
    # conv 3 -> 4, 3x3, on (2, 3, 11, 10): outputs (2, 4, 9, 8); a weight gradient sums over 2 * 9 * 8 = 144
    # positions, an output over 3 * 3 * 3 = 27 terms, an input gradient over 4 * 3 * 3 = 36
    assert reduction(ref.Conv2d(3, 4, 3, rng=np.random.default_rng(0)), (2, 3, 11, 10)) == 144
    # grouped conv 4 -> 8 in 2 groups, 3x3, on (1, 4, 3, 3): one position; an output sums 2 * 9 = 18 terms,
    # an input gradient 4 * 9 = 36 (the 4 outputs of its group)
    assert reduction(ref.Conv2d(4, 8, 3, groups=2, rng=np.random.default_rng(0)), (1, 4, 3, 3)) == 36
    # a 2x3 pooling window: 6 cells
    assert reduction(ref.MaxPool2d((2, 3)), (1, 1, 6, 6)) == 6
    assert reduction(ref.AvgPool2d((2, 3), stride=1), (1, 1, 6, 6)) == 6
    # global average over a 5x4 plane: 20 cells
    assert reduction(ref.GlobalAvgPool2d(), (2, 3, 5, 4)) == 20
    # linear 7 -> 5 on a batch of 4: an output sums 7 terms, an input gradient 5, a weight gradient 4
    assert reduction(ref.Linear(7, 5, rng=np.random.default_rng(0)), (4, 7)) == 7
    # batch norm on (2, 3, 5, 4): n = 2 * 5 * 4 = 40 values per channel; training: mean, variance and the
    # backward's two means in sequence, 3 * 40; evaluation: the parameter gradients' sums over 40
    assert reduction(ref.BatchNorm2d(3).train(True), (2, 3, 5, 4)) == 120
    assert reduction(ref.BatchNorm2d(3).train(False), (2, 3, 5, 4)) == 40
    # elementwise layers sum nothing
    assert reduction(ref.ReLU(), (2, 3, 5, 4)) == 1
    assert reduction(ref.Tanh(), (2, 3, 5, 4)) == 1
