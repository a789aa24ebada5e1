"""The probe registry, the runner and the generic verdict, on fake frameworks (no framework needed)."""

from __future__ import annotations

import numpy as np
import pytest

from comparisons import frameworks as registry
from comparisons.audit import base, report
from comparisons.frameworks import FrameworkUnavailable


def fake(*values: int, key: str = "v") -> dict:
    """Framework sides ``a``, ``b``, ``c``, ... reporting ``{key: value}``."""
    return {name: (lambda v=v: {key: v}) for name, v in zip("abcdefg", values, strict=False)}


def run(frameworks: dict, reference=lambda: {"v": 1}, verdict=None) -> base.Finding:
    p = base.Probe("fake", "fake", "numerics", "q", "a", frameworks=frameworks, reference=reference,
                   verdict=verdict or base.compare_key("v"))
    return base.run_probe(p)


def missing(why: str = "not installed here (test)"):
    def side():
        raise FrameworkUnavailable(why)

    return side


# -- the generic verdict --------------------------------------------------------
def test_two_of_three_agree():
    f = run(fake(1, 1, 2))
    assert f.differs is True
    assert f.groups == [["a", "b"], ["c"]]
    assert f.reference_follows == ["a", "b"]


def test_all_agree():
    f = run(fake(1, 1, 1))
    assert f.differs is False and f.groups == [["a", "b", "c"]] and f.reference_follows == ["a", "b", "c"]


def test_all_differ_and_the_reference_follows_one_or_none():
    f = run(fake(1, 2, 3), reference=lambda: {"v": 3})
    assert f.differs is True and f.groups == [["a"], ["b"], ["c"]] and f.reference_follows == ["c"]
    assert run(fake(1, 2, 3), reference=lambda: {"v": 4}).reference_follows == []


def test_a_skipped_framework_is_left_out_of_the_comparison():
    sides = {**fake(1, 2), "c": missing()}
    f = run(sides, reference=lambda: {"v": 2})
    assert f.frameworks["c"] == {"skipped": "not installed here (test)"}
    assert f.differs is True and f.groups == [["a"], ["b"]] and f.reference_follows == ["b"]
    f = run({"a": fake(1)["a"], "b": missing(), "c": fake(0, 0, 1)["c"]})
    assert f.differs is False and f.groups == [["a", "c"]] and f.reference_follows == ["a", "c"]


def test_a_side_may_report_its_own_skip():
    f = run({"a": fake(1)["a"], "b": lambda: {"skipped": "no b equivalent"}})
    assert f.frameworks["b"] == {"skipped": "no b equivalent"}
    assert f.differs is None and f.groups is None and f.reference_follows == ["a"]


@pytest.mark.parametrize("sides", [fake(1), {"a": fake(1)["a"], "b": missing()}, {"a": missing(), "b": missing()}])
def test_fewer_than_two_ran_means_no_verdict(sides):
    f = run(sides)
    assert f.differs is None and f.groups is None


def test_the_reference_not_implemented_or_skipped():
    f = run(fake(1, 2), reference=None)
    assert f.reference == {"skipped": base.NOT_IMPLEMENTED} and f.reference_follows == base.NOT_IMPLEMENTED
    assert f.differs is True and f.groups == [["a"], ["b"]]
    f = run(fake(1, 2), reference=missing("reference unavailable (test)"))
    assert f.reference_follows == "skipped"


def test_frameworks_are_ordered_by_the_registry_then_as_given():
    names = ["zz", *reversed(registry.NAMES), "aa"]
    assert base.framework_order(names) == [*registry.NAMES, "zz", "aa"]
    f = run({"zz": lambda: {"v": 1}, registry.NAMES[-1]: lambda: {"v": 2}, registry.NAMES[0]: lambda: {"v": 1}})
    assert list(f.frameworks) == [registry.NAMES[0], registry.NAMES[-1], "zz"]
    assert f.groups == [[registry.NAMES[0], "zz"], [registry.NAMES[-1]]]
    assert f.reference_follows == [registry.NAMES[0], "zz"]


def test_private_keys_reach_the_verdict_not_the_finding():
    seen = {}

    def verdict(evidence, reference):
        seen.update({name: e["_raw"] for name, e in evidence.items()})
        return base.decide(evidence, reference, lambda a, b: a["v"] == b["v"],
                           comparison={"raw_sum": np.float64(sum(seen.values()))})

    f = run({"a": lambda: {"v": 1, "_raw": np.ones(2)}, "b": lambda: {"v": 1, "_raw": np.zeros(2)}}, verdict=verdict)
    assert f.frameworks == {"a": {"v": 1}, "b": {"v": 1}}
    assert f.comparison == {"raw_sum": [1.0, 1.0]} and type(f.comparison["raw_sum"][0]) is float


