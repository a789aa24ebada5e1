"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.frameworks import import_or_skip

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, capsys):
    code = BLOCKS[index]
    for framework in ("torch", "keras"):
        if re.search(rf"^import {framework}\b", code, flags=re.M):
            import_or_skip(framework)
    exec(compile(code, f"README.md example {index}", "exec"), {"__name__": "readme_example"})
    printed = capsys.readouterr().out.splitlines()
    # an example that prints prints "<framework> <relative error>", one line per print() in its code
    assert len(printed) == len(re.findall(r"^print\(", code, flags=re.M)), printed
    for line in printed:
        name, value = line.split()
        assert name in ("torch", "keras") and 0 <= float(value) < 1e-10, line  # float64 ports: rounding only
