"""``cnnref bench --compare A B [C ...]``: speed reports side by side, a verdict per cell.

Each argument is one side: a ``bench.json`` (one run) or a folder of runs (its ``bench.json`` and its
subfolders' ``*/bench.json``, e.g. ``before/run1 ... before/run5`` as ``cnnref bench --runs 5 --out before``
writes them). A cell is one (layer, shape, dtype,
implementation). Each later side is compared with the first (the baseline): the ratio of medians (a side's
median: the median of its runs' medians) and its 95% percentile bootstrap interval (2,000 resamples, seeded).

- With at least :data:`MIN_RUNS` runs on both sides the interval resamples the **runs'** medians, so it
  covers what differs from one run to the next: on a shared machine, one process's timings sit 10-30% above
  or below another's for the same code, far more than the samples within one run spread.
- Otherwise it resamples each run's own samples (``bench.json`` keeps every sample; a folder's runs pooled),
  which covers the noise within a run only: the report says so, since two runs of the same code can then
  differ beyond the interval.

A cell is ``slower`` only when the whole interval lies above 1 **and** the ratio exceeds ``1 + min_effect``,
``faster`` only when the interval lies below 1 and the ratio is under ``1 / (1 + min_effect)``; otherwise
``within noise``. A report without samples (written before they were kept) compares medians with the verdict
``unknown`` (unless the runs decide). Cells present in only some runs are listed, not compared.

Exit code: 0 when no cell is slower, 1 when one is (for CI), 2 on bad input (an unreadable file, not a bench
report, a folder without one, no cell in common).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

BOOTSTRAP = 2000
CONFIDENCE = 0.95
MIN_RUNS = 3  # runs per side from which the interval resamples runs rather than samples
Key = tuple[str, str, str, str]  # (layer, shape, dtype, impl)
# what a reader compares of two machines and runs, in this order
META_FIELDS = ("label", "platform", "cpus", "cores_available", "threads", "python", "numpy", "blas", "frameworks",
               "framework_settings", "matmul_gflops", "quick", "rounds", "load_before", "load_after")


class CompareError(ValueError):
    """A file that cannot be compared; the message names it and says why."""


def load_report(path: Path) -> dict:
    """A ``bench.json`` as written by ``cnnref bench``; :class:`CompareError` otherwise."""
    try:
        report = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CompareError(f"{path}: cannot read a JSON report ({exc})") from None
    if not isinstance(report, dict) or not isinstance(report.get("timings"), list) or "meta" not in report:
        raise CompareError(f"{path}: not a cnnref bench report (no 'meta' and 'timings')")
    return report


def load_side(path: Path) -> list[dict]:
    """One side of a comparison: the report at ``path``, or every run in the folder ``path`` (its ``bench.json``
    and ``*/bench.json``); :class:`CompareError` for a folder without one."""
    path = Path(path)
    if not path.is_dir():
        return [load_report(path)]
    files = sorted(path.glob("bench.json")) + sorted(path.glob("*/bench.json"))
    if not files:
        raise CompareError(f"{path}: a folder with no bench.json in it or in its subfolders")
    return [load_report(f) for f in files]


def cells(report: dict) -> dict[Key, dict]:
    """The measured cells of a report by key (skipped ones left out)."""
    return {(t["layer"], t["shape"], t["dtype"], t["impl"]): t for t in report["timings"]
            if t.get("median_s") is not None}


def side_cells(side: list[dict]) -> dict[Key, list[dict]]:
    """The cells every run of a side measured: key -> the runs' cells."""
    indexed = [cells(run) for run in side]
    return {key: [run[key] for run in indexed] for key in indexed[0] if all(key in run for run in indexed[1:])}


def ratio_interval(base: list[float], other: list[float], rng: np.random.Generator) -> tuple[float, float]:
    """The :data:`CONFIDENCE` bootstrap interval of ``median(other) / median(base)``."""
    a, b = np.asarray(base), np.asarray(other)
    ratios = (np.median(rng.choice(b, (BOOTSTRAP, b.size)), axis=1)
              / np.median(rng.choice(a, (BOOTSTRAP, a.size)), axis=1))
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return float(low), float(high)


def verdict(ratio: float, interval: tuple[float, float] | None, min_effect: float) -> str:
    """``faster``, ``slower``, ``within noise``, or ``unknown`` without samples (see the module docstring)."""
    if interval is None:
        return "unknown"
    low, high = interval
    if low > 1 and ratio > 1 + min_effect:
        return "slower"
    if high < 1 and ratio < 1 / (1 + min_effect):
        return "faster"
    return "within noise"


