"""The speed report: a Markdown table, a JSON file and a PNG plot from a list of timings.

Columns: median time of one forward + backward, GFLOP/s (work as counted in
:mod:`comparisons.bench.shapes`), that rate as a fraction of the machine's numpy float32
matmul rate measured in the same run, the time ratio to PyTorch (< 1: faster than
PyTorch) and the speed-up over the loop implementation.
"""

from __future__ import annotations

import json
import operator
from pathlib import Path

from .measure import IMPLS, LOOP_ROUNDS, Timing
from .profile import PHASE_NOTES, WHOLE, summary
from .shapes import SHAPES

TARGETS = (
    # (description, (figure, shape), comparison, threshold); figures: "ratio" im2col time / PyTorch time,
    # "ahead" PyTorch time / im2col time (conv, float32); "profile" the whole im2col pass / its three GEMMs
    # (phase profile); "training" PyTorch's batch-1 training step time / the reference's
    ("im2col time / PyTorch time, conv, large, float32", ("ratio", "large"), "<=", 1.0),
    ("im2col time / PyTorch time, conv, mid, float32", ("ratio", "mid"), "<=", 1.4),
    ("whole im2col pass / its three GEMMs (phase profile), conv, mid, float32", ("profile", "mid"), "<=", 1.3),
    ("whole im2col pass / its three GEMMs (phase profile), conv, large, float32", ("profile", "large"), "<=", 1.3),
    ("PyTorch time / im2col time, conv, tutorial, float32", ("ahead", "tutorial"), ">=", 3.0),
    ("PyTorch time / reference time, Adam training step of the tutorial's CNN, batch 1, float32",
     ("training", None), ">", 1.0),
)
COMPARISONS = {"<=": operator.le, ">=": operator.ge, ">": operator.gt}


def _index(timings: list[Timing]) -> dict[tuple[str, str, str, str], Timing]:
    return {(t.layer, t.shape, t.dtype, t.impl): t for t in timings if t.median_s is not None}


def derived(timings: list[Timing], matmul_gflops: float) -> list[dict]:
    """One row per measured timing, with ratio to PyTorch, speed-up over loop, matmul fraction."""
    index = _index(timings)
    rows = []
    for t in timings:
        row = t.as_dict()
        torch = index.get((t.layer, t.shape, "float32", "torch"))
        loop = index.get((t.layer, t.shape, t.dtype, "loop"))
        ok = t.median_s is not None
        row["ratio_to_torch"] = t.median_s / torch.median_s if ok and torch else None
        row["speedup_over_loop"] = loop.median_s / t.median_s if ok and loop else None
        row["matmul_fraction"] = t.gflops / matmul_gflops if ok and matmul_gflops else None
        rows.append(row)
    return rows


def _figure(what: str, shape: str | None, rows: list[dict], profiled: dict[str, dict],
            training: dict[str, float]) -> float | None:
    """The measured figure of one target (see :data:`TARGETS`), None when this run did not measure it."""
    if what in ("ratio", "ahead"):
        row = next((r for r in rows if (r["layer"], r["shape"], r["dtype"], r["impl"])
                    == ("conv", shape, "float32", "im2col")), None)
        ratio = row["ratio_to_torch"] if row else None
        return ratio if what == "ratio" or ratio is None else 1.0 / ratio
    if what == "profile":
        return profiled.get(shape, {}).get("whole_over_gemms")
    if "torch" in training and "im2col" in training:
        return training["torch"] / training["im2col"]
    return None


def targets(rows: list[dict], profiled: dict[str, dict] | None = None,
            training: dict[str, float] | None = None) -> list[dict]:
    """The speed targets, each with the measured figure and whether it is met (None: not measured).
    ``profiled``: :func:`profile_rows`; ``training``: :func:`~comparisons.bench.profile.training_steps`."""
    out = []
    for text, (what, shape), op, bound in TARGETS:
        value = _figure(what, shape, rows, profiled or {}, training or {})
        met = None if value is None else COMPARISONS[op](value, bound)
        out.append({"target": f"{text} {op} {bound:g}", "value": value, "met": met})
    return out


def _fmt(value, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def _time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1e3:.3f} ms" if seconds < 1 else f"{seconds:.2f} s"


