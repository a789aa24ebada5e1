"""The report of a check: per configuration and quantity the error and verdict, a summary line, and for each
failing quantity the smallest failing configuration, a reproducer and the hints of known pitfalls.

Text (:meth:`Report.text`), Markdown (:meth:`Report.markdown`) and JSON (:meth:`Report.to_dict`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .matrix import Config
from .pitfalls import Pitfall
from .run import FAILED, NOT_COVERED, PASSED, REFERENCE, Outcome

ORDER = ("error", "forward", "indices", "dx")  # quantities in this order, parameters after


@dataclass
class Failure:
    """One failing quantity: how many configurations it failed in, the first (in matrix order) and the smallest
    found by shrinking, its error there, the exception (``quantity == "error"``), hints, the target's own
    gradient check at the smallest configuration (``{"x": err, "weight": err}``, directional central
    differences of its forward: None where it could not run), and a reproducer."""

    quantity: str
    count: int
    first: Config
    smallest: Config
    error: float | None = None
    tol: float | None = None
    message: str = ""
    hints: list[Pitfall] = field(default_factory=list)
    selfcheck: dict[str, float] | None = None
    reproducer: str = ""

    def lines(self) -> list[str]:
        what = "raised" if self.quantity == "error" else f"{self.quantity} differs"
        head = f"FAIL {what} in {self.count} configuration(s)"
        if self.error is not None:
            head += f"; smallest: error {self.error:.2e} > tol {self.tol:.1e}"
        out = [head, f"  first failing:    {self.first.id}: {self.first.describe}",
               f"  smallest failing: {self.smallest.describe}"]
        if self.message:
            out.append(f"  raised: {self.message}")
        for pitfall in self.hints:
            out.append(f"  hint: {pitfall.hint}")
        if self.selfcheck is not None:
            bad = {k: v for k, v in self.selfcheck.items() if not v <= SELFCHECK_TOL}
            errs = ", ".join(f"{k} {v:.1e}" for k, v in self.selfcheck.items())
            if bad:
                out.append(f"  your backward is not the derivative of your own forward there (directional "
                           f"central differences: {errs}; tol {SELFCHECK_TOL:.0e}): look at backward")
            elif self.quantity in ("forward", "error"):
                out.append(f"  your backward matches your own forward's derivative ({errs}): look at forward")
            else:
                out.append(f"  your backward is the derivative of your own forward ({errs}), so your forward "
                           f"differs from the reference where {self.quantity} depends on it; look at both")
        out.append("  reproduce:")
        out += ["    " + line for line in self.reproducer.splitlines()]
        return out

    def to_dict(self) -> dict:
        return {"quantity": self.quantity, "configurations": self.count, "first": self.first.id,
                "smallest": self.smallest.describe, "error": self.error, "tol": self.tol, "message": self.message,
                "hints": [p.name for p in self.hints], "selfcheck": self.selfcheck, "reproducer": self.reproducer}


SELFCHECK_TOL = 1e-6  # directional central differences of a float64 layer: ~1e-10 when right, ~1 when wrong


@dataclass
class Report:
    """A check's result: ``outcomes`` (one per configuration), ``failures`` (one per failing quantity),
    ``problems`` (the run as a whole: nothing covered, the default configuration not covered), ``skipped``
    (parties that could not be loaded, and why)."""

    kind: str
    target: str
    style: str
    dtype: str
    parties: list[str]
    outcomes: list[Outcome]
    failures: list[Failure] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def records(self):
        return [r for o in self.outcomes for r in o.records]

    @property
    def passed(self) -> bool:
        return not self.problems and not any(o.status == FAILED for o in self.outcomes)

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    def summary(self) -> str:
        tried, missing = len(self.outcomes), self.count(NOT_COVERED)
        verdict = "PASS" if self.passed else "FAIL"
        return (f"{verdict} {self.kind} ({self.target}, {self.style} style, {self.dtype}, against "
                f"{', '.join(self.parties)}): {tried} configurations tried, {tried - missing} covered, "
                f"{self.count(PASSED)} passed, {self.count(FAILED)} failed, {missing} not covered")

    def config_lines(self) -> list[str]:
        """One line per covered configuration: verdict, id, each quantity's error against the reference and the
        worst against the frameworks, the tolerance."""
        lines = []
        for o in self.outcomes:
            if o.status == NOT_COVERED:
                continue
            verdict = "PASS" if o.status == PASSED else "FAIL"
            if o.message:
                lines.append(f"{verdict} {o.config.id}: raised {o.message}")
                continue
            mine = [r for r in o.records if r.framework == REFERENCE]
            parts = [f"{r.quantity} {_err(r.max_rel_err)}{'' if r.passed else '!'}" for r in mine]
            others = [r for r in o.records if r.framework != REFERENCE and r.applicable]
            for party in dict.fromkeys(r.framework for r in others):
                worst = max((r.max_rel_err for r in others if r.framework == party), default=0.0)
                ok = all(r.passed for r in others if r.framework == party)
                parts.append(f"vs {party} {_err(worst)}{'' if ok else '!'}")
            tol = mine[0].tol if mine else 0.0
            extra = "; " + "; ".join(o.problems) if o.problems else ""
            lines.append(f"{verdict} {o.config.id}: {', '.join(parts)} (tol {tol:.1e}){extra}")
        return lines

    def not_covered_lines(self, shown: int | None = None) -> list[str]:
        """``not covered (count): reason``, the commonest first (the first ``shown`` reasons, when given)."""
        reasons = Counter(o.message for o in self.outcomes if o.status == NOT_COVERED).most_common()
        lines = [f"not covered ({n}): {reason}" for reason, n in reasons[:shown]]
        rest = reasons[len(lines):]
        if rest:
            lines.append(f"not covered ({sum(n for _, n in rest)}): {len(rest)} other reasons (--verbose for all)")
        return lines

    def text(self, verbose: bool = False, shown: int = 10) -> str:
        """The whole report: configurations (all when ``verbose``, else the first ``shown`` failing ones), what was
        not covered, the failures with their smallest configuration, hints and reproducer, the summary line last."""
        lines = self.config_lines()
        if not verbose:
            failing = [line for line in lines if line.startswith("FAIL")]
            lines = failing[:shown] + ([f"... and {len(failing) - shown} more failing configurations (all of them: "
                                        f"--verbose, or the JSON report)"] if len(failing) > shown else [])
        lines += self.not_covered_lines(None if verbose else 4)
        lines += [f"not compared with {party}: {why}" for party, why in self.skipped.items()]
        notes = Counter(n for o in self.outcomes for n in o.notes)
        lines += [f"{note} ({n} configuration(s))" for note, n in notes.most_common()]
        for failure in self.failures:
            lines += ["", *failure.lines()]
        lines += ["", *(f"FAIL {p}" for p in self.problems), self.summary()]
        return "\n".join(lines)

    def markdown(self) -> str:
        """A Markdown table of every record, then the failures."""
        head = "| configuration | against | quantity | max rel err | tol | result |\n|---|---|---|---|---|---|"
        rows = [f"| {r.config.split(':')[0]} | {r.framework} | {r.quantity} | {_err(r.max_rel_err)} | {r.tol:.1e} | "
                f"{'n/a' if r.passed is None else 'PASS' if r.passed else 'FAIL'} |" for r in self.records]
        failures = [f"### {f.quantity}\n\n```\n" + "\n".join(f.lines()) + "\n```" for f in self.failures]
        return "\n\n".join([f"# cnnref check: {self.kind}", self.summary(), "\n".join([head, *rows]),
                            *self.not_covered_lines(), *failures, *self.problems])

    def to_dict(self) -> dict:
        return {"kind": self.kind, "target": self.target, "style": self.style, "dtype": self.dtype,
                "parties": self.parties, "passed": self.passed, "summary": self.summary(),
                "problems": self.problems, "skipped": self.skipped,
                "configurations": [{"id": o.config.id, "config": o.config.describe, "status": o.status,
                                    "message": o.message, "problems": o.problems} for o in self.outcomes],
                "records": [r.to_dict() for r in self.records], "failures": [f.to_dict() for f in self.failures]}


def _err(value) -> str:
    return "n/a" if value is None else f"{value:.1e}"


def quantity_order(quantities) -> list[str]:
    """``error``, ``forward``, ``indices``, ``dx``, then the parameters in their order."""
    qs = list(dict.fromkeys(quantities))
    return sorted(qs, key=lambda q: (ORDER.index(q) if q in ORDER else len(ORDER), qs.index(q)))


def reproducer(style, family: str, config: Config, quantity: str, dtype: str) -> str:
    """A few lines of Python showing ``quantity`` of the target next to the reference's on ``config``."""
    key = {"forward": "forward", "dx": "dx", "indices": "0.indices"}.get(quantity, f"0.{quantity}")
    case = config.case
    case_code = (f"Case({case.family!r}, {case.id!r}, (spec({config.kind!r}, **{config.kwargs!r}),), "
                 f"{tuple(case.input_shape)!r}, seed={case.seed}, tags=frozenset({sorted(case.tags)!r}), "
                 f"variant={case.variant!r})")
    lines = ["import numpy as np", "from comparisons.cases import Case, spec",
             "from comparisons.check.matrix import Config", "from comparisons.check.run import reference_run",
             f"run = reference_run(Config({case_code}, ties={config.ties}), {dtype!r})  # the reference's run",
             "x, dout = run.x, run.dout",
             "params = {key.split('.', 1)[1]: value for key, value in run.params.items()}"]
    if style.name == "functions" and case.single:
        lines.append("x, dout = x[np.newaxis], dout[np.newaxis]  # the functions take batches")
    lines += style.reproducer(family, config.kwargs)
    mine = {"forward": "out", "dx": "dx", "indices": "out[1]"}.get(quantity, f"grads[{quantity!r}]")
    if quantity == "error":
        return "\n".join(lines)
    lines += [f"print('reference:', np.round(run.results[{key!r}], 4))", f"print('yours:    ', np.round({mine}, 4))"]
    return "\n".join(lines)
