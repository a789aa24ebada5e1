"""``cnnref``: the command-line front end. Parses, dispatches, prints; no maths here.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int`` (the exit code); only the chosen one is imported, so
``cnnref verify --framework torch`` never pays for importing TensorFlow. A subcommand that runs frameworks
declares ``PURPOSE`` (``"compare"`` or ``"time"``): before it runs, every framework's process-wide settings
are chosen for that purpose (:func:`comparisons.frameworks.prepare_all`), or for the purpose pinned in
``$CNNREF_FRAMEWORK_PURPOSE`` (the test suite pins ``compare``, since it runs every command in one process).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
from pathlib import Path

SUBCOMMANDS = {
    "verify": ("comparisons.verify", "compare every reference layer with every framework"),
    "bench": ("comparisons.bench.command", "speed report: loop vs im2col vs every framework"),
    "train": ("comparisons.training", "train the tutorial's CNN on MNIST"),
    "audit": ("comparisons.audit.command", "probe where the frameworks' conventions differ"),
    "report": ("comparisons.report", "the full report: gradient checks, verify, audit, quick speed report"),
    "check": ("comparisons.check.command", "check your own layer: the case matrix of one layer kind through it"),
    "port": ("comparisons.port.command", "port a saved model between PyTorch and Keras"),
    "diff": ("comparisons.port.diff_command", "a PyTorch and a Keras model layer by layer: where they first differ"),
}


DESCRIPTION = ("Reference numpy CNN layers checked against PyTorch and Keras: verification tables, "
               "speed reports, the porting audit and MNIST training.")
OUTPUT_FOLDERS = ("out",)  # argument names that are folders the command writes into
OUTPUT_FILES = ("json", "markdown")  # argument names that are files the command writes
TRACEBACK_VAR = "CNNREF_TRACEBACK"  # set to 1 to see the traceback behind a one-line error
PURPOSE_VAR = "CNNREF_FRAMEWORK_PURPOSE"  # pins the frameworks' settings for every command (see the docstring)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; the subcommand named ``command`` gets its full arguments."""
    parser = argparse.ArgumentParser(prog="cnnref", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(module).add_arguments(p)
    return parser


def _probe_folder(folder: Path) -> str | None:
    """Create and remove a temporary file in the existing ``folder``: None when that works, else why not.
    (A real attempt: ``os.access`` says yes to root even on a read-only file system, /proc or /sys.)"""
    try:
        handle, name = tempfile.mkstemp(dir=folder, prefix=".cnnref-write-check-")
    except OSError as exc:
        return f"creating a file in {folder}: {exc.strerror or exc}"
    os.close(handle)
    os.unlink(name)
    return None


def _probe_file(path: Path) -> str | None:
    """Open the existing regular file ``path`` for appending, writing nothing: None when that works, else why
    not. Other kinds of file (``/dev/null``, a pipe) are not opened: a pipe would wait for a reader."""
    if not path.is_file():
        return None
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
    except OSError as exc:
        return f"opening {path} for writing: {exc.strerror or exc}"
    return None


def writable_problem(name: str, value: str | os.PathLike, folder: bool) -> str | None:
    """What stops the command writing its output ``--name value`` (a folder it writes files into when
    ``folder``, else a file), or None. Probes for real: opens an existing file for appending, and creates a
    temporary file in the folder that will hold the output (or, when that folder does not exist yet, in its
    nearest existing ancestor). Leaves nothing behind: folders are created when written, not here."""
    path = Path(value)
    if folder and path.exists() and not path.is_dir():
        return f"--{name}: {path} is a file, expected a folder"
    if not folder and path.is_dir():
        return f"--{name}: {path} is a folder, expected a file path"
    parent = path if folder else path.parent
    existing = next((p for p in (parent, *parent.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        return f"--{name}: {existing} is a file, not a folder"
    reason = (None if folder else _probe_file(path)) or _probe_folder(existing)
    return None if reason is None else f"--{name} {value}: cannot write there ({reason})"


def output_problem(args: argparse.Namespace) -> str | None:
    """Check every output location of ``args`` (:data:`OUTPUT_FOLDERS`, :data:`OUTPUT_FILES`) before any work
    starts, so a bad path fails at once, not after a long run; returns what is wrong, or None."""
    for name in (*OUTPUT_FOLDERS, *OUTPUT_FILES):
        value = getattr(args, name, None)
        problem = None if value is None else writable_problem(name, value, name in OUTPUT_FOLDERS)
        if problem:
            return problem
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
    module = importlib.import_module(SUBCOMMANDS[args.command][0])
    purpose = os.environ.get(PURPOSE_VAR) or getattr(module, "PURPOSE", None)
    if purpose:
        from comparisons import frameworks

        frameworks.prepare_all(purpose)
    try:
        return module.run(args)
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