def compare_sides(sides: list[list[dict]], min_effect: float, seed: int = 0) -> dict:
    """The comparison of ``sides`` (each a list of runs' reports; the first the baseline): meta side by side, a
    row per cell all sides measured, the cells only some have."""
    indexed = [side_cells(side) for side in sides]
    common = [key for key in indexed[0] if all(key in other for other in indexed[1:])]
    rng = np.random.default_rng(seed)
    rows = []
    for key in common:
        medians = [[c["median_s"] for c in side[key]] for side in indexed]
        base = indexed[0][key]
        row = {"layer": key[0], "shape": key[1], "dtype": key[2], "impl": key[3],
               "median_s": [float(np.median(m)) for m in medians], "against_baseline": []}
        for side, side_medians in zip(indexed[1:], medians[1:], strict=True):
            ratio = float(np.median(side_medians) / np.median(medians[0]))
            if min(len(medians[0]), len(side_medians)) >= MIN_RUNS:
                method, interval = "runs", ratio_interval(medians[0], side_medians, rng)
            else:
                samples = [[t for c in cells_ for t in (c.get("times") or [])] for cells_ in (base, side[key])]
                method = "samples"
                interval = ratio_interval(*samples, rng) if all(samples) else None
            row["against_baseline"].append({"ratio": ratio, "interval": interval, "resampled": method,
                                            "verdict": verdict(ratio, interval, min_effect)})
        rows.append(row)
    every = {key for side in sides for run in side for key in cells(run)}
    partial = sorted(key for key in every if key not in set(common))
    return {
        "baseline": 0, "min_effect": min_effect, "confidence": CONFIDENCE, "bootstrap": BOOTSTRAP,
        "min_runs": MIN_RUNS,
        "interval": f"percentile bootstrap of the ratio of medians: with at least {MIN_RUNS} runs per side the "
                    "runs' medians resampled with replacement, otherwise each run's samples",
        "runs_per_side": [len(side) for side in sides],
        # each side's first run's settings, and the label its runs share (None when they differ)
        "runs": [{field: side[0]["meta"].get(field) for field in META_FIELDS} | {"label": _shared_label(side)}
                 for side in sides],
        "cells": rows,
        "only_in_some_runs": [{"layer": k[0], "shape": k[1], "dtype": k[2], "impl": k[3],
                               "runs": [i for i, side in enumerate(indexed) if k in side]} for k in partial],
    }


def _time(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.3g} us"


def _show(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_show(v)}" for k, v in value.items()) or "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def markdown(result: dict, names: list[str]) -> str:
    """``compare.md``: the runs side by side (fields that differ from the baseline in bold), then the cells."""
    runs = result["runs"]
    counts = result["runs_per_side"]
    lines = ["# Speed reports compared", "",
             f"Baseline: {names[0]}. Runs per side: {', '.join(map(str, counts))}. Verdicts: the "
             f"{result['confidence']:.0%} {result['interval']} ({result['bootstrap']} resamples); a cell is slower or "
             f"faster only when the interval excludes 1 and the change exceeds {result['min_effect']:.0%}.", ""]
    if min(counts) < result["min_runs"]:
        lines += [f"**Fewer than {result['min_runs']} runs on a side: its intervals cover the noise within each run "
                  "only.** On a shared machine one process's timings sit 10-30% above or below another's for the "
                  "same code, so two runs of unchanged code can be called slower or faster here. For verdicts that "
                  f"include that spread, give each side a folder of {result['min_runs']} runs or more (e.g. "
                  "`cnnref bench --quick --runs 5 --out before`, the same for `after`, then `--compare before "
                  "after`).", ""]
    lines += ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for field in META_FIELDS:
        shown = [_show(run.get(field)) for run in runs]
        lines.append(f"| {field} | " + " | ".join(
            s if i == 0 or s == shown[0] else f"**{s}**" for i, s in enumerate(shown)) + " |")
    later = names[1:]
    lines += ["", "## Cells", "",
              "| layer | shape | dtype | impl | " + " | ".join(names) + " | "
              + " | ".join(f"{n} / {names[0]}" for n in later) + " |",
              "|---|---|---|---|" + "---:|" * len(names) + "---|" * len(later)]
    for row in result["cells"]:
        versus = []
        for c in row["against_baseline"]:
            interval = "" if c["interval"] is None else f" [{c['interval'][0]:.2f}, {c['interval'][1]:.2f}]"
            mark = "**" if c["verdict"] in ("slower", "faster") else ""
            versus.append(f"{c['ratio']:.2f}x{interval} {mark}{c['verdict']}{mark}")
        lines.append(f"| {row['layer']} | {row['shape']} | {row['dtype']} | {row['impl']} | "
                     + " | ".join(_time(t) for t in row["median_s"]) + " | " + " | ".join(versus) + " |")
    if result["only_in_some_runs"]:
        lines += ["", "Not compared (present in only some runs):", ""]
        lines += [f"- {c['layer']} {c['shape']} {c['dtype']} {c['impl']}: in {', '.join(names[i] for i in c['runs'])}"
                  for c in result["only_in_some_runs"]]
    verdicts = summary(result)
    lines += ["", "Verdicts: " + ", ".join(f"{n} {v}" for v, n in verdicts.items()) + "."]
    return "\n".join(lines) + "\n"


