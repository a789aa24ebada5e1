"""One configuration through the target, the reference and the frameworks: records and an outcome.

The reference run is :func:`comparisons.harness.run_reference` (the case's seeded input, parameters and
``dout``); each framework's is its ``Framework.run`` on the same values. The target's forward, ``dx`` and every
parameter gradient are compared with each party's by :func:`comparisons.harness.errors`, against
:func:`comparisons.harness.tolerance` (the errors are relative to the magnitude of the terms behind each value:
see :mod:`comparisons.harness`). One :class:`~comparisons.harness.Record` per party and quantity; its ``impl``
is the target's style, its ``framework`` the party (``"reference"`` or a framework name).
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field, replace

import numpy as np

from .. import harness
from ..cases import build_reference
from ..frameworks.protocol import RunInputs
from ..harness import Record, ReferenceRun
from .matrix import Config
from .styles import NotCovered

REFERENCE = "reference"
PASSED, FAILED, NOT_COVERED = "passed", "failed", "not covered"


@dataclass
class Outcome:
    """What became of one configuration: ``status`` (passed / failed / not covered), the records, ``message``
    (why not covered, or the exception a failing call raised: its traceback's last line), ``problems`` (a
    quantity missing or shaped wrong), ``notes`` (a framework that could not run it, and why), and the target's
    own results (``"forward"``, ``"dx"``, ``"0.weight"``)."""

    config: Config
    status: str
    records: list[Record] = field(default_factory=list)
    message: str = ""
    problems: list[str] = field(default_factory=list)
    results: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # parties that could not run the configuration, and why

    def failed_quantities(self) -> list[str]:
        """The quantities that failed (``"error"`` for a call that raised), in record order."""
        if self.status == FAILED and self.message:
            return ["error"]
        return list(dict.fromkeys(r.quantity for r in self.records if r.passed is False))


def impl_for(config: Config) -> str | None:
    """The reference implementation the check compares against: im2col, or None for a layer that has one."""
    return "im2col" if config.case.spatial else None


def reference_run(config: Config, dtype: str) -> ReferenceRun:
    """The reference's run of ``config``: :func:`harness.run_reference`, or on tied inputs the same parameters
    and ``dout`` with the input drawn from {0, 1} (magnitudes left to the values themselves)."""
    case, impl = config.case, impl_for(config)
    run = harness.run_reference(case, impl, dtype)
    if not config.ties:
        return run
    x = np.random.default_rng(20_000 + case.seed).integers(0, 2, case.input_shape).astype(dtype)
    model = build_reference(case, impl, np.dtype(dtype))
    for key, value in run.params.items():
        model.params[key] = value
    out = model.forward(x)
    results = {"forward": out[0] if isinstance(out, tuple) else out}
    if isinstance(out, tuple):
        results["0.indices"] = out[1]
    results["dx"] = model.backward(run.dout)
    results.update({key: model.grads[key] for key in model.params})
    return replace(run, x=x, results=results, magnitudes={})


def last_line(exc: BaseException) -> str:
    """The last line of ``exc``'s traceback: ``"ValueError: operands could not be broadcast ..."``."""
    return traceback.format_exception_only(type(exc), exc)[-1].strip()


def run_target(style, family: str, config: Config, run: ReferenceRun) -> dict:
    """The target's results for ``config`` on the reference run's values: ``{"forward", "dx", "0.<param>", ...}``.
    Raises NotCovered (its build, or a NotImplementedError from a call), or whatever the target raises."""
    subject = style.build(family, config.kwargs)
    if config.case.eval_mode:
        train = getattr(getattr(subject, "obj", None), "train", None)
        if train is None:
            raise NotCovered("an evaluation-mode configuration, and the target has no train(mode) method")
        train(False)
    subject.params = {key.split(".", 1)[1]: np.array(value) for key, value in run.params.items()}
    try:
        out = subject.forward(np.array(run.x))
        results = {}
        if isinstance(out, tuple):
            out, results["0.indices"] = out
        results["forward"] = out
        results["dx"] = subject.backward(np.array(run.dout))
    except NotImplementedError as exc:
        raise NotCovered(f"{last_line(exc)}") from exc
    for key in run.params:
        name = key.split(".", 1)[1]
        if name in subject.grads:
            results[key] = subject.grads[name]
    return results


