"""Turn findings into the summary table, the Markdown porting guide and the JSON list.

The framework columns are the frameworks that ran at least one of the findings' probes, in the registry's
order (:data:`comparisons.frameworks.NAMES`), then any other framework a probe names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .base import Finding, framework_order, skipped, versions


def fmt(value: Any) -> str:
    """A compact, readable rendering of one evidence value (floats to 6 significant digits)."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return "0" if value == 0 else f"{value:.6g}"  # no "-0" for a negative zero
    if isinstance(value, list):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {fmt(v)}" for k, v in value.items()) + "}"
    return str(value)


def flatten(evidence: dict, prefix: str = "") -> dict[str, Any]:
    """Nested evidence dicts -> ``{"a.b": value}`` (lists stay whole)."""
    flat: dict[str, Any] = {}
    for key, value in evidence.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def frameworks_that_ran(findings: list[Finding]) -> list[str]:
    """The frameworks with evidence (not a skip) in at least one finding, registry order first."""
    return framework_order(name for f in findings for name, e in f.frameworks.items() if not skipped(e))


def _yes_no(differs: bool | None) -> str:
    return {True: "yes", False: "no", None: "n/a"}[differs]


def groups_label(groups: list[list[str]] | None) -> str:
    """``torch, keras`` (one group: all agree), ``torch | keras`` (two groups), ``n/a`` (fewer than two ran)."""
    return "n/a" if groups is None else " | ".join(", ".join(g) for g in groups)


def follows_label(follows: list[str] | str) -> str:
    """The frameworks the reference follows (``none`` for an empty list), or why it did not run."""
    if isinstance(follows, str):
        return follows
    return ", ".join(follows) if follows else "none"


def skip_notes(f: Finding) -> str:
    return ", ".join(f"{name} skipped" for name, e in f.frameworks.items() if skipped(e))


def summary_rows(findings: list[Finding]) -> list[tuple[str, ...]]:
    return [(f.id, f.area, _yes_no(f.differs), groups_label(f.groups), follows_label(f.reference_follows),
             skip_notes(f)) for f in findings]


def summary_table(findings: list[Finding]) -> str:
    """Plain-text table for the terminal: id, area, differs, groups, reference follows, skipped sides."""
    header = ("probe", "area", "frameworks differ", "groups that agree", "reference follows", "notes")
    rows = [header, *summary_rows(findings)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    n_diff = sum(f.differs is True for f in findings)
    lines.append(f"\n{len(findings)} findings, {n_diff} where frameworks differ "
                 f"(compared: {', '.join(frameworks_that_ran(findings)) or 'none'}).")
    return "\n".join(lines)


def _md_cell(value: Any) -> str:
    return fmt(value).replace("|", "\\|").replace("\n", " ")


def _status(f: Finding, name: str) -> str:
    """A framework's cell in the index: ran, skipped with the reason, or not probed."""
    if name not in f.frameworks:
        return "not probed"
    e = f.frameworks[name]
    return f"skipped: {_md_cell(e['skipped'])}" if skipped(e) else "ran"


def _evidence_table(f: Finding, columns: list[str]) -> list[str]:
    """Evidence rows, a column per framework in ``columns`` (plus any other the finding has) and the reference;
    a skipped side shows its reason in the ``skipped`` row."""
    names = framework_order([*columns, *f.frameworks])
    sides = {**{name: f.frameworks.get(name, {}) for name in names}, "reference": f.reference}
    flat = {s: flatten(e) for s, e in sides.items()}
    keys: list[str] = []
    for e in flat.values():
        keys += [k for k in e if k not in keys]
    lines = ["| evidence | " + " | ".join(sides) + " |", "|---|" + "---|" * len(sides)]
    for key in keys:
        cells = [_md_cell(flat[s][key]) if key in flat[s] else "" for s in sides]
        lines.append(f"| `{key}` | " + " | ".join(cells) + " |")
    for s, e in sides.items():
        if skipped(e):
            lines.append(f"\n*{s}: skipped ({e['skipped']}).*")
    not_probed = [name for name in names if name not in f.frameworks]
    if not_probed:
        lines.append(f"\n*Not probed here: {', '.join(not_probed)}.*")
    for key, value in f.comparison.items():
        lines.append(f"\nCross-check: `{key}` = {fmt(value)}.")
    return lines


def markdown(findings: list[Finding]) -> str:
    """``audit.md``: a porting guide, one section per finding, grouped by area."""
    vers = ", ".join(f"{k} {v}" for k, v in versions().items())
    columns = frameworks_that_ran(findings)
    lines = [
        "# Porting between frameworks: what the installed frameworks actually do",
        "",
        f"Generated by `cnnref audit` against {vers}. Every number below was computed by running the "
        "frameworks on small crafted inputs (see each question); rerun after an upgrade and compare.",
        "",
        "Columns: one per framework (whether it ran the probe, or why not); *differ* says whether two frameworks "
        "that ran disagree under the settings in the question; *groups* lists the frameworks that agree with each "
        "other; *reference follows* names the frameworks whose convention this project's numpy reference follows "
        "(`none` for none of them, `not implemented yet` for layers it does not have).",
        "",
        "| " + " | ".join(["probe", "area", *columns, "differ", "groups", "reference follows"]) + " |",
        "|---|---|" + "---|" * len(columns) + "---|---|---|",
    ]
    for f in findings:
        cells = [f"[{f.id}](#{f.id})", f.area, *(_status(f, name) for name in columns), _yes_no(f.differs),
                 groups_label(f.groups).replace("|", "\\|"), follows_label(f.reference_follows)]
        lines.append("| " + " | ".join(cells) + " |")
    area = None
    for f in findings:
        if f.area != area:
            area = f.area
            lines += ["", f"## {area[0].upper()}{area[1:]}"]
        lines += [
            "",
            f'<a id="{f.id}"></a>',
            f"### {f.title} (`{f.id}`)",
            "",
            f"**Probe.** {f.question}",
            "",
            f"**Frameworks differ:** {_yes_no(f.differs)} (groups that agree: {groups_label(f.groups)}). "
            f"**The reference follows:** {follows_label(f.reference_follows)}.",
            "",
            *_evidence_table(f, columns),
            "",
            f"**Porting advice.** {f.advice}",
        ]
    return "\n".join(lines) + "\n"


def write_markdown(findings: list[Finding], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "audit.md"
    path.write_text(markdown(findings))
    return path


def write_json(findings: list[Finding], path: Path) -> Path:
    """A JSON list of findings (keys: id, title, area, frameworks (name -> evidence), reference, differs, groups,
    reference_follows, advice, question, comparison, versions)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([f.to_dict() for f in findings], indent=2) + "\n")
    return path
