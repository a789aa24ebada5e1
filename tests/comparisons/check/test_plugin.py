"""The pytest plugin: one item per configuration, skipped when not covered, failing with the report."""

import subprocess
import sys
from pathlib import Path

from tests.comparisons.check.helpers import F

ROOT = Path(__file__).parents[3]


def _pytest(tmp_path, *args):
    test = tmp_path / "test_nothing.py"
    test.write_text("def test_nothing():\n    pass\n")
    cmd = [sys.executable, "-m", "pytest", "-p", "comparisons.check.plugin", "-q", "-p", "no:cacheprovider",
           "--rootdir", str(tmp_path), "-c", str(tmp_path / "none.ini"), str(test), *args]
    (tmp_path / "none.ini").write_text("[pytest]\n")
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)


def test_plugin_runs_the_matrix(tmp_path):
    done = _pytest(tmp_path, "--cnnref-check", F + "class_layers:MaxPool2d", "--cnnref-kind", "MaxPool2d",
                   "--cnnref-max-cases", "6")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "passed" in done.stdout.splitlines()[-1]


def test_plugin_fails_with_the_report(tmp_path):
    done = _pytest(tmp_path, "--cnnref-check", F + "buggy:ConvFlipped", "--cnnref-kind", "Conv2d",
                   "--cnnref-max-cases", "3")
    assert done.returncode == 1
    assert "hint: flipped kernel" in done.stdout and "smallest failing" in done.stdout


def test_plugin_needs_a_kind(tmp_path):
    done = _pytest(tmp_path, "--cnnref-check", F + "class_layers:ReLU")
    assert done.returncode != 0 and "--cnnref-kind" in done.stderr
