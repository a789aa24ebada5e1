"""``cnnref``: the command-line front end. Parses, dispatches, prints; no maths here.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int`` (the exit code); only the chosen one is imported, so
``cnnref verify --framework torch`` never pays for importing TensorFlow.
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS = {
    "verify": ("comparisons.verify", "compare every reference layer with PyTorch and Keras"),
    "bench": ("comparisons.bench.command", "speed report: loop vs im2col vs PyTorch vs Keras"),
    "train": ("comparisons.training", "train the tutorial's CNN on MNIST"),
    "audit": ("comparisons.audit.command", "probe where PyTorch and Keras conventions differ"),
    "report": ("comparisons.report", "the full report: gradient checks, verify, audit, quick speed report"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; the subcommand named ``command`` gets its full arguments."""
    parser = argparse.ArgumentParser(prog="cnnref", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command if command in SUBCOMMANDS else None).parse_args(argv)
    return importlib.import_module(SUBCOMMANDS[args.command][0]).run(args)


if __name__ == "__main__":
    sys.exit(main())
