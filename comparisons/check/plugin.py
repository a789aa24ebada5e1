"""A pytest plugin: your test suite runs the conformance matrix on your layer with one flag.

    pytest -p comparisons.check.plugin --cnnref-check my_layers.py:Conv --cnnref-kind Conv2d

(the plugin is also registered as the ``pytest11`` entry point ``cnnref-check``, so ``-p`` is only needed
where the package is not installed). Options: ``--cnnref-check TARGET``, ``--cnnref-kind KIND``,
``--cnnref-functions FWD,BWD`` (instead of TARGET), ``--cnnref-tutorial``, ``--cnnref-param KEY=ATTR`` /
``--cnnref-grad KEY=ATTR``, ``--cnnref-framework NAME`` (repeatable; default: the reference only),
``--cnnref-dtype``, ``--cnnref-max-cases N``. Each configuration is one test item (``cnnref-check[<config id>]``):
passed, failed with its records (and, for the first failure of each quantity, the smallest failing
configuration, the hints and a reproducer), or skipped when your layer does not cover it; one more item
fails when it covers nothing or not the family's default configuration.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser) -> None:
    group = parser.getgroup("cnnref-check", "conformance of your layer to the cnnref reference")
    group.addoption("--cnnref-check", metavar="TARGET", help="your layer: module.path:NAME or path/to/file.py:NAME")
    group.addoption("--cnnref-kind", metavar="KIND", help="the reference class it implements (Conv2d, MaxPool2d, ...)")
    group.addoption("--cnnref-functions", metavar="FWD,BWD", help="CS231n function pair instead of TARGET")
    group.addoption("--cnnref-tutorial", action="store_true", help="TARGET is one of the tutorial's classes")
    group.addoption("--cnnref-param", action="append", metavar="KEY=ATTR", help="attribute style: weight=W")
    group.addoption("--cnnref-grad", action="append", metavar="KEY=ATTR", help="attribute style: weight=dW")
    group.addoption("--cnnref-framework", action="append", metavar="NAME",
                    help="also compare with this framework (repeatable; default: the reference only)")
    group.addoption("--cnnref-dtype", default="float64", choices=("float64", "float32"))
    group.addoption("--cnnref-max-cases", type=int, metavar="N", help="at most N configurations")


def _options(config) -> dict | None:
    """The check's options from the command line, or None when the plugin is not asked for."""
    target, functions = config.getoption("cnnref_check"), config.getoption("cnnref_functions")
    if not target and not functions:
        return None
    kind = config.getoption("cnnref_kind")
    if not kind:
        raise pytest.UsageError("--cnnref-check/--cnnref-functions need --cnnref-kind KIND (e.g. Conv2d)")
    from .styles import parse_mapping

    try:
        return {"target": target, "kind": kind, "functions": functions,
                "tutorial": config.getoption("cnnref_tutorial"),
                "params": parse_mapping(config.getoption("cnnref_param"), "--cnnref-param"),
                "grads": parse_mapping(config.getoption("cnnref_grad"), "--cnnref-grad"),
                "frameworks": ("reference", *(config.getoption("cnnref_framework") or ())),
                "dtype": config.getoption("cnnref_dtype"), "max_cases": config.getoption("cnnref_max_cases")}
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from exc


class CheckSession:
    """The check's shared state in one pytest session: the style, the parties, the configurations."""

    def __init__(self, options: dict) -> None:
        from . import matrix
        from .conformance import load_parties, make_style

        self.options = options
        try:
            self.style = make_style(options["target"], params=options["params"], grads=options["grads"],
                                    functions=options["functions"], tutorial=options["tutorial"])
            self.configs = matrix.configurations(options["kind"], options["max_cases"])
        except ValueError as exc:
            raise pytest.UsageError(f"cnnref check: {exc}") from exc
        self.parties, self.skipped = load_parties(options["frameworks"])
        self.outcomes: dict[str, object] = {}
        self.explained: set[str] = set()


class ConfigItem(pytest.Item):
    """One configuration of the matrix through the target."""

    def __init__(self, *, check: CheckSession, configuration, **kwargs) -> None:
        super().__init__(**kwargs)
        self.check, self.config_ = check, configuration

    def runtest(self) -> None:
        from .run import FAILED, NOT_COVERED, run_config

        c = self.check
        outcome = run_config(c.style, c.options["kind"], self.config_, c.options["dtype"], c.parties)
        c.outcomes[self.config_.id] = outcome
        if outcome.status == NOT_COVERED:
            pytest.skip(f"not covered: {outcome.message}")
        if outcome.status == FAILED:
            raise AssertionError(self._explain(outcome))

    def _explain(self, outcome) -> str:
        from .conformance import _failures
        from .report import Report

        c = self.check
        report = Report(c.options["kind"], "", c.style.name, c.options["dtype"], [], [outcome])
        lines = [f"{self.config_.id}: {self.config_.describe}", *report.config_lines(), *outcome.problems]
        new = [q for q in outcome.failed_quantities() if q not in c.explained]
        if new:  # the first failure of each quantity: shrink, hint, reproduce
            c.explained.update(new)
            for failure in _failures(c.style, c.options["kind"], [outcome], c.options["dtype"], True):
                lines += ["", *failure.lines()]
        return "\n".join(lines)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, AssertionError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, self.name


class CoverageItem(pytest.Item):
    """Fails when the target covered no configuration, or not the family's default one."""

    def __init__(self, *, check: CheckSession, **kwargs) -> None:
        super().__init__(**kwargs)
        self.check = check

    def runtest(self) -> None:
        from . import matrix
        from .run import NOT_COVERED

        c = self.check
        ran = list(c.outcomes.values())
        if ran and all(o.status == NOT_COVERED for o in ran):
            raise AssertionError(f"the target covers none of the {len(ran)} {c.options['kind']} configurations")
        default = matrix.default_config(c.configs)
        outcome = c.outcomes.get(default.id) if default else None
        if outcome is not None and outcome.status == NOT_COVERED:
            raise AssertionError(f"the target does not cover {c.options['kind']}'s default configuration "
                                 f"{default.describe} ({outcome.message})")

    def repr_failure(self, excinfo):
        return str(excinfo.value) if isinstance(excinfo.value, AssertionError) else super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, self.name


def pytest_collection_modifyitems(session, config, items) -> None:
    options = _options(config)
    if options is None:
        return
    check = CheckSession(options)
    kind = options["kind"]
    for c in check.configs:
        items.append(ConfigItem.from_parent(session, name=f"cnnref-check[{kind}-{c.id}]", check=check, configuration=c))
    items.append(CoverageItem.from_parent(session, name=f"cnnref-check[{kind}-coverage]", check=check))
