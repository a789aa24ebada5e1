"""``cnnref bench``: time every layer, shape and implementation in one process, write the report.

``--quick`` (under a minute): float32 only, fewer rounds, the loop only at the two
smallest shapes. The full run adds the reference in float64 and the loop wherever it
finishes in seconds (see ``LOOP_MAX_FLOPS`` in :mod:`comparisons.bench.shapes`).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

import reference
from comparisons import frameworks

from .blas import blas_info, set_blas_threads
from .measure import (
    IMPLS,
    LOOP_ROUNDS,
    REFERENCE_IMPLS,
    THREADS_VAR,
    Timing,
    Unavailable,
    make_step,
    matmul_rate,
    time_steps,
)
from .profile import PROFILE_SHAPES, conv_phases, training_steps
from .report import profile_rows, targets, threads_warning, write
from .shapes import DTYPES, LAYERS, SHAPES

PURPOSE = "time"  # the frameworks run as their users get them (comparisons.frameworks)

QUICK_LOOP_SHAPES = ("tutorial", "batch64")


def positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container or ``taskset`` can narrow
    below ``os.cpu_count()``)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("reports"), help="directory for bench.md/.json/.png")
    parser.add_argument("--quick", action="store_true", help="float32 only, fewer rounds: under a minute")
    parser.add_argument("--threads", type=positive_int, default=2,
                        help="threads for numpy's BLAS, PyTorch, TensorFlow and Keras on each backend (XLA: one or "
                             "every core); more than the usable cores: a warning, on stderr and in the report")
    parser.add_argument("--layers", nargs="+", choices=LAYERS, default=list(LAYERS))
    parser.add_argument("--shapes", nargs="+", choices=list(SHAPES), default=list(SHAPES))
    parser.add_argument("--impls", nargs="+", choices=IMPLS, default=list(IMPLS))
    parser.add_argument("--rounds", type=positive_int, default=None, help="samples per cell (default 9, quick 7)")
    parser.add_argument("--label", help="a name for this run, stored in the report and shown by --compare")
    parser.add_argument("--compare", nargs="+", type=Path, metavar="BENCH_JSON_OR_FOLDER",
                        help="compare these bench.json files, or folders of several runs each (the first is the "
                             "baseline), instead of timing: writes "
                             "compare.md, compare.json and compare.png into --out; exit 1 when a cell is slower")
    parser.add_argument("--min-effect", type=float, default=0.10,
                        help="with --compare: the smallest change called faster or slower (default 0.10: 10%%)")
    parser.add_argument("--runs", type=positive_int, default=1,
                        help="time the whole report this many times, each in a fresh process, into OUT/run1 ... "
                             "(a folder --compare reads as one side: runs differ more than one run's samples show)")


# options of one run that --runs does not pass on to each run it starts
NOT_PASSED_ON = {"help", "out", "runs", "compare", "min_effect"}


def run_arguments(args: argparse.Namespace, out: Path) -> list[str]:
    """The command line of one of ``--runs``' runs: every option of ``args`` as given, but ``--out``."""
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    argv = ["bench", "--out", str(out)]
    for action in parser._actions:
        value = getattr(args, action.dest, None)
        if action.dest in NOT_PASSED_ON or value is None or value is False:
            continue
        flag = action.option_strings[0]
        if value is True:
            argv.append(flag)
        elif isinstance(value, list):
            argv += [flag, *map(str, value)]
        else:
            argv += [flag, str(value)]
    return argv


def run_repeated(args: argparse.Namespace) -> int:
    """``--runs N``: N reports, each from a fresh process (what differs between runs is mostly the process's
    state), into ``OUT/run1`` ... ``OUT/runN``; stops at the first that fails, with its exit code."""
    for i in range(1, args.runs + 1):
        out = args.out / f"run{i}"
        print(f"cnnref bench: run {i} of {args.runs} -> {out}", file=sys.stderr, flush=True)
        code = subprocess.run([sys.executable, "-m", "comparisons.cli", *run_arguments(args, out)]).returncode
        if code:
            return code
    print(f"{args.runs} runs in {args.out}; compare them as one side: cnnref bench --compare {args.out} OTHER")
    return 0


def _framework_versions(impls: list[str]) -> dict[str, str]:
    """The package versions of every framework timed (an unavailable one is left out)."""
    versions = {}
    for name in frameworks.NAMES:
        if name in impls:
            try:
                versions.update(frameworks.load(name).versions)
            except frameworks.FrameworkUnavailable:
                pass
    return versions


