"""``cnnref report``: everything a reader wants in one folder.

Runs, in order: the reference's finite-difference gradient checks, a quick ``bench``, ``verify`` against
every installed framework and the ``audit``, each command in a process of its own (timing and comparing need
different framework settings: :mod:`comparisons.frameworks`); writes each part's files into ``--out`` and prints
where they are. Exits non-zero if any part failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from .gradchecks import TOL, format_rows, gradient_check_rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("reports"), help="output folder (default: reports/)")
    parser.add_argument("--skip", action="append", default=[], choices=["verify", "audit", "bench"],
                        help="leave a part out (repeatable)")


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    rows = gradient_check_rows()
    failed = sum(not r["passed"] for r in rows)
    table = format_rows(rows)
    (out / "gradcheck.md").write_text(
        "# Reference gradients vs central differences (float64)\n\n"
        f"Normwise relative error of each analytic gradient; tolerance {TOL:g}.\n\n{table}\n")
    print(f"== gradient checks: {len(rows)} quantities, {failed} failed -> {out / 'gradcheck.md'}")
    status = 1 if failed else 0
    # each part in a process of its own: the frameworks' settings differ between timing and comparing
    parts = {
        "bench": ["bench", "--quick", "--out", str(out)],
        "verify": ["verify", "--json", str(out / "verify.json"), "--markdown", str(out / "verify.md")],
        "audit": ["audit", "--out", str(out), "--json", str(out / "audit.json")],
    }
    for name, argv in parts.items():
        if name in args.skip:
            continue
        print(f"\n== cnnref {' '.join(argv)}", flush=True)
        code = subprocess.run([sys.executable, "-m", "comparisons.cli", *argv], check=False).returncode
        status = status or code
        print(f"== {name}: {'ok' if code == 0 else f'FAILED (exit {code})'}")
    print(f"\nreport written to {out}/")
    return status