# -- compare_key ----------------------------------------------------------------------
def test_compare_key_on_several_keys_paths_and_extractors():
    a, b = {"x": 1, "n": {"p": [1, 2]}, "y": 5}, {"x": 1, "n": {"p": [1, 2]}, "y": 6}
    evidence = {"a": a, "b": b}
    assert base.compare_key("x", ("n", "p"))(evidence, a).groups == [["a", "b"]]
    assert base.compare_key("x", "y")(evidence, a).groups == [["a"], ["b"]]
    assert base.compare_key(lambda e: e["y"] % 2 == 1)(evidence, a).groups == [["a"], ["b"]]
    assert base.compare_key(lambda e: e["y"] > 0)(evidence, a).groups == [["a", "b"]]


def test_compare_key_missing_key_agrees_with_nothing():
    d = base.compare_key("v")({"a": {"v": 1}, "b": {}, "c": {}}, {})
    assert d.groups == [["a"], ["b"], ["c"]] and d.reference_follows == []
    assert base.value({"n": {"p": 1}}, ("n", "q")) is base.MISSING and base.value({"n": 1}, ("n", "p")) is base.MISSING


def test_compare_key_reference_keys_and_tolerances():
    evidence = {"a": {"v": 1.0, "w": 1}, "b": {"v": 1.0 + 1e-9, "w": 2}}
    d = base.compare_key("v", "w", reference_keys=("v",))(evidence, {"v": 1.0 + 5e-7, "w": 3})
    assert d.differs is True and d.reference_follows == ["a", "b"]  # the reference: floats to 1e-6 relative
    assert base.compare_key("v")(evidence, {"v": 1.0}).groups == [["a"], ["b"]]  # frameworks: exactly
    close = base.compare_key("v", equal=lambda x, y: np.isclose(x, y, rtol=1e-6), reference_equal=base.exact)
    d = close(evidence, {"v": 1.0})
    assert d.groups == [["a", "b"]] and d.reference_follows == ["a"]
    with pytest.raises(ValueError, match="at least one key"):
        base.compare_key()


def test_groups_join_the_first_matching_group():
    same = lambda x, y: abs(x["v"] - y["v"]) <= 1  # noqa: E731  (not transitive: 0 ~ 1 ~ 2, 0 !~ 2)
    assert base.agreement({"a": {"v": 0}, "b": {"v": 1}, "c": {"v": 2}}, same) == [["a", "b"], ["c"]]
    assert base.agreement({"a": {"v": 0}}, same) is None
    assert base.matching({"skipped": "x"}, {"a": {"v": 0}}, same) == []


def test_close_and_exact():
    assert base.close(1.0, 1.0 + 1e-7) and not base.close(1.0, 1.0 + 1e-5) and not base.close(1.0, None)
    assert base.close([1, 2], [1, 2]) and not base.close("a", "b")
    assert base.exact([1.0], [1.0]) and not base.exact(1.0, 1.0 + 1e-12)


# -- the registry -----------------------------------------------------------------------
def test_probe_registers_once_as_decorator_or_with_a_verdict(monkeypatch):
    monkeypatch.setattr(base, "PROBES", {})
    sides = fake(1, 2)

    @base.probe("p1", "t", "numerics", "q", "a", frameworks=sides, reference=None)
    def verdict(evidence, reference):
        return base.decide(evidence, reference, lambda a, b: True)

    assert base.PROBES["p1"].verdict is verdict and base.PROBES["p1"].frameworks == sides
    p2 = base.probe("p2", "t", "numerics", "q", "a", frameworks=sides, reference=None, verdict=base.compare_key("v"))
    assert base.PROBES["p2"] is p2
    with pytest.raises(ValueError, match="registered twice"):
        base.probe("p2", "t", "numerics", "q", "a", frameworks=sides, reference=None, verdict=base.compare_key("v"))
    with pytest.raises(ValueError, match="at least one framework"):
        base.probe("p3", "t", "numerics", "q", "a", frameworks={}, reference=None)


def test_a_missing_side_is_reported_as_skipped():
    f = run({"torch": lambda: {"v": 1}, "keras": missing("keras is not installed here (test)")}, reference=None)
    assert f.frameworks["keras"] == {"skipped": "keras is not installed here (test)"}
    assert f.differs is None and f.reference_follows == base.NOT_IMPLEMENTED
    assert "keras skipped" in report.summary_table([f])
    assert "*keras: skipped (keras is not installed here (test)).*" in report.markdown([f])


# -- guarded imports and versions --------------------------------------------------------------
def test_import_keras_prepares_the_comparison_settings_first(monkeypatch):
    calls = []
    monkeypatch.setattr(base.registry, "prepare", lambda name, purpose="compare": calls.append((name, purpose)))
    try:
        base.import_keras()
    except FrameworkUnavailable:
        pass
    assert calls == [("keras", "compare")]


def test_versions_name_numpy_and_every_installed_framework_package():
    import importlib.util

    found = base.versions()
    assert found["numpy"] == np.__version__
    packages = [p for name in registry.NAMES for p in registry.entry(name).packages]
    assert set(found) == {"numpy", *(p for p in packages if importlib.util.find_spec(p) is not None)}


def test_jsonable():
    value = {1: (np.int64(2), np.float32(0.5), np.bool_(True)), "a": np.arange(2)}
    assert base.jsonable(value) == {"1": [2, 0.5, True], "a": [0, 1]}
