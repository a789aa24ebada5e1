"""``cnnref``: the command-line front end. Parses, dispatches, prints; no maths here.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int`` (the exit code); only the chosen one is imported, so
``cnnref verify --framework torch`` never pays for importing TensorFlow.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

SUBCOMMANDS = {
    "verify": ("comparisons.verify", "compare every reference layer with PyTorch and Keras"),
    "bench": ("comparisons.bench.command", "speed report: loop vs im2col vs PyTorch vs Keras"),
    "train": ("comparisons.training", "train the tutorial's CNN on MNIST"),
    "audit": ("comparisons.audit.command", "probe where PyTorch and Keras conventions differ"),
    "report": ("comparisons.report", "the full report: gradient checks, verify, audit, quick speed report"),
}


DESCRIPTION = ("Reference numpy CNN layers checked against PyTorch and Keras: verification tables, "
               "speed reports, the porting audit and MNIST training.")
OUTPUT_FOLDERS = ("out",)  # argument names that are folders the command writes into
OUTPUT_FILES = ("json", "markdown")  # argument names that are files the command writes
TRACEBACK_VAR = "CNNREF_TRACEBACK"  # set to 1 to see the traceback behind a one-line error


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; the subcommand named ``command`` gets its full arguments."""
    parser = argparse.ArgumentParser(prog="cnnref", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(module).add_arguments(p)
    return parser


def output_problem(args: argparse.Namespace) -> str | None:
    """Check every output location of ``args`` before any work starts (a bad path then fails at once, not
    after a long run; the commands create missing folders when they write); returns what is wrong, or None."""
    for name in (*OUTPUT_FOLDERS, *OUTPUT_FILES):
        value = getattr(args, name, None)
        if value is None:
            continue
        path, folder = Path(value), name in OUTPUT_FOLDERS
        if folder and path.exists() and not path.is_dir():
            return f"--{name}: {path} is a file, expected a folder"
        if not folder and path.is_dir():
            return f"--{name}: {path} is a folder, expected a file path"
        parent = path if folder else path.parent
        existing = next((p for p in (parent, *parent.parents) if p.exists()), Path("."))
        if not existing.is_dir():
            return f"--{name}: {existing} is a file, not a folder"
        if not os.access(existing, os.W_OK | os.X_OK):
            return f"--{name}: cannot write into {existing}"
    return None


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, check the output paths, run the subcommand; bad flags and bad input found while
    running (a ``ValueError``, e.g. a corrupt data file) are reported in one line with exit code 2."""
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command if command in SUBCOMMANDS else None).parse_args(argv)
    problem = output_problem(args)
    if problem:
        print(f"cnnref {args.command}: {problem}", file=sys.stderr)
        return 2
    try:
        return importlib.import_module(SUBCOMMANDS[args.command][0]).run(args)
    except SystemExit as exc:  # a command's own check of its flags or data: a usage error, as argparse's
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            return 2
        raise
    except ValueError as exc:
        if os.environ.get(TRACEBACK_VAR):
            raise
        from reference.data import DataError

        hint = "" if isinstance(exc, DataError) else f" (set {TRACEBACK_VAR}=1 for the traceback)"
        print(f"cnnref {args.command}: {exc}{hint}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