def _batched(a, config: Config):
    return a[np.newaxis] if a is not None and config.case.single and a.ndim in (1, 3) else a


def party_results(framework, config: Config, run: ReferenceRun, dtype: str) -> tuple[dict | None, str | None]:
    """``framework``'s results on the reference run's values, or ``(None, why it cannot run the case)``."""
    case = config.case
    reason = harness.skip_reason(framework, case, dtype)
    if reason is None and framework.reference_case(case) != case:
        reason = f"{framework.name} compares this case under another convention"
    if reason:
        return None, reason
    try:
        out = framework.run(case, RunInputs(run.params, _batched(run.x, config), dtype, _batched(run.dout, config),
                                            buffers=run.buffers))
    except harness.FrameworkCrashed as exc:
        return None, f"{framework.name} failed: {exc}"
    return out, None


def compare_results(config: Config, theirs: dict, expected: dict, run: ReferenceRun, dtype: str, style: str,
                    party: str, version: str, gradients: bool = True) -> tuple[list[Record], list[str]]:
    """Records of the target's results ``theirs`` against a party's ``expected`` (the reference's keys)."""
    tol = harness.tolerance(dtype, run.reduction_length)
    config_text = f"{config.id}: {config.describe}"
    records, problems = [], []
    for key in run.results:
        if key in run.buffers or key not in expected:
            continue
        quantity = harness.quantity_name(key, config.case)
        if not gradients and key != "forward" and not key.endswith("indices"):
            records.append(Record(config.case.layer, config_text, style, party, version, dtype, quantity, None,
                                  None, tol, None, False))
            continue
        ref_value, value = np.asarray(expected[key]), theirs.get(key)
        if config.case.single and ref_value.shape[:1] == (1,) and ref_value.shape[1:] == np.shape(value):
            ref_value = ref_value[0]
        if value is None:
            problems.append(f"{quantity}: the target gave none")
            abs_err = rel_err = float("inf")
        elif np.shape(value) != ref_value.shape:
            problems.append(f"{quantity}: shape {np.shape(value)}, expected {ref_value.shape}")
            abs_err = rel_err = float("inf")
        else:
            abs_err, rel_err = harness.errors(np.asarray(value, dtype=np.float64), ref_value,
                                              run.magnitudes.get(key, 0.0))
        records.append(Record(config.case.layer, config_text, style, party, version, dtype, quantity, abs_err,
                              rel_err, tol, bool(rel_err <= tol)))
    return records, problems


def run_config(style, family: str, config: Config, dtype: str, parties=()) -> Outcome:
    """``config`` through the target (``style``), compared with the reference and each framework in ``parties``
    (loaded :class:`~comparisons.frameworks.protocol.Framework` records)."""
    run = reference_run(config, dtype)
    try:
        theirs = run_target(style, family, config, run)
    except NotCovered as exc:
        return Outcome(config, NOT_COVERED, message=str(exc))
    except Exception as exc:  # the target's own error: a failure, reported by its last line
        return Outcome(config, FAILED, message=last_line(exc))
    records, problems = compare_results(config, theirs, run.results, run, dtype, style.name, REFERENCE, "")
    notes = []
    for framework in parties:
        expected, reason = party_results(framework, config, run, dtype)
        if expected is None:
            notes.append(f"not compared with {framework.name}: {reason}")
            continue
        more, _ = compare_results(config, theirs, expected, run, dtype, style.name, framework.name,
                                  framework.version, framework.gradients)
        records += more
    status = PASSED if all(r.passed is not False for r in records) else FAILED
    return Outcome(config, status, records, problems=problems, results=theirs, notes=notes)
