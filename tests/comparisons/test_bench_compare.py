"""``cnnref bench --compare``: verdicts from each run's samples, the exit codes, the files written."""

from __future__ import annotations

import json

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
