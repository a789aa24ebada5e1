"""Run a probe side in a fresh Python process, so that a framework crash ends that process, not the audit.

Some framework calls die with a signal (a floating-point exception in a kernel, a read past an
array): :func:`run_isolated` runs a generator function of this package in a child interpreter.
Each dict it yields is printed as one JSON line as soon as it is ready, so the evidence gathered
before a crash survives it; the crash itself is reported as ``crashed`` (the signal's name) and
``crashed_before`` (the step that was running, named by the generator's ``next_step`` key).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator

from comparisons.frameworks import FrameworkUnavailable

from .base import Evidence, jsonable

TIMEOUT_S = 300
_CHILD = """
import json, sys
from importlib import import_module
from comparisons.frameworks import FrameworkUnavailable
fn = getattr(import_module(sys.argv[1]), sys.argv[2])
try:
    for step in fn():
        print(json.dumps(step), flush=True)
except FrameworkUnavailable as exc:
    print(json.dumps({"skipped": str(exc)}), flush=True)
"""


def run_isolated(fn: Callable[[], Iterator[Evidence]]) -> Evidence:
    """Merge the dicts ``fn`` (a module-level generator function) yields in a child process.

    ``next_step`` keys name what the child does next; if it dies, that name is kept as
    ``crashed_before``. A side that reports ``skipped`` raises FrameworkUnavailable here.
    """
    proc = subprocess.run([sys.executable, "-c", _CHILD, fn.__module__, fn.__qualname__], capture_output=True,
                          text=True, timeout=TIMEOUT_S, check=False)
    evidence: Evidence = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            evidence.update(json.loads(line))
    if "skipped" in evidence:
        raise FrameworkUnavailable(evidence["skipped"])
    step = evidence.pop("next_step", None)
    if proc.returncode < 0:
        evidence.update(crashed=signal.Signals(-proc.returncode).name, crashed_before=step)
    elif proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no message"]
        evidence.update(crashed=f"exit status {proc.returncode}: {tail[0]}", crashed_before=step)
    return evidence


def step(name: str, **evidence) -> Evidence:
    """One line of a child's evidence, announcing the step that comes next (``name``)."""
    return {**jsonable(evidence), "next_step": name}
