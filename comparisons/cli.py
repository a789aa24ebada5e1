"""``cnnref``: the command-line front end. Parses, dispatches, prints; no maths here.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int`` (the exit code); this file only wires them together.
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
    "report": ("comparisons.report", "the full report: verify, audit and a quick speed report"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cnnref", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in SUBCOMMANDS.items():
        try:
            command = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue  # a subcommand still being built
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        command.add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return importlib.import_module(args._module).run(args)


if __name__ == "__main__":
    sys.exit(main())
