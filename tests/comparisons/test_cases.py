"""The case matrix (:mod:`comparisons.cases`): unique ids, every registered layer kind in some case, the
layers the matrix is expected to hold, and ``expand``'s ``(case, impl, dtype)`` runs."""

from __future__ import annotations

from comparisons import cases, kinds

ALL_CASES = cases.all_cases()
TRIPLES = cases.expand(ALL_CASES)


def test_case_ids_and_run_ids_are_unique():
    ids = [c.id for c in ALL_CASES]
    assert len(ids) == len(set(ids))
    run_ids = [cases.triple_id(t) for t in TRIPLES]
    assert len(run_ids) == len(set(run_ids))


def test_every_registered_kind_is_in_some_case():
    used = {s.kind for c in ALL_CASES for s in c.specs}
    assert set(kinds.KINDS) <= used


def test_the_matrix_holds_the_normalisation_activation_and_network_cases():
    layers = {c.layer for c in ALL_CASES}
    assert {"BatchNorm2d", "Dropout", "LeakyReLU", "Sigmoid", "Tanh", "GlobalAvgPool2d", "VGGStyleCNN"} <= layers


def test_expand_gives_both_impls_only_to_spatial_cases_and_both_dtypes():
    runs: dict[str, set] = {}
    for case, impl, dtype in TRIPLES:
        runs.setdefault(case.id, set()).add((impl, dtype))
    assert runs.keys() == {c.id for c in ALL_CASES}
    for case in ALL_CASES:
        spatial = any(kinds.KINDS[s.kind].spatial for s in case.specs)
        impls = ("loop", "im2col") if spatial else ("n/a",)
        assert case.spatial == spatial, case.id
        assert runs[case.id] == {(i, d) for i in impls for d in ("float64", "float32")}, case.id
    assert len(TRIPLES) == sum(4 if c.spatial else 2 for c in ALL_CASES)
    assert {c.spatial for c in ALL_CASES} == {True, False}


def test_triple_id_names_the_impl_only_for_spatial_cases():
    conv = cases.conv_cases()[0]
    relu = next(c for c in cases.dense_cases() if c.id == "relu-batch")
    assert cases.triple_id((conv, "loop", "float32")) == f"{conv.id}-loop-float32"
    assert cases.triple_id((relu, "n/a", "float64")) == "relu-batch-float64"
