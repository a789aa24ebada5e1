"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, capsys):
    code = BLOCKS[index]
    for framework in ("torch", "keras"):
        if re.search(rf"^import {framework}\b", code, flags=re.M):
            pytest.importorskip(framework, reason=f"the README example needs {framework}")
    exec(compile(code, f"README.md example {index}", "exec"), {"__name__": "readme_example"})
    printed = capsys.readouterr().out
    for line in printed.splitlines():  # an example that prints an error prints it small
        for value in re.findall(r"\d\.\d+e-\d+", line):
            assert float(value) < 1e-10, line