def threads_warning(threads: int, cores: int) -> str | None:
    """Why ``threads`` threads per library on ``cores`` usable cores give misleading timings, or None."""
    if threads <= cores:
        return None
    return (f"--threads {threads} exceeds the cores this process may run on ({cores}): the threads take turns "
            f"on the cores, so the multi-threaded timings (numpy's BLAS, PyTorch, TensorFlow) are slower than with "
            f"--threads {cores}, not what a machine with {threads} cores would give")


def _busy_warning(meta: dict) -> str | None:
    """Why the figures are not representative when other processes competed for the cores, or None."""
    busiest = max(meta["load_before"][0], meta["load_after"][0])
    if busiest <= 0.5 * meta["cpus"]:
        return None
    return (f"the machine was busy (1-minute load average up to {busiest:.2f} on {meta['cpus']} cores). "
            "Multi-threaded BLAS and PyTorch slow down most when a core is taken, so these figures, the ratios "
            "included, are not representative; rerun on an idle machine")


def report_warnings(meta: dict) -> list[str]:
    """The warnings in the report's header (Markdown) and under ``"warnings"`` (JSON): more threads than
    usable cores (``meta["cores_available"]``, else ``meta["cpus"]``), a busy machine."""
    cores = meta.get("cores_available", meta["cpus"])
    found = (threads_warning(meta["threads"], cores), _busy_warning(meta))
    return [w for w in found if w is not None]


def profile_rows(profiles: dict[str, dict[str, float]], timings: list[Timing]) -> dict[str, dict]:
    """For each profiled shape: its phases (seconds) and their :func:`~comparisons.bench.profile.summary`
    against PyTorch's float32 conv time at that shape in this run."""
    index = _index(timings)
    out = {}
    for shape, phases in profiles.items():
        torch = index.get(("conv", shape, "float32", "torch"))
        out[shape] = {"phases": phases, **summary(phases, torch.median_s if torch else None)}
    return out


def profile_markdown(profiled: dict[str, dict]) -> list[str]:
    """The "where the time goes" section: a column per profiled shape, a row per phase any of them ran."""
    if not profiled:
        return []
    shapes = list(profiled)
    lines = [
        "", "## Where the im2col time goes (conv, float32)", "",
        "Each phase of the im2col pass (`reference.conv.ChunkIm2col.phases`) timed alone, in the order a forward + "
        "backward runs it, on every chunk of the batch at once (one chunk per thread, as the layer runs them), within "
        "a chunk on each block of images in turn (`comparisons/bench/profile.py`). "
        "The three GEMMs are what any im2col on numpy's BLAS must pay: the whole pass over their sum says what the "
        "copies around them add, their sum over PyTorch's whole forward + backward how close im2col can get. "
        "A phase a shape does not run shows `-`.", "",
        "| phase | what it does | " + " | ".join(shapes) + " |",
        "|---|---|" + "---:|" * len(shapes),
    ]

    def cell(shape, phase):
        seconds = profiled[shape]["phases"].get(phase)
        return "-" if seconds is None else f"{_time(seconds)} ({seconds / profiled[shape]['sum_s']:.0%})"

    for phase, note in PHASE_NOTES.items():
        if any(phase in profiled[s]["phases"] for s in shapes):
            lines.append(f"| {phase} | {note} | " + " | ".join(cell(s, phase) for s in shapes) + " |")
    totals = (("sum of the phases", "sum_s"), ("the three GEMMs", "gemms_s"))
    for label, key in totals:
        lines.append(f"| **{label}** | | " + " | ".join(_time(profiled[s][key]) for s in shapes) + " |")
    lines.append(f"| **{WHOLE}** | measured as one call | "
                 + " | ".join(_time(profiled[s]["phases"].get(WHOLE)) for s in shapes) + " |")
    lines.append("| **whole pass / three GEMMs** | the copies' share; target at most 1.3 | "
                 + " | ".join(_fmt(profiled[s]["whole_over_gemms"], ".2f", "x") for s in shapes) + " |")
    lines.append("| **PyTorch forward + backward** | from the Timings table above | "
                 + " | ".join(_time(profiled[s]["torch_s"]) for s in shapes) + " |")
    lines.append("| **three GEMMs / PyTorch** | the best any im2col on this BLAS can reach | "
                 + " | ".join(_fmt(profiled[s]["gemms_over_torch"], ".2f", "x") for s in shapes) + " |")
    return lines


