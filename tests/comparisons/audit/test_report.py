"""The summary table, audit.md and the JSON (audit/report.py), on hand-made findings (no framework needed)."""

from __future__ import annotations

import json

from comparisons import frameworks as registry
from comparisons.audit import base, report


def finding(pid: str = "p", frameworks=None, reference=None, differs=True, groups="two", follows=None,
            comparison=None) -> base.Finding:
    """A finding on torch and keras; ``groups="two"``: each in its own group."""
    frameworks = {"torch": {"v": 1}, "keras": {"v": 2}} if frameworks is None else frameworks
    return base.Finding(pid, f"title {pid}", "numerics", frameworks, reference or {"v": 1}, differs,
                        [["torch"], ["keras"]] if groups == "two" else groups,
                        ["torch"] if follows is None else follows, f"advice {pid}", f"question {pid}",
                        comparison or {})


def test_fmt_and_flatten():
    assert report.fmt(-0.0) == "0" and report.fmt(1 / 3) == "0.333333" and report.fmt(None) == "None"
    assert report.fmt([1.0, {"a": True}]) == "[1, {a: True}]"
    assert report.flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": 2}) == {"a.b": 1, "a.c.d": [1, 2], "e": 2}


def test_labels():
    assert report.groups_label([["torch"], ["keras"]]) == "torch | keras"
    assert report.groups_label([["torch", "keras"]]) == "torch, keras" and report.groups_label(None) == "n/a"
    assert report.follows_label(["torch", "keras"]) == "torch, keras" and report.follows_label([]) == "none"
    assert report.follows_label(base.NOT_IMPLEMENTED) == base.NOT_IMPLEMENTED


def test_framework_columns_come_from_the_findings_in_registry_order():
    fs = [finding("a", frameworks={"zz": {"v": 1}, registry.NAMES[-1]: {"v": 1}}),
          finding("b", frameworks={registry.NAMES[0]: {"v": 1}, "skipper": {"skipped": "not here"}})]
    assert report.frameworks_that_ran(fs) == [registry.NAMES[0], registry.NAMES[-1], "zz"]
    md = report.markdown(fs)
    header = next(line for line in md.splitlines() if line.startswith("| probe |"))
    assert header == "| probe | area | " + " | ".join([registry.NAMES[0], registry.NAMES[-1], "zz"]) + \
        " | differ | groups | reference follows |"
    row_a = next(line for line in md.splitlines() if line.startswith("| [a](#a)"))
    assert row_a == "| [a](#a) | numerics | not probed | ran | ran | yes | torch \\| keras | torch |"


def test_evidence_table_has_a_column_per_framework_and_the_skip_reason():
    f = finding(frameworks={"torch": {"v": 1.5, "n": {"m": 2}}, "keras": {"skipped": "keras is not installed (test)"}},
                differs=None, groups=None, follows=["torch"], comparison={"max_abs_diff_torch_vs_keras": 0.25})
    md = report.markdown([f])
    assert "| evidence | torch | keras | reference |" in md
    assert "| `v` | 1.5 |  | 1 |" in md and "| `n.m` | 2 |  |  |" in md
    assert "| `skipped` |  | keras is not installed (test) |  |" in md
    assert "*keras: skipped (keras is not installed (test)).*" in md
    assert "Cross-check: `max_abs_diff_torch_vs_keras` = 0.25." in md
    assert "**Frameworks differ:** n/a (groups that agree: n/a). **The reference follows:** torch." in md
    # keras ran no probe of this report: no index column, its evidence column stays (with the reason)
    assert "| [p](#p) | numerics | ran | n/a | n/a | torch |" in md
    g = finding("q")
    md = report.markdown([f, g])
    assert "| [p](#p) | numerics | ran | skipped: keras is not installed (test) | n/a | n/a | torch |" in md


def test_summary_table():
    fs = [finding("one"), finding("two", differs=False, groups=[["torch", "keras"]], follows=["torch", "keras"]),
          finding("three", frameworks={"torch": {"v": 1}, "keras": {"skipped": "why"}}, differs=None, groups=None,
                  follows=base.NOT_IMPLEMENTED)]
    lines = report.summary_table(fs).splitlines()
    assert lines[0].split() == ["probe", "area", "frameworks", "differ", "groups", "that", "agree", "reference",
                                "follows", "notes"]
    assert lines[2].split() == ["one", "numerics", "yes", "torch", "|", "keras", "torch"]
    assert lines[3].split() == ["two", "numerics", "no", "torch,", "keras", "torch,", "keras"]
    assert lines[4].split() == ["three", "numerics", "n/a", "n/a", "not", "implemented", "yet", "keras", "skipped"]
    assert lines[-1] == "3 findings, 1 where frameworks differ (compared: torch, keras)."


def test_json_holds_the_framework_mapping(tmp_path):
    path = report.write_json([finding()], tmp_path / "sub" / "audit.json")
    (d,) = json.loads(path.read_text())
    assert list(d) == ["id", "title", "area", "frameworks", "reference", "differs", "groups", "reference_follows",
                       "advice", "question", "comparison", "versions"]
    assert d["frameworks"] == {"torch": {"v": 1}, "keras": {"v": 2}}
    assert d["groups"] == [["torch"], ["keras"]] and d["reference_follows"] == ["torch"]
