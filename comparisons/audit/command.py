"""``cnnref audit``: run the probes, print the summary table, write ``audit.md`` (and JSON)."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import PROBES, ordered_probes, run_all
from .report import summary_table, write_json, write_markdown

PURPOSE = "compare"  # the frameworks run with deterministic kernels that support float64 (comparisons.frameworks)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("reports"), metavar="DIR",
                        help="directory for audit.md (default: reports/)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the findings as JSON")
    parser.add_argument("--only", action="append", default=None, metavar="ID", choices=sorted(PROBES),
                        help="run only this probe (repeatable); see --list")
    parser.add_argument("--list", action="store_true", help="list the probe ids and exit")


def run(args: argparse.Namespace) -> int:
    if args.list:
        for p in ordered_probes():
            print(f"{p.id:34s} {p.area:24s} {p.title}")
        return 0
    findings = run_all(args.only)
    print(summary_table(findings))
    print(f"\nwrote {write_markdown(findings, args.out)}")
    if args.json is not None:
        print(f"wrote {write_json(findings, args.json)}")
    return 0