def measure_all(layers, shapes, impls, dtypes, threads, rounds, min_sample_s, loop_shapes, progress=None):
    """Time every cell: for each (layer, shape, dtype), every implementation in turn."""
    timings = []
    for layer in layers:
        for name in shapes:
            shape = SHAPES[name]
            for dtype in dtypes:
                steps, cells = {}, {}
                for impl in impls:
                    if dtype != "float32" and impl not in REFERENCE_IMPLS:
                        continue
                    cell = Timing(layer, name, dtype, impl, shape.flops(layer))
                    cells[impl] = cell
                    try:
                        if impl == "loop" and name not in loop_shapes:
                            raise Unavailable("loop not timed at this shape in this mode (--quick: smallest shapes)")
                        steps[impl] = make_step(layer, shape, impl, dtype, threads)
                    except Unavailable as exc:
                        cell.skipped = str(exc)
                if steps:
                    samples = time_steps(steps, rounds, min_sample_s, {"loop": min(rounds, LOOP_ROUNDS)})
                    for impl, times in samples.items():
                        if times.skipped is not None:  # timed in another process, and it failed there
                            cells[impl].skipped = times.skipped
                            continue
                        cells[impl].median_s = float(np.median(times))
                        cells[impl].min_s = float(np.min(times))
                        cells[impl].samples = len(times)
                        cells[impl].calls_per_sample = times.calls
                        cells[impl].times = [float(t) for t in times]
                timings.extend(cells.values())
                if progress is not None:
                    progress.update(1)
    return timings


def run(args: argparse.Namespace) -> int:
    if args.compare:
        from .compare import run_compare

        return run_compare(args.compare, args.out, args.min_effect)
    if args.runs > 1:
        return run_repeated(args)
    quick = args.quick
    rounds = args.rounds if args.rounds is not None else (7 if quick else 9)
    dtypes = ["float32"] if quick else list(DTYPES)
    cores = available_cores()
    oversubscribed = threads_warning(args.threads, cores)
    if oversubscribed:
        print(f"cnnref bench: warning: {oversubscribed}", file=sys.stderr, flush=True)
    set_blas_threads(args.threads)
    reference.set_num_threads(args.threads)  # the threads im2col splits a batch over
    # the frameworks timed in their own processes (the Keras backends' workers) size their pools from it at start
    os.environ[THREADS_VAR] = str(args.threads)
    load_before = [round(v, 2) for v in os.getloadavg()]
    matmul_size = 2048
    matmul_gflops = matmul_rate(matmul_size, rounds)
    cells = len(args.layers) * len(args.shapes) * len(dtypes)
    try:
        from tqdm import tqdm

        progress = tqdm(total=cells, desc="cnnref bench", unit="cell", file=sys.stderr)
    except ImportError:
        progress = None
    loop_shapes = QUICK_LOOP_SHAPES if quick else tuple(SHAPES)
    timings = measure_all(args.layers, args.shapes, args.impls, dtypes, args.threads, rounds,
                          0.03 if quick else 0.05, loop_shapes, progress)
    if progress is not None:
        progress.close()
    profiles = {}
    if "conv" in args.layers and "im2col" in args.impls:
        for name in (s for s in PROFILE_SHAPES if s in args.shapes):
            profiles[name] = conv_phases(SHAPES[name], "float32", rounds, 0.03 if quick else 0.05)
    # the batch-1 training step target: the reference's im2col model against PyTorch
    training = {}
    if "conv" in args.layers and {"im2col", "torch"} <= set(args.impls):
        training = training_steps(args.threads, rounds, 0.03 if quick else 0.05)
    # the matmul rate again at the end: the report uses the larger of the two readings
    matmul_gflops = max(matmul_gflops, matmul_rate(matmul_size, rounds))
    meta = {
        "label": args.label,
        "quick": quick,
        "rounds": rounds,
        "threads": args.threads,
        "cpus": os.cpu_count(),
        "cores_available": cores,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas_info(),
        "frameworks": _framework_versions(args.impls),
        # the environment each framework was imported with, in its own worker process for some (comparisons.frameworks:
        # chosen per purpose)
        "framework_settings": {name: frameworks.process_settings(name, "time")
                               for name in frameworks.NAMES if name in args.impls},
        "matmul_size": matmul_size,
        "matmul_gflops": matmul_gflops,
        "load_before": load_before,
        "load_after": [round(v, 2) for v in os.getloadavg()],
    }
    paths = write(timings, meta, args.out, profiles, training)
    from .report import derived

    for t in targets(derived(timings, matmul_gflops), profile_rows(profiles, timings), training):
        status = "n/a" if t["met"] is None else ("met" if t["met"] else "MISSED")
        value = "-" if t["value"] is None else f"{t['value']:.3g}"
        print(f"{status:6s} {t['target']}: {value}")
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
