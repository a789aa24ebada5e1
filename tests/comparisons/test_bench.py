"""comparisons.bench: work counts, the report files and the targets, without timing anything."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from comparisons.bench.measure import Timing, make_step
from comparisons.bench.report import derived, targets, write
from comparisons.bench.shapes import SHAPES


def test_conv_flops_count_every_multiply_add_three_times():
    s = SHAPES["mid"]  # 64x16x28x28 -> 32, 3x3, padding 1: output 28x28
    assert s.flops("conv") == 3 * 2 * 64 * 28 * 28 * 32 * 16 * 9


@pytest.mark.parametrize("layer", ["conv", "maxpool", "avgpool", "linear"])
def test_reference_step_returns_dx_shaped_like_the_input(layer):
    shape = SHAPES["tutorial"]
    dx = make_step(layer, shape, "im2col", "float32", threads=1)()
    # Linear is timed on the flattened batch (N, C*H*W)
    assert dx.shape == ((shape.n, shape.c * shape.h * shape.w) if layer == "linear" else shape.input_shape)


def test_report_writes_markdown_json_png_and_judges_targets(tmp_path):
    flops = SHAPES["tutorial"].flops("conv")
    timings = [Timing("conv", "tutorial", "float32", "loop", flops, median_s=1.0),
               Timing("conv", "tutorial", "float32", "im2col", flops, median_s=1e-3),
               Timing("conv", "tutorial", "float32", "torch", flops, median_s=2e-3)]
    meta = {"quick": True, "rounds": 1, "threads": 1, "cpus": 2, "numpy": np.__version__,
            "blas": {"blas": "x", "core": "y", "threads": 1, "OPENBLAS_CORETYPE": None}, "frameworks": {},
            "matmul_size": 8, "matmul_gflops": 100.0, "load_before": [0.0, 0, 0], "load_after": [0.0, 0, 0]}
    paths = write(timings, meta, tmp_path)
    assert all(p.stat().st_size > 0 for p in paths.values())
    rows = derived(timings, 100.0)
    speedup = [t for t in targets(rows) if "over loop" in t["target"]][0]
    assert speedup["value"] == pytest.approx(1000.0) and speedup["met"] is True
    data = json.loads(paths["json"].read_text())
    assert {r["impl"] for r in data["timings"]} == {"loop", "im2col", "torch"}
    assert "| conv | tutorial" in paths["md"].read_text()


def test_profile_times_each_phase_of_the_im2col_plan_in_order():
    from comparisons.bench.profile import WHOLE, conv_phases
    from comparisons.bench.shapes import Shape
    from reference.conv import Im2colPlan

    phases = conv_phases(Shape("tiny", 2, 3, 8, 8, 4, padding=1), rounds=1, min_sample_s=0.0)
    assert list(phases) == [*Im2colPlan.PHASES, WHOLE]
    assert all(t > 0 for t in phases.values())


def test_report_shows_where_the_time_goes_and_the_gemms_over_pytorch(tmp_path):
    from comparisons.bench.profile import WHOLE
    from reference.conv import Im2colPlan

    flops = SHAPES["mid"].flops("conv")
    timings = [Timing("conv", "mid", "float32", "im2col", flops, median_s=0.02),
               Timing("conv", "mid", "float32", "torch", flops, median_s=0.008)]
    phases = {name: 0.001 * (i + 1) for i, name in enumerate(Im2colPlan.PHASES)} | {WHOLE: 0.02}
    meta = {"quick": True, "rounds": 1, "threads": 1, "cpus": 2, "numpy": np.__version__,
            "blas": {"blas": "x", "core": "y", "threads": 1, "OPENBLAS_CORETYPE": None}, "frameworks": {},
            "matmul_size": 8, "matmul_gflops": 100.0, "load_before": [0.0, 0, 0], "load_after": [0.0, 0, 0]}
    paths = write(timings, meta, tmp_path, {"mid": phases})
    # GEMM phases: forward_gemm (2 ms), weight_grad_gemm (5 ms), input_grad_gemm (6 ms) -> 13 ms / 8 ms
    profile = json.loads(paths["json"].read_text())["profile"]["mid"]
    assert profile["gemms_s"] == pytest.approx(0.013, rel=1e-12)
    assert profile["gemms_over_torch"] == pytest.approx(13 / 8, rel=1e-12)
    text = paths["md"].read_text()
    assert "## Where the im2col time goes" in text and "| **three GEMMs / PyTorch** |" in text and "1.62x" in text


def _meta(threads: int, cores: int) -> dict:
    return {"quick": True, "rounds": 1, "threads": threads, "cpus": cores, "cores_available": cores,
            "numpy": np.__version__, "blas": {"blas": "x", "core": "y", "threads": threads, "OPENBLAS_CORETYPE": None},
            "frameworks": {}, "matmul_size": 8, "matmul_gflops": 100.0, "load_before": [0.0, 0, 0],
            "load_after": [0.0, 0, 0]}


def _tutorial_timings() -> list[Timing]:
    return [Timing("linear", "tutorial", "float32", "im2col", SHAPES["tutorial"].flops("linear"), median_s=1e-3)]


def test_more_threads_than_cores_is_a_warning_in_the_report_header(tmp_path):
    paths = write(_tutorial_timings(), _meta(threads=64, cores=2), tmp_path / "over")
    expected = ("--threads 64 exceeds the cores this process may run on (2): the threads take turns on the cores, "
                "so the multi-threaded timings (numpy's BLAS, PyTorch, TensorFlow) are slower than with --threads 2, "
                "not what a machine with 64 cores would give")
    assert json.loads(paths["json"].read_text())["warnings"] == [expected]
    header = paths["md"].read_text().split("## Targets")[0]
    assert f"**Warning: {expected}.**" in header
    fitting = write(_tutorial_timings(), _meta(threads=2, cores=2), tmp_path / "fits")
    assert json.loads(fitting["json"].read_text())["warnings"] == []
    assert "Warning" not in fitting["md"].read_text()


def test_bench_warns_on_stderr_before_timing_when_threads_exceed_the_cores(tmp_path, monkeypatch, capsys):
    from comparisons import cli
    from comparisons.bench import command

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)  # one usable core
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    monkeypatch.setattr(command, "matmul_rate", lambda size, rounds: 100.0)
    monkeypatch.setattr(command, "measure_all", lambda *args, **kwargs: _tutorial_timings())
    code = cli.main(["bench", "--quick", "--threads", "2", "--layers", "linear", "--shapes", "tutorial",
                     "--impls", "im2col", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 0
    assert "cnnref bench: warning: --threads 2 exceeds the cores this process may run on (1)" in err
    report = json.loads((tmp_path / "bench.json").read_text())
    assert report["meta"]["cores_available"] == 1 and report["warnings"][0].startswith("--threads 2 exceeds")
