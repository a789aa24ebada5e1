"""``cnnref verify``: the case matrix against each framework, as a table and a JSON file."""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

from . import cases, frameworks, harness

PURPOSE = "compare"  # the frameworks run with deterministic kernels that support float64 (comparisons.frameworks)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--framework", action="append", choices=frameworks.NAMES,
                        help="compare against this framework only (repeatable; default: all)")
    parser.add_argument("--layer", action="append", choices=layer_families(), metavar="LAYER",
                        help="only cases of this layer and its variants, e.g. Conv2d (with Conv2d(grouped), ...); "
                             "repeatable; one of: " + ", ".join(layer_families()))
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every record as a JSON list")
    parser.add_argument("--markdown", type=Path, metavar="PATH", help="also write the table as Markdown")
    parser.add_argument("--all-rows", action="store_true", help="one row per quantity (default: per layer)")


def layer_families() -> list[str]:
    """Every name ``--layer`` takes: the case matrix's layer families and their variants (``Conv2d(grouped)``)."""
    return sorted({name for c in cases.all_cases() for name in (c.family, c.layer)})


def verify(names, layers=None, progress=True):
    """Run the matrix against the frameworks ``names``. Returns ``(records, skipped)``; ``skipped`` maps
    framework -> {reason: count}.
    ``layers``: case families (``Conv2d``) or layers (``Conv2d(grouped)``); None for all."""
    selected = [c for c in cases.all_cases() if not layers or c.layer in layers or c.family in layers]
    records, skipped = [], defaultdict(lambda: defaultdict(int))
    for framework in names:
        try:
            adapter = frameworks.load(framework)
        except frameworks.FrameworkUnavailable as exc:
            skipped[framework][str(exc)] += len(cases.expand(selected))
            continue
        triples = cases.expand(selected)
        if progress:
            from tqdm import tqdm

            triples = tqdm(triples, desc=f"verify {framework}", unit="case", file=sys.stderr, leave=False)
        for case, impl, dtype in triples:
            reason = harness.skip_reason(adapter, case, dtype)
            if reason:
                skipped[framework][reason] += 1
                continue
            records.extend(harness.compare(case, impl, dtype, adapter))
    return records, skipped


def not_applicable(records) -> dict[str, int]:
    """framework -> how many of its records are not applicable (quantities it does not compute)."""
    counts: dict[str, int] = defaultdict(int)
    for r in records:
        if not r.applicable:
            counts[r.framework] += 1
    return dict(counts)


def _err_over_tol(r) -> float:
    """How much of its tolerance a record used (exact quantities, tol 0: 0 if equal, else inf)."""
    if r.tol > 0:
        return r.max_rel_err / r.tol
    return 0.0 if r.max_rel_err == 0 else float("inf")


def summarize(records, by_quantity: bool):
    """Rows grouped by layer, framework, dtype, impl (and quantity): worst errors, pass count (records that are not
    applicable, gradients of a forward-only framework, are counted apart: :func:`not_applicable`)."""
    groups = defaultdict(list)
    for r in records:
        if not r.applicable:
            continue
        key = (r.layer, r.framework, r.dtype, r.impl) + ((r.quantity,) if by_quantity else ())
        groups[key].append(r)
    rows = []
    for key, rs in groups.items():
        worst = max(rs, key=lambda r: _err_over_tol(r))
        rows.append((*key, len(rs), max(r.max_abs_err for r in rs), max(r.max_rel_err for r in rs),
                     _err_over_tol(worst), all(r.passed for r in rs)))
    return rows


def _cell(value) -> str:
    """A key of a table row as printed: a case that is not spatial has no implementation (``impl`` None): "-"."""
    return "-" if value is None else str(value)


def format_table(rows, by_quantity: bool, markdown: bool = False) -> str:
    head = ["layer", "framework", "dtype", "impl"] + (["quantity"] if by_quantity else []) + [
        "records", "max abs err", "max rel err", "worst err/tol", "result"]
    body = [[*map(_cell, row[:-5]), str(row[-5]), f"{row[-4]:.2e}", f"{row[-3]:.2e}", f"{row[-2]:.3f}",
             "PASS" if row[-1] else "FAIL"] for row in rows]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in body])
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*head), fmt.format(*("-" * w for w in widths))] + [fmt.format(*r) for r in body])


def run(args: argparse.Namespace) -> int:
    records, skipped = verify(args.framework or list(frameworks.NAMES), args.layer)
    rows = summarize(records, args.all_rows)
    print(format_table(rows, args.all_rows))
    compared = [r for r in records if r.applicable]
    failed = [r for r in compared if not r.passed]
    for framework, count in not_applicable(records).items():
        print(f"not applicable: {count} {framework} record(s) of gradients (it computes the forward pass only)")
    print(f"\n{len(compared)} records, {len(compared) - len(failed)} passed, {len(failed)} failed "
          f"({len({(r.layer, r.config) for r in records})} configurations)")
    for framework, reasons in skipped.items():
        for reason, count in reasons.items():
            print(f"skipped {count} {framework} case(s): {reason}")
    for r in failed[:20]:
        print(f"FAIL {r.framework} {r.layer} {r.impl} {r.dtype} {r.quantity}: rel {r.max_rel_err:.3e} > "
              f"tol {r.tol:.3e} [{r.config}]")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([r.to_dict() for r in records], indent=1))
        print(f"wrote {len(records)} records to {args.json}")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        skipped_lines = [f"- {fw}: {n} case(s) skipped: {reason}" for fw, rs in skipped.items()
                         for reason, n in rs.items()]
        args.markdown.write_text("# Verification\n\n" + format_table(rows, args.all_rows, markdown=True)
                                 + f"\n\n{len(records)} records, {len(failed)} failed.\n\n" + "\n".join(skipped_lines))
    if not records:
        print("nothing was compared (every selected case was skipped): not a pass", file=sys.stderr)
        return 1
    return 1 if failed else 0
