"""The case matrix (:mod:`comparisons.cases`): unique ids, every registered layer kind in some case, the
layers the matrix is expected to hold, and ``expand``'s ``(case, impl, dtype)`` runs."""

from __future__ import annotations

import pytest

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
        impls = ("loop", "im2col") if spatial else (None,)
        assert case.spatial == spatial, case.id
        assert runs[case.id] == {(i, d) for i in impls for d in ("float64", "float32")}, case.id
    assert len(TRIPLES) == sum(4 if c.spatial else 2 for c in ALL_CASES)
    assert {c.spatial for c in ALL_CASES} == {True, False}


def test_triple_id_names_the_impl_only_for_spatial_cases():
    conv = cases.conv_cases()[0]
    relu = next(c for c in cases.dense_cases() if c.id == "relu-batch")
    assert cases.triple_id((conv, "loop", "float32")) == f"{conv.id}-loop-float32"
    assert cases.triple_id((relu, None, "float64")) == "relu-batch-float64"


def test_a_case_layer_is_its_family_and_variant():
    grouped = next(c for c in ALL_CASES if c.variant == "grouped")
    assert (grouped.family, grouped.layer) == ("Conv2d", "Conv2d(grouped)")
    plain = cases.conv_cases()[0]
    assert (plain.family, plain.variant, plain.layer) == ("Conv2d", None, "Conv2d")
    assert all("(" not in c.family for c in ALL_CASES)


def test_a_family_holding_a_variant_is_refused():
    with pytest.raises(ValueError, match=r"family 'Conv2d\(grouped\)' holds a variant; pass variant="):
        cases.Case("Conv2d(grouped)", "x", (), (2, 3))


def test_loss_is_a_cross_entropy_option_or_none():
    with pytest.raises(TypeError, match="loss must be a CrossEntropyOption, a BinaryCrossEntropyOption or None, "
                                       "got True"):
        cases.Case("CrossEntropy", "x", (), (2, 3), loss=True)
    plain = next(c for c in ALL_CASES if c.id == "cross-entropy-scale1")
    options = next(c for c in ALL_CASES if c.variant == "options" and c.family == "CrossEntropy")
    assert plain.loss is cases.PLAIN_CROSS_ENTROPY and plain.loss_option is None
    assert options.loss_option is options.loss
    assert "softmax_cross_entropy(target=" in options.config and plain.config.startswith("softmax_cross_entropy;")
    assert cases.conv_cases()[0].loss is None


def test_binary_loss_cases_hold_their_option_apart_from_the_cross_entropy():
    logits = next(c for c in ALL_CASES if c.id == "bce-logits-N6C5-none-weight-posweight")
    probs = next(c for c in ALL_CASES if c.id == "bce-probs-N6C5-none-edges")
    assert logits.binary_loss is logits.loss and logits.loss_option is None
    assert (logits.layer, probs.layer) == ("BinaryCrossEntropy(logits)", "BinaryCrossEntropy(probabilities)")
    assert logits.config.startswith("binary_cross_entropy_with_logits(targets=binary, edges=False, weight=True, "
                                    "pos_weight=True, reduction='none'); input (6, 5)")
    assert probs.config.startswith("binary_cross_entropy(targets=binary, edges=True, weight=False, reduction='none')")
    assert cases.loss_cases()[0].binary_loss is None and cases.conv_cases()[0].binary_loss is None
    assert (logits.impls, probs.impls) == ((None,), (None,))


def test_a_binary_cross_entropy_on_probabilities_reads_the_input_itself():
    option = next(c for c in ALL_CASES if c.id == "bce-probs-N6C5-mean").loss
    with pytest.raises(ValueError, match="on probabilities reads the input itself .* no layers; got 1"):
        cases.Case("BinaryCrossEntropy", "x", (cases.spec("sigmoid"),), (6, 5), loss=option)
