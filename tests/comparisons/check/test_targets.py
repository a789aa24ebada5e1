"""TARGET strings: module paths, files, and the errors naming what was expected and given."""

import pytest

from comparisons.check import targets


def test_module_and_file_targets(tmp_path):
    assert targets.load("tests.comparisons.check.fixtures.class_layers:ReLU").__name__ == "ReLU"
    f = tmp_path / "mine.py"
    f.write_text("class Layer:\n    pass\n")
    assert targets.load(f"{f}:Layer").__name__ == "Layer"
    assert targets.load(targets) is targets  # an object is its own target


@pytest.mark.parametrize("spec, message", [
    ("no_colon", "expected 'module.path:NAME'"), ("mod:1bad", "NAME a Python identifier"),
    ("no_such_module_xyz:Name", "importing module 'no_such_module_xyz' raised ModuleNotFoundError"),
    ("missing/file.py:Name", "does not exist"),
    ("tests.comparisons.check.fixtures.class_layers:Nope", "has no 'Nope'"),
])
def test_bad_targets_name_the_problem(spec, message):
    with pytest.raises(targets.TargetError, match=message):
        targets.load(spec)


def test_a_file_that_raises_on_import(tmp_path):
    f = tmp_path / "broken.py"
    f.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(targets.TargetError, match="raised RuntimeError: boom"):
        targets.load(f"{f}:X")
