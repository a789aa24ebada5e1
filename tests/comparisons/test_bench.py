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


def _report_meta() -> dict:
    return {"quick": True, "rounds": 1, "threads": 1, "cpus": 2, "numpy": np.__version__,
            "blas": {"blas": "x", "core": "y", "threads": 1, "OPENBLAS_CORETYPE": None}, "frameworks": {},
            "matmul_size": 8, "matmul_gflops": 100.0, "load_before": [0.0, 0, 0], "load_after": [0.0, 0, 0]}


def _conv(shape: str, impl: str, seconds: float) -> Timing:
    return Timing("conv", shape, "float32", impl, SHAPES[shape].flops("conv"), median_s=seconds)


def test_report_writes_markdown_json_png_and_judges_targets(tmp_path):
    from comparisons.bench.profile import WHOLE
    from reference.conv import Im2colPlan

    timings = [_conv("tutorial", "loop", 1.0), _conv("tutorial", "im2col", 1e-3), _conv("tutorial", "torch", 4e-3),
               _conv("mid", "im2col", 0.03), _conv("mid", "torch", 0.02),
               _conv("large", "im2col", 0.09), _conv("large", "torch", 0.1)]
    # the mid profile: GEMMs 10 + 10 + 10 ms, whole pass 36 ms -> 1.2; large not profiled
    phases = {name: (0.01 if name.endswith("gemm") else 0.001) for name in Im2colPlan.FLIPPED_PHASES}
    training = {"im2col": 1e-4, "torch": 3e-4}
    paths = write(timings, _report_meta(), tmp_path, {"mid": phases | {WHOLE: 0.036}}, training)
    assert all(p.stat().st_size > 0 for p in paths.values())
    data = json.loads(paths["json"].read_text())
    found = {t["target"]: (t["value"], t["met"]) for t in data["targets"]}
    expected = {
        "im2col time / PyTorch time, conv, large, float32 <= 1": (0.9, True),
        "im2col time / PyTorch time, conv, mid, float32 <= 1.4": (1.5, False),
        "whole im2col pass / its three GEMMs (phase profile), conv, mid, float32 <= 1.3": (1.2, True),
        "whole im2col pass / its three GEMMs (phase profile), conv, large, float32 <= 1.3": (None, None),
        "PyTorch time / im2col time, conv, tutorial, float32 >= 3": (4.0, True),
        "PyTorch time / reference time, Adam training step of the tutorial's CNN, batch 1, float32 > 1": (3.0, True),
    }
    assert found.keys() == expected.keys()
    for target, (value, met) in expected.items():
        assert found[target][1] is met, target
        assert found[target][0] == (None if value is None else pytest.approx(value, rel=1e-12)), target
    assert data["training_step"] == training
    assert targets(derived(timings, 100.0)) == [{**t, "value": None, "met": None} if "phase" in t["target"]
                                                 or "training" in t["target"] else t for t in data["targets"]]
    assert {r["impl"] for r in data["timings"]} == {"loop", "im2col", "torch"}
    text = paths["md"].read_text()
    assert "| conv | tutorial" in text
    assert "| PyTorch time / im2col time, conv, tutorial, float32 >= 3 | 4 | yes |" in text
    assert "| im2col time / PyTorch time, conv, mid, float32 <= 1.4 | 1.5 | **no** |" in text
    assert "## Batch-1 training step (float32)" in text and "| torch | 0.300 ms |" in text


@pytest.mark.parametrize(("shape", "method"), [((4, 4, 8, 8, 2), "flipped"), ((3, 1, 8, 8, 8), "col2im")])
def test_profile_times_each_phase_of_the_im2col_plan_in_order(shape, method):
    from comparisons.bench.profile import WHOLE, conv_phases
    from comparisons.bench.shapes import Shape
    from reference.conv import Im2colPlan

    phases = conv_phases(Shape("tiny", *shape, padding=1), rounds=1, min_sample_s=0.0)
    order = Im2colPlan.FLIPPED_PHASES if method == "flipped" else Im2colPlan.COL2IM_PHASES
    assert list(phases) == [*order, WHOLE]
    assert all(t > 0 for t in phases.values())


def test_profile_times_chunks_of_different_block_counts(monkeypatch):
    """5 images on 2 threads in blocks of at most two: a chunk of 3 runs two blocks (its input copied, its columns
    filled again in the backward), the chunk of 2 one block; the profile times every phase of the first."""
    import reference.conv as conv_module
    from comparisons.bench.profile import WHOLE, conv_phases
    from comparisons.bench.shapes import Shape
    from reference import threads

    monkeypatch.setattr(conv_module, "images_per_block", lambda image_bytes: 2)
    monkeypatch.setattr(threads, "_setting", 2)
    shape = Shape("tiny", 5, 1, 8, 8, 8, padding=1)
    layer = conv_module.Conv2d(1, 8, 3, padding=1)
    assert [len(chunk.blocks) for chunk in layer.im2col_plan(shape.input_shape).parts] == [2, 1]
    phases = conv_phases(shape, rounds=1, min_sample_s=0.0)
    order = conv_module.Im2colPlan.COL2IM_PHASES
    assert list(phases) == ["keep_input", *order[:3], "refill_columns", *order[3:], WHOLE]
    assert all(t > 0 for t in phases.values())


def test_training_steps_time_the_reference_and_each_framework_that_runs():
    from comparisons import frameworks
    from comparisons.bench.profile import training_steps

    found = training_steps(threads=1, rounds=1, min_sample_s=0.0)
    try:
        frameworks.load("torch")
        expected = {"im2col", "torch"}
    except frameworks.FrameworkUnavailable:
        expected = {"im2col"}
    assert set(found) == expected and all(t > 0 for t in found.values())


def test_report_shows_where_the_time_goes_and_the_whole_pass_over_the_gemms(tmp_path):
    from comparisons.bench.profile import WHOLE
    from reference.conv import Im2colPlan

    timings = [_conv("mid", "im2col", 0.02), _conv("mid", "torch", 0.008)]
    phases = {name: 0.001 * (i + 1) for i, name in enumerate(Im2colPlan.FLIPPED_PHASES)} | {WHOLE: 0.02}
    paths = write(timings, _report_meta(), tmp_path, {"mid": phases})
    # GEMM phases: forward_gemm (2 ms), weight_grad_gemm (5 ms), flipped_input_grad_gemm (7 ms) -> 14 ms
    profile = json.loads(paths["json"].read_text())["profile"]["mid"]
    assert profile["gemms_s"] == pytest.approx(0.014, rel=1e-12)
    assert profile["whole_over_gemms"] == pytest.approx(20 / 14, rel=1e-12)
    assert profile["gemms_over_torch"] == pytest.approx(14 / 8, rel=1e-12)
    text = paths["md"].read_text()
    assert "## Where the im2col time goes" in text and "| **whole pass / three GEMMs** |" in text and "1.43x" in text
    assert "| **three GEMMs / PyTorch** |" in text and "1.75x" in text
    assert "| col2im |" not in text  # a phase no profiled shape ran


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
