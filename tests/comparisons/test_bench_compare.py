"""``cnnref bench --compare``: verdicts from each run's samples, the exit codes, the files written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from comparisons import cli
from comparisons.bench import compare


def report(path, times_by_impl: dict[str, list[float] | None], label: str | None = None, threads: int = 2):
    """A minimal bench.json: one conv cell per implementation, with (or, given None, without) its samples."""
    timings = []
    for impl, times in times_by_impl.items():
        median = float(np.median(times)) if times else 1e-3
        timings.append({"layer": "conv", "shape": "mid", "dtype": "float32", "impl": impl, "median_s": median,
                        **({"times": times} if times else {})})
    meta = {"label": label, "threads": threads, "platform": "test", "numpy": np.__version__}
    path.write_text(json.dumps({"meta": meta, "timings": timings}))
    return path


def noisy(center: float, seed: int, n: int = 9) -> list[float]:
    """``n`` samples within +-2% of ``center``."""
    return list(center * (1 + 0.02 * np.random.default_rng(seed).uniform(-1, 1, n)))


def run(capsys, *argv):
    code = cli.main(["bench", *map(str, argv)])
    return code, capsys.readouterr()


def test_a_run_against_itself_flags_nothing(tmp_path, capsys):
    a = report(tmp_path / "a.json", {"im2col": noisy(0.02, 0), "torch": noisy(0.01, 1)})
    code, out = run(capsys, "--compare", a, a, "--out", tmp_path / "cmp")
    assert code == 0, out.err
    result = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert [c["against_baseline"][0]["verdict"] for c in result["cells"]] == ["within noise"] * 2
    assert all((tmp_path / "cmp" / f"compare.{ext}").stat().st_size > 0 for ext in ("md", "json", "png"))


def test_a_clearly_slower_cell_is_slower_and_fails(tmp_path, capsys):
    a = report(tmp_path / "a.json", {"im2col": noisy(0.020, 0)}, label="before")
    b = report(tmp_path / "b.json", {"im2col": noisy(0.030, 1)}, label="after", threads=1)
    code, out = run(capsys, "--compare", a, b, "--out", tmp_path / "cmp")
    assert code == 1
    ratio = np.median(noisy(0.030, 1)) / np.median(noisy(0.020, 0))
    assert f"slower: conv mid float32 im2col in after: {ratio:.2f}x before's time" in out.out
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert "| threads | 2 | **1** |" in md  # a difference from the baseline is highlighted


def test_faster_needs_the_interval_and_the_minimum_effect(tmp_path, capsys):
    a = report(tmp_path / "a.json", {"im2col": noisy(0.020, 0), "torch": noisy(0.010, 1)})
    b = report(tmp_path / "b.json", {"im2col": noisy(0.010, 2), "torch": noisy(0.0097, 3)})
    code, _ = run(capsys, "--compare", a, b, "--out", tmp_path / "cmp")
    verdicts = {c["impl"]: c["against_baseline"][0]["verdict"]
                for c in json.loads((tmp_path / "cmp" / "compare.json").read_text())["cells"]}
    # im2col halved; torch 3% faster: beyond the samples' noise, perhaps, but under the 10% minimum effect
    assert verdicts == {"im2col": "faster", "torch": "within noise"} and code == 0


def test_reports_without_samples_compare_medians_as_unknown(tmp_path, capsys):
    a = report(tmp_path / "a.json", {"im2col": None})
    b = report(tmp_path / "b.json", {"im2col": noisy(0.02, 0)})
    code, _ = run(capsys, "--compare", a, b, "--out", tmp_path / "cmp")
    cell = json.loads((tmp_path / "cmp" / "compare.json").read_text())["cells"][0]["against_baseline"][0]
    assert code == 0 and cell["verdict"] == "unknown" and cell["interval"] is None


def test_cells_in_only_one_run_are_listed_not_compared(tmp_path, capsys):
    a = report(tmp_path / "a.json", {"im2col": noisy(0.02, 0), "keras": noisy(0.03, 1)})
    b = report(tmp_path / "b.json", {"im2col": noisy(0.02, 2)})
    run(capsys, "--compare", a, b, "--out", tmp_path / "cmp")
    result = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert [c["impl"] for c in result["cells"]] == ["im2col"]
    assert result["only_in_some_runs"] == [{"layer": "conv", "shape": "mid", "dtype": "float32", "impl": "keras",
                                             "runs": [0]}]


@pytest.mark.parametrize("content,message", [
    (None, "cannot read a JSON report"),
    ("{not json", "cannot read a JSON report"),
    ('{"results": []}', "not a cnnref bench report"),
])
def test_bad_input_exits_2(tmp_path, capsys, content, message):
    good = report(tmp_path / "a.json", {"im2col": noisy(0.02, 0)})
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    code, out = run(capsys, "--compare", good, bad, "--out", tmp_path / "cmp")
    assert code == 2 and message in out.err and str(bad) in out.err


def test_no_common_cell_exits_2(tmp_path, capsys):
    a = report(tmp_path / "a.json", {"im2col": noisy(0.02, 0)})
    b = report(tmp_path / "b.json", {"torch": noisy(0.02, 1)})
    code, out = run(capsys, "--compare", a, b, "--out", tmp_path / "cmp")
    assert code == 2 and "no measured cell in common" in out.err


def test_the_interval_covers_the_true_ratio_of_identical_distributions():
    """Two samples of one distribution: the bootstrap interval of the median ratio contains 1 (95% nominal;
    checked over 40 pairs, at least 36 must cover it)."""
    rng = np.random.default_rng(0)
    covered = 0
    for i in range(40):
        a, b = rng.lognormal(0, 0.05, 9), rng.lognormal(0, 0.05, 9)
        low, high = compare.ratio_interval(list(a), list(b), np.random.default_rng(i))
        covered += low <= 1 <= high
    assert covered >= 36


def runs_folder(folder, center: float, seed: int, runs: int = 5, spread: float = 0.25, label: str | None = None):
    """``runs`` reports of one im2col cell in ``folder/run<i>/bench.json``: each run's samples within +-2% of its own
    median, the runs' medians ``center`` times a factor within +-``spread`` (as one process differs from another on
    a shared machine)."""
    factors = 1 + spread * np.random.default_rng(seed).uniform(-1, 1, runs)
    for i, factor in enumerate(factors):
        (folder / f"run{i}").mkdir(parents=True)
        report(folder / f"run{i}" / "bench.json", {"im2col": noisy(center * factor, seed * 100 + i)}, label=label)
    return folder


def test_runs_of_unchanged_code_flap_one_run_per_side_not_with_folders(tmp_path, capsys):
    """Runs of one distribution whose medians differ by up to 25% from run to run: one run per side is called
    slower or faster on the samples' noise alone (the report warns of it); folders of runs resample the runs'
    medians and call nothing."""
    before = runs_folder(tmp_path / "before", 0.02, seed=1)
    after = runs_folder(tmp_path / "after", 0.02, seed=2)
    single = [run(capsys, "--compare", a / "bench.json", b / "bench.json", "--out", tmp_path / "one")
              for a, b in zip(sorted(before.iterdir()), sorted(after.iterdir()), strict=True)]
    assert any(code == 1 for code, _ in single)  # the spread between runs is beyond one run's samples
    assert "fewer than 3 runs on a side" in single[0][1].out
    assert "Fewer than 3 runs on a side" in (tmp_path / "one" / "compare.md").read_text()
    code, out = run(capsys, "--compare", before, after, "--out", tmp_path / "many")
    result = json.loads((tmp_path / "many" / "compare.json").read_text())
    cell = result["cells"][0]["against_baseline"][0]
    assert code == 0 and cell["verdict"] == "within noise" and cell["resampled"] == "runs"
    assert result["runs_per_side"] == [5, 5] and "fewer than" not in out.out
    assert "Fewer than" not in (tmp_path / "many" / "compare.md").read_text()
    medians = [[json.loads((d / f"run{i}" / "bench.json").read_text())["timings"][0]["median_s"] for i in range(5)]
               for d in (before, after)]
    assert cell["ratio"] == pytest.approx(np.median(medians[1]) / np.median(medians[0]), rel=1e-12)


def test_folders_of_runs_call_a_change_beyond_the_run_spread(tmp_path, capsys):
    before = runs_folder(tmp_path / "before", 0.02, seed=3, spread=0.1, label="before")
    after = runs_folder(tmp_path / "after", 0.04, seed=4, spread=0.1, label="after")
    code, out = run(capsys, "--compare", before, after, "--out", tmp_path / "cmp")
    cell = json.loads((tmp_path / "cmp" / "compare.json").read_text())["cells"][0]["against_baseline"][0]
    assert code == 1 and cell["verdict"] == "slower" and cell["resampled"] == "runs"
    assert "slower: conv mid float32 im2col in after:" in out.out  # the label the runs share names the side


def test_a_folder_without_reports_exits_2(tmp_path, capsys):
    good = report(tmp_path / "a.json", {"im2col": noisy(0.02, 0)})
    (tmp_path / "empty").mkdir()
    code, out = run(capsys, "--compare", good, tmp_path / "empty", "--out", tmp_path / "cmp")
    assert code == 2 and "no bench.json" in out.err and str(tmp_path / "empty") in out.err


def test_a_folder_side_shows_the_label_its_runs_share_or_none(tmp_path, capsys):
    shared = runs_folder(tmp_path / "shared", 0.02, seed=5, runs=3, label="v1")
    mixed = runs_folder(tmp_path / "mixed", 0.02, seed=6, runs=3)
    report(mixed / "run0" / "bench.json", {"im2col": noisy(0.02, 7)}, label="other")
    run(capsys, "--compare", shared, mixed, "--out", tmp_path / "cmp")
    result = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert [side["label"] for side in result["runs"]] == ["v1", None]
    assert "with at least 3 runs per side" in (tmp_path / "cmp" / "compare.md").read_text()


def test_runs_pass_every_option_on_but_out():
    """``--runs``' runs get the command line as given (any option the parser has, so a new one is not dropped),
    with their own ``--out``."""
    from comparisons.bench.command import run_arguments

    argv = ["bench", "--quick", "--threads", "1", "--layers", "conv", "maxpool", "--shapes", "tutorial", "--impls",
            "im2col", "--rounds", "3", "--label", "before", "--runs", "4", "--out", "somewhere"]
    args = cli.build_parser("bench").parse_args(argv)
    again = cli.build_parser("bench").parse_args(run_arguments(args, Path("x/run1")))
    assert vars(again) == vars(args) | {"out": Path("x/run1"), "runs": 1}


def test_runs_write_one_report_per_process_and_compare_as_a_side(tmp_path, capsys):
    code, out = run(capsys, "--runs", "2", "--quick", "--layers", "maxpool", "--shapes", "tutorial", "--impls",
                    "im2col", "--rounds", "1", "--label", "twice", "--out", tmp_path / "runs")
    assert code == 0, out.err
    reports = [json.loads((tmp_path / "runs" / f"run{i}" / "bench.json").read_text()) for i in (1, 2)]
    assert [r["meta"]["label"] for r in reports] == ["twice", "twice"]
    code, out = run(capsys, "--compare", tmp_path / "runs", tmp_path / "runs", "--out", tmp_path / "cmp")
    result = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert code == 0 and result["runs_per_side"] == [2, 2]
