"""``cnnref check TARGET --layer KIND``: the case matrix of one layer family through your layer.

Exit code 0 when everything the layer supports passes (and it covers the family's default configuration), 1
when anything fails, 2 on usage errors (a bad TARGET, a target that cannot be imported: one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .. import frameworks, kinds
from .conformance import DTYPES, check_layer
from .run import REFERENCE
from .styles import parse_mapping

PURPOSE = "compare"  # the frameworks run with deterministic kernels that support float64 (comparisons.frameworks)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", nargs="?", metavar="TARGET",
                        help="your layer: module.path:NAME or path/to/file.py:NAME (a class or factory); "
                             "none with --functions")
    parser.add_argument("--layer", required=True, choices=kinds.FAMILIES, metavar="KIND",
                        help="the reference class your layer implements: one of " + ", ".join(kinds.FAMILIES))
    parser.add_argument("--framework", action="append", choices=(REFERENCE, *frameworks.NAMES), metavar="NAME",
                        help="compare with this party too (repeatable; default: reference and torch); one of "
                             + ", ".join((REFERENCE, *frameworks.NAMES)))
    parser.add_argument("--dtype", choices=DTYPES, default="float64", help="the inputs' dtype (default float64)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the report (every record) as JSON")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="write the report as Markdown")
    parser.add_argument("--max-cases", type=int, metavar="N", help="at most N configurations, spread over the matrix")
    parser.add_argument("--param", action="append", metavar="KEY=ATTR",
                        help="attribute style: the reference parameter KEY is your attribute ATTR (weight=W)")
    parser.add_argument("--grad", action="append", metavar="KEY=ATTR",
                        help="attribute style: KEY's gradient is your attribute ATTR after backward (weight=dW)")
    parser.add_argument("--functions", metavar="FWD,BWD",
                        help="CS231n style: module:conv_forward_naive,module:conv_backward_naive (no TARGET)")
    parser.add_argument("--tutorial", action="store_true",
                        help="TARGET is one of the tutorial's classes as published (Conv, MaxPool2x2, Linear)")
    parser.add_argument("--no-shrink", action="store_true", help="report the first failing configurations as they are")
    parser.add_argument("--verbose", action="store_true", help="one line per configuration, passing ones too")


def _progress(configs):
    """``configs`` behind a progress bar on stderr (tqdm, from the ``report`` extra), or as they are without it."""
    try:
        from tqdm import tqdm
    except ImportError:
        return configs
    return tqdm(configs, desc="check", unit="config", file=sys.stderr, leave=False, mininterval=2.0, delay=3.0)


def run(args: argparse.Namespace) -> int:
    if args.max_cases is not None and args.max_cases < 1:
        raise SystemExit(f"cnnref check: --max-cases must be at least 1, got {args.max_cases}")
    try:
        params, grads = parse_mapping(args.param, "--param"), parse_mapping(args.grad, "--grad")
        report = check_layer(args.target, args.layer, params=params, grads=grads, functions=args.functions,
                             tutorial=args.tutorial, frameworks=args.framework or (REFERENCE, "torch"),
                             dtype=args.dtype, max_cases=args.max_cases, shrinking=not args.no_shrink,
                             progress=_progress)
    except ValueError as exc:
        raise SystemExit(f"cnnref check: {exc}") from exc
    print(report.text(verbose=args.verbose))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_dict(), indent=1))
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(report.markdown())
    return 0 if report.passed else 1
