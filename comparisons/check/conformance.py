"""``check_layer``: the whole matrix of a layer family through your layer; ``assert_layer_conforms`` for tests.

    from comparisons.check import check_layer
    report = check_layer("my_layers.py:Conv", "Conv2d")          # or the class itself
    print(report.text())                                         # report.passed, report.failures

Styles (:mod:`comparisons.check.styles`): the class protocol (default), attributes (``params={"weight": "W"},
grads={"weight": "dW"}``), CS231n functions (``functions="m:conv_forward_naive,m:conv_backward_naive"``, no
target) and the tutorial's classes (``tutorial=True``).
"""

from __future__ import annotations

import numpy as np

from .. import frameworks as registry
from . import matrix, pitfalls, shrink
from .cs231n import FunctionsStyle
from .report import Failure, Report, quantity_order, reproducer
from .run import FAILED, REFERENCE, Outcome, reference_run, run_config
from .styles import AttributeStyle, ClassStyle
from .targets import TargetError, describe, load
from .tutorial import TutorialStyle

DTYPES = ("float64", "float32")
DEFAULT_PARTIES = (REFERENCE, "torch")


def make_style(target=None, *, params=None, grads=None, functions=None, tutorial=False):
    """The style object for a target and its options; TargetError (a ValueError) for a bad combination."""
    if functions:
        if target is not None:
            raise TargetError("TARGET: give no TARGET with --functions (the functions are the target)")
        return FunctionsStyle(functions)
    if target is None:
        raise TargetError("TARGET: expected 'module.path:NAME' or 'path/to/file.py:NAME', got nothing")
    spec = target if isinstance(target, str) else None
    obj = load(target)
    if not callable(obj):
        raise TargetError(f"TARGET: {target!r} must be a class or a factory, got {type(obj).__name__}")
    if tutorial:
        if params or grads:
            raise TargetError("--tutorial takes no --param/--grad (the tutorial's attribute names are known)")
        return TutorialStyle(obj, spec)
    if params or grads:
        return AttributeStyle(obj, dict(params or {}), dict(grads or {}), spec)
    return ClassStyle(obj, spec)


def load_parties(names) -> tuple[list, dict[str, str]]:
    """The frameworks among ``names`` (``"reference"`` is always compared), and ``{name: why}`` for those that
    cannot be loaded here."""
    loaded, skipped = [], {}
    for name in dict.fromkeys(names):
        if name == REFERENCE:
            continue
        try:
            loaded.append(registry.load(name))
        except registry.FrameworkUnavailable as exc:
            skipped[name] = str(exc)
    return loaded, skipped


def _fails(style, family: str, quantity: str, dtype: str):
    """``still_fails(config)`` for shrinking: the target covers ``config`` and ``quantity`` fails against the
    reference there (``"error"``: a call raises)."""
    def still_fails(config) -> bool:
        try:
            reference_run(config, dtype)
        except (ValueError, TypeError):  # the reference refuses the configuration: not a candidate
            return False
        outcome = run_config(style, family, config, dtype)
        return outcome.status == FAILED and quantity in outcome.failed_quantities()
    return still_fails


class _SubjectForGradcheck:
    """A built target with the protocol :func:`reference.gradcheck.gradient_errors` drives."""

    def __init__(self, subject) -> None:
        self.subject, self.params = subject, subject.params

    @property
    def grads(self):
        return self.subject.grads

    def forward(self, x):
        out = self.subject.forward(x)
        return out[0] if isinstance(out, tuple) else out

    def backward(self, dout):
        return self.subject.backward(dout)


def selfcheck(style, family: str, config: matrix.Config) -> dict[str, float] | None:
    """The target's backward against directional central differences of its own forward, in float64 (None for
    tied inputs, where max pooling has no derivative, or when the target cannot run it)."""
    from reference.gradcheck import gradient_errors

    if config.ties:
        return None
    try:
        run = reference_run(config, "float64")
        subject = style.build(family, config.kwargs)
        subject.params = {k.split(".", 1)[1]: np.array(v) for k, v in run.params.items()}
        return gradient_errors(_SubjectForGradcheck(subject), np.array(run.x), run.dout, mode="directional")
    except Exception:  # the target raises: the failure says so already
        return None


