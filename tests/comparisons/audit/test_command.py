"""The registry of probes, the runner (audit/__init__.py) and ``cnnref audit`` (audit/command.py)."""

from __future__ import annotations

import json
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest

from comparisons import audit
from comparisons.audit import PROBES, command

TESTED = {
    "conv-same-even-kernel", "conv-same-stride", "conv-same-strided-torch", "conv-output-rounding",
    "layout-conv-kernel", "layout-dense-weight", "layout-flatten-order", "layout-channels-last",
    "maxpool-tie-gradient", "maxpool-padding", "avgpool-padding-divisor", "pool-output-size",
    "loss-cce-probability-clipping", "loss-cce-from-logits", "adam-epsilon", "sgd-momentum", "sgd-weight-decay",
    "batchnorm-momentum-epsilon", "batchnorm-running-variance", "batchnorm-default-mode", "init-conv", "init-dense",
    "relu-grad-at-zero", "float-dtypes", "determinism", "leaky-relu-slope", "maxpool-dilated-window-in-padding",
    "adaptive-maxpool-gradient-keras", "global-maxpool-ties", "cross-entropy-label-smoothing", "dropout-scaling",
    "flax-conv-default-padding", "flax-init-conv", "flax-batchnorm-momentum-epsilon", "flax-batchnorm-running-variance",
    "flax-avgpool-padding", "onnxruntime-graph-optimizations", "onnxruntime-maxpool-ceil-mode",
    "keras-backend-float64", "keras-backend-batchnorm-variance", "keras-tf-onednn-conv",
    "conv-transpose-padding", "conv-transpose-kernel", "resize-nearest", "resize-bilinear", "resize-antialias",
    "batchnorm-frozen", "layernorm-epsilon", "layernorm-axes", "groupnorm-epsilon", "norm-float32-large-mean",
    "gelu-default", "hard-sigmoid", "rmsprop-epsilon", "rmsprop-momentum-lr", "adagrad-accumulator",
    "adam-weight-decay", "adamw-default-decay", "keras-l2-regularizer", "clip-norm-scope", "clip-norm-epsilon",
    "clip-value", "loss-bce-probability-edges",
}


def test_every_probe_has_a_test_and_there_are_enough():
    assert set(PROBES) == TESTED, f"untested: {set(PROBES) - TESTED}, unknown: {TESTED - set(PROBES)}"
    assert len(PROBES) >= 15
    assert {p.area for p in PROBES.values()} == set(audit.AREAS)


@pytest.mark.parametrize("pid", sorted(TESTED))
def test_each_probe_is_tested_beside_its_area(pid):
    """A probe of ``comparisons/audit/<module>.py`` is named in ``test_<module>.py`` of this folder (a probe may
    reuse another module's side functions: one of the modules its sides come from)."""
    sides = [*PROBES[pid].frameworks.values(), PROBES[pid].reference]
    modules = {side.__module__.rsplit(".", 1)[-1] for side in sides if side is not None}
    test_files = [Path(__file__).with_name(f"test_{module}.py") for module in sorted(modules)]
    assert any(f.exists() and f'"{pid}"' in f.read_text() for f in test_files), \
        f"{pid} is not tested in any of {[f.name for f in test_files]}"


def test_run_all_orders_by_area_and_refuses_unknown_ids():
    order = [audit.AREAS.index(p.area) for p in audit.ordered_probes()]
    assert order == sorted(order) and len(order) == len(PROBES)
    with pytest.raises(ValueError, match="unknown probe ids"):
        audit.run_all(["no-such-probe"])


def test_command_lists_the_probes(capsys):
    assert command.run(Namespace(out=None, json=None, only=None, list=True)) == 0
    printed = capsys.readouterr().out
    assert all(pid in printed for pid in PROBES)


def test_command_writes_markdown_and_json(tmp_path, capsys):
    ids = ["relu-grad-at-zero", "conv-output-rounding"]
    args = Namespace(out=tmp_path / "reports", json=tmp_path / "out.json", only=ids, list=False)
    assert command.run(args) == 0
    printed = capsys.readouterr().out
    data = json.loads((tmp_path / "out.json").read_text())
    assert [d["id"] for d in data] == ["conv-output-rounding", "relu-grad-at-zero"]
    for d in data:
        assert {"id", "title", "area", "frameworks", "reference", "differs", "groups", "reference_follows",
                "advice"} <= set(d)
        assert not {"torch", "keras"} & set(d), "framework evidence lives under 'frameworks'"
        assert set(d["frameworks"]) == set(PROBES[d["id"]].frameworks)
        assert d["id"] in printed
    md = (tmp_path / "reports" / "audit.md").read_text()
    for d in data:
        assert f"(`{d['id']}`)" in md and d["advice"] in md
    assert f"numpy {np.__version__}" in md
