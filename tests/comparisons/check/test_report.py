"""The report: summary line, per-configuration lines, JSON, Markdown, a reproducer that runs."""

import json
import subprocess
import sys

from comparisons.check import check_layer
from tests.comparisons.check.helpers import REF_ONLY, F


def test_summary_and_serialisations():
    report = check_layer(F + "buggy:ConvBiasSign", "Conv2d", frameworks=REF_ONLY, max_cases=6)
    assert report.summary().startswith("FAIL Conv2d (")
    assert "6 configurations tried" in report.summary()
    text = report.text(verbose=True)
    assert text.count("\nPASS ") + text.count("\nFAIL ") >= 1 and "bias 2" in text
    data = json.loads(json.dumps(report.to_dict()))
    assert data["failures"][0]["hints"] == ["bias-gradient sign"]
    assert "| configuration | against |" in report.markdown()


def test_reproducer_runs_and_shows_the_difference():
    report = check_layer(F + "buggy:ConvBiasSign", "Conv2d", frameworks=REF_ONLY, max_cases=3)
    code = report.failures[0].reproducer
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    reference, yours = (line.split(":", 1)[1].strip() for line in out.splitlines())
    assert float(reference.strip("[]")) == -float(yours.strip("[]"))