def _failures(style, family: str, outcomes: list[Outcome], dtype: str, shrinking: bool) -> list[Failure]:
    failing = [o for o in outcomes if o.status == FAILED]
    by_quantity: dict[str, list[Outcome]] = {}
    for o in failing:
        for q in o.failed_quantities():
            by_quantity.setdefault(q, []).append(o)
    failures, shrunk_cache = [], {}
    for quantity in quantity_order(by_quantity):
        group = by_quantity[quantity]
        start = shrink.smallest([o.config for o in group])
        still_fails = _fails(style, family, quantity, dtype)
        smallest = start
        if shrinking:
            reused = [c for c in shrunk_cache.values() if still_fails(c)]
            smallest = shrink.shrink(reused[0] if reused else start, still_fails)
            shrunk_cache[quantity] = smallest
        at_smallest = run_config(style, family, smallest, dtype)
        record = next((r for r in at_smallest.records if r.quantity == quantity and r.passed is False), None)
        observed = [(o.config, o.results) for o in (group[0], at_smallest) if o.results]
        key = {"forward": "forward", "dx": "dx", "indices": "0.indices"}.get(quantity, f"0.{quantity}")
        failures.append(Failure(
            quantity, len(group), group[0].config, smallest,
            error=record.max_rel_err if record else None, tol=record.tol if record else None,
            message=at_smallest.message or group[0].message,
            hints=pitfalls.hints(family, key, observed, dtype) if quantity != "error" else [],
            selfcheck=selfcheck(style, family, smallest) if quantity != "error" else None,
            reproducer=reproducer(style, family, smallest, quantity, dtype)))
    return failures


def check_layer(target=None, kind: str = "Conv2d", *, params=None, grads=None, functions=None, tutorial=False,
                frameworks=DEFAULT_PARTIES, dtype: str = "float64", max_cases: int | None = None,
                shrinking: bool = True, progress=None) -> Report:
    """Run every configuration of ``kind`` (a reference class name: ``"Conv2d"``, ``"MaxPool2d"``, ...) through
    ``target`` (a class or factory, or its ``"module:NAME"`` / ``"file.py:NAME"`` string) in its style, and compare
    forward, ``dx`` and every parameter gradient with the reference and each of ``frameworks``.

    ``progress``: wraps the configurations' iterable (e.g. ``tqdm``). Returns a :class:`Report`. ValueError
    (TargetError) for a bad target, kind or option.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    configs = matrix.configurations(kind, max_cases)
    style = make_style(target, params=params, grads=grads, functions=functions, tutorial=tutorial)
    parties, skipped = load_parties(frameworks)
    iterable = progress(configs) if progress else configs
    outcomes = [run_config(style, kind, c, dtype, parties) for c in iterable]
    name = style.spec if getattr(style, "spec", None) else describe(getattr(style, "target", target))
    report = Report(kind, str(name), style.name, dtype, [REFERENCE, *(p.name for p in parties)], outcomes,
                    skipped=skipped)
    report.failures = _failures(style, kind, outcomes, dtype, shrinking)
    covered = [o for o in outcomes if o.status != "not covered"]
    default = matrix.default_config(configs)
    if not covered:
        reasons = report.not_covered_lines()[:3]
        report.problems.append(f"the target covers none of the {len(configs)} {kind} configurations ("
                               + "; ".join(reasons) + ")")
    elif default is not None and outcomes[configs.index(default)].status == "not covered":
        report.problems.append(f"the target does not cover {kind}'s default configuration {default.describe} "
                               f"({outcomes[configs.index(default)].message})")
    return report


def assert_layer_conforms(target=None, kind: str = "Conv2d", **options) -> Report:
    """:func:`check_layer`, raising AssertionError with the report's text when it does not pass."""
    report = check_layer(target, kind, **options)
    if not report.passed:
        raise AssertionError("\n" + report.text())
    return report