def summary(result: dict) -> dict[str, int]:
    """How many comparisons got each verdict."""
    counts: dict[str, int] = {}
    for row in result["cells"]:
        for c in row["against_baseline"]:
            counts[c["verdict"]] = counts.get(c["verdict"], 0) + 1
    return counts


def plot(result: dict, names: list[str], path: Path) -> None:
    """``compare.png``: each cell's ratio to the baseline with its interval, log scale, coloured by verdict."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"slower": "tab:red", "faster": "tab:green", "within noise": "tab:gray", "unknown": "tab:blue"}
    rows = result["cells"]
    fig, ax = plt.subplots(figsize=(9, max(3, 0.28 * len(rows) * max(1, len(names) - 1) + 1)))
    y = 0
    labels = []
    for row in rows:
        for i, c in enumerate(row["against_baseline"]):
            low, high = c["interval"] or (c["ratio"], c["ratio"])
            ax.errorbar(c["ratio"], y, xerr=[[c["ratio"] - low], [high - c["ratio"]]], fmt="o",
                        color=colors[c["verdict"]])
            labels.append(f"{row['layer']} {row['shape']} {row['dtype']} {row['impl']}"
                          + (f" ({names[i + 1]})" if len(names) > 2 else ""))
            y += 1
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(f"time / {names[0]}'s time (< 1: faster), {result['confidence']:.0%} bootstrap interval")
    ax.set_title("Speed reports compared")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_compare(paths: list[Path], out: Path, min_effect: float) -> int:
    """Compare the sides ``paths`` (``bench.json`` files or folders of runs); write ``compare.{md,json,png}`` into
    ``out``; the exit code."""
    try:
        if len(paths) < 2:
            raise CompareError(f"--compare needs at least two reports, got {len(paths)}")
        if not min_effect >= 0:
            raise CompareError(f"--min-effect must be >= 0, got {min_effect}")
        sides = [load_side(p) for p in paths]
        result = compare_sides(sides, min_effect)
        if not result["cells"]:
            raise CompareError("the reports have no measured cell in common")
    except CompareError as exc:
        print(f"cnnref bench --compare: {exc}", file=sys.stderr)
        return 2
    names = [_side_name(side, p) for side, p in zip(sides, paths, strict=True)]
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps({"runs_compared": [str(p) for p in paths], **result}, indent=2) + "\n")
    (out / "compare.md").write_text(markdown(result, names))
    plot(result, names, out / "compare.png")
    counts = summary(result)
    print("verdicts: " + ", ".join(f"{n} {v}" for v, n in counts.items())
          + f"; wrote {out / 'compare.md'}, {out / 'compare.json'}, {out / 'compare.png'}")
    if min(result["runs_per_side"]) < MIN_RUNS:
        print(f"note: fewer than {MIN_RUNS} runs on a side: the intervals miss the run-to-run spread (see compare.md)")
    for row in result["cells"]:
        for name, c in zip(names[1:], row["against_baseline"], strict=True):
            if c["verdict"] == "slower":
                print(f"slower: {row['layer']} {row['shape']} {row['dtype']} {row['impl']} in {name}: "
                      f"{c['ratio']:.2f}x {names[0]}'s time")
    return 1 if counts.get("slower") else 0


def _shared_label(side: list[dict]) -> str | None:
    """The label every run of a side has, else None."""
    labels = {run["meta"].get("label") for run in side}
    return labels.pop() if len(labels) == 1 else None


def _side_name(side: list[dict], path: Path) -> str:
    """The label its runs share, else the path."""
    return _shared_label(side) or str(path)