def training_markdown(training: dict[str, float]) -> list[str]:
    """The batch-1 training step section (:func:`~comparisons.bench.profile.training_steps`)."""
    if not training:
        return []
    lines = ["", "## Batch-1 training step (float32)", "",
             "One Adam step of the tutorial's CNN on one 28x28 image: forward, loss, backward, update "
             "(`comparisons/bench/profile.py`).", "", "| implementation | median |", "|---|---:|"]
    lines += [f"| {impl} | {_time(seconds)} |" for impl, seconds in training.items()]
    return lines


def _reference_threads(meta: dict) -> str:
    """The header's note on the reference im2col convolution's threads, when the run recorded them."""
    threads = meta["blas"].get("reference_threads")
    if threads is None:
        return ""
    return (f"; the reference's im2col convolution: {threads} thread{'s' if threads > 1 else ''}"
            + (" (a batch split over them, BLAS at one thread each)" if threads > 1 else ""))


def markdown(rows: list[dict], meta: dict, target_rows: list[dict], png_name: str,
             profiled: dict[str, dict] | None = None, training: dict[str, float] | None = None) -> str:
    lines = [
        "# Speed report: forward + backward, loop vs im2col vs PyTorch vs Keras",
        "",
        *([f"Label: **{meta['label']}**."] if meta.get("label") else []),
        "; ".join([f"Machine: {meta['cpus']} cores", f"numpy {meta['numpy']} ({meta['blas']['blas']}, kernel "
                   f"{meta['blas']['core']}, {meta['blas']['threads']} threads, OPENBLAS_CORETYPE="
                   f"{meta['blas']['OPENBLAS_CORETYPE'] or 'unset'})",
                   *(f"{k} {v}" for k, v in meta["frameworks"].items())]) + f"; {meta['threads']} threads each"
        + _reference_threads(meta) + ".",
        f"numpy float32 matmul ({meta['matmul_size']}x{meta['matmul_size']}) in this run: "
        f"**{meta['matmul_gflops']:.1f} GFLOP/s**. Load average before/after: "
        f"{meta['load_before']} / {meta['load_after']} (a loaded machine slows everything; compare within one run).",
        f"Mode: {'quick' if meta['quick'] else 'full'}; {meta['rounds']} samples per cell "
        f"({min(meta['rounds'], LOOP_ROUNDS)} for the loop cells, which take seconds each), each long enough to "
        "time reliably, median; implementations timed in turn, with a pause between them. "
        "Ratio to PyTorch = time / PyTorch's float32 time (< 1 is faster). Work: see "
        "`comparisons/bench/shapes.py` (pooling counts one operation per window element each way).",
        *(line for w in report_warnings(meta) for line in ("", f"**Warning: {w}.**")),
        "",
        f"![speed report]({png_name})",
        "",
        "## Targets",
        "",
        "Each target's figure as this run measured it (`n/a`: not measured in this run, e.g. PyTorch or a shape "
        "left out). One run moves by 10-20% on a shared machine: judge a target on the median of several runs.",
        "",
        "| target | measured | met |",
        "|---|---:|:---:|",
    ]
    for t in target_rows:
        met = "n/a" if t["met"] is None else ("yes" if t["met"] else "**no**")
        lines.append(f"| {t['target']} | {_fmt(t['value'], '.3g')} | {met} |")
    lines += [
        "",
        "## Timings",
        "",
        "| layer | shape | dtype | impl | median | GFLOP/s | of matmul | ratio to PyTorch | speed-up over loop |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        shape = SHAPES[r["shape"]]
        if r["skipped"]:
            continue
        lines.append(
            f"| {r['layer']} | {r['shape']}: {shape.describe(r['layer'])} | {r['dtype']} | {r['impl']} | "
            f"{_time(r['median_s'])} | {_fmt(r['gflops'], '.2f')} | {_fmt(r['matmul_fraction'], '.1%')} | "
            f"{_fmt(r['ratio_to_torch'], '.2f', 'x')} | {_fmt(r['speedup_over_loop'], '.0f', 'x')} |"
        )
    lines += profile_markdown(profiled or {})
    lines += training_markdown(training or {})
    skipped = sorted({(r["impl"], r["skipped"]) for r in rows if r["skipped"]})
    if skipped:
        lines += ["", "Not timed:", ""]
        lines += [f"- {impl}: {reason}" for impl, reason in skipped]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path, matmul_gflops: float) -> None:
    """Top: time vs work on log-log axes per layer, one line per implementation (float32).
    Bottom: time / PyTorch's time per layer and shape (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = list(dict.fromkeys(r["layer"] for r in rows))
    shapes = list(dict.fromkeys(r["shape"] for r in rows))
    palette = plt.get_cmap("tab10").colors  # one colour per implementation, in IMPLS' order
    colors = {impl: palette[i % len(palette)] for i, impl in enumerate(IMPLS)}
    fig = plt.figure(figsize=(4 * max(len(layers), 2), 9), constrained_layout=True)
    grid = fig.add_gridspec(2, len(layers))
    measured = [r for r in rows if r["median_s"] is not None and r["dtype"] == "float32"]
    for i, layer in enumerate(layers):
        ax = fig.add_subplot(grid[0, i])
        for impl in IMPLS:
            pts = sorted((r["flops"], r["median_s"]) for r in measured if r["layer"] == layer and r["impl"] == impl)
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", color=colors[impl], label=impl)
        pts = sorted({r["flops"] for r in measured if r["layer"] == layer})
        if pts and layer in ("conv", "linear"):
            ax.plot(pts, [f / (matmul_gflops * 1e9) for f in pts], "k:", label="at matmul rate")
        ax.set(xscale="log", yscale="log", title=f"{layer}: time vs work (float32)",
               xlabel="work per forward+backward (FLOP)", ylabel="median time (s)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    ax = fig.add_subplot(grid[1, :])
    groups = [(layer, shape) for layer in layers for shape in shapes]
    impls = [i for i in IMPLS if i != "torch" and any(r["impl"] == i and r["ratio_to_torch"] for r in measured)]
    width = 0.8 / max(len(impls), 1)
    for j, impl in enumerate(impls):
        found = {(r["layer"], r["shape"]): r["ratio_to_torch"] for r in measured if r["impl"] == impl}
        xs = [g for g, key in enumerate(groups) if found.get(key)]
        ax.bar([x + (j - (len(impls) - 1) / 2) * width for x in xs], [found[groups[x]] for x in xs],
               width, color=colors[impl], label=impl)
    ax.axhline(1.0, color="tab:orange", lw=1.5, label="PyTorch = 1")
    ax.set_xticks(range(len(groups)), [f"{layer}\n{shape}" for layer, shape in groups], fontsize=8)
    ax.set(yscale="log", ylabel="time / PyTorch time (log)",
           title="Ratio to PyTorch, float32 forward+backward (below 1: faster than PyTorch)")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=len(impls) + 1)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(timings: list[Timing], meta: dict, out: Path, profiles: dict[str, dict[str, float]] | None = None,
          training: dict[str, float] | None = None) -> dict[str, Path]:
    """Write ``bench.md``, ``bench.json`` and ``bench.png`` into ``out``; return their paths.
    ``profiles``: :func:`~comparisons.bench.profile.conv_phases` results by shape name; ``training``:
    :func:`~comparisons.bench.profile.training_steps`."""
    out.mkdir(parents=True, exist_ok=True)
    rows = derived(timings, meta["matmul_gflops"])
    profiled = profile_rows(profiles or {}, timings)
    target_rows = targets(rows, profiled, training)
    paths = {"md": out / "bench.md", "json": out / "bench.json", "png": out / "bench.png"}
    plot(rows, paths["png"], meta["matmul_gflops"])
    paths["md"].write_text(markdown(rows, meta, target_rows, paths["png"].name, profiled, training))
    paths["json"].write_text(json.dumps({"meta": meta, "warnings": report_warnings(meta), "targets": target_rows,
                                         "timings": rows, "profile": profiled, "training_step": training or {}},
                                        indent=2) + "\n")
    return paths
