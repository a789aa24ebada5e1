"""``cnnref train``: train the tutorial's CNN on MNIST in the reference, PyTorch or Keras.

Every framework starts from the same initial weights (the reference's, drawn from
``--seed``, converted with :mod:`comparisons.layouts`) and sees the same batches in the
same order (a permutation per epoch drawn from ``--seed``); inputs are ``image / 255`` in
``--dtype``. The training set is the first ``--train-samples`` images (54,000: Keras'
``validation_split=0.1`` keeps the last 10% aside). ``--steps N`` stops training after N
steps (fewer than ``--epochs`` would run) and evaluates the model as it is then. ``--compare``
times ``--steps`` steps (default 2000) of each framework side by side and reports how far
their losses are from the reference's.

A run whose loss ended far above where it started (the mean of its last 100 steps, or of all but the
first in a shorter run, more than twice its first step's loss: see :func:`loss_warnings`) is flagged:
on the printed line after ``WARNING:`` and in the JSON's ``"warnings"`` list (empty when none).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reference.data import DATASETS, load_dataset

from . import frameworks
from .cases import PLAIN_CROSS_ENTROPY, Case, build_reference, tutorial_cnn_specs
from .trainers import OPTIMIZERS, make_trainer

PURPOSE = "time"  # the frameworks run as their users get them (comparisons.frameworks)

DEFAULT_LR = {"adam": 1e-3, "sgd": 1e-2}
INITS = ("glorot", "torch")
COMPARE_WARMUP = 50  # steps run before --compare starts its clock
COMPARE_STEPS = 2000  # steps per framework for --compare without --steps
LOSS_WINDOW = 100  # steps averaged at the end of a run to tell whether it diverged (loss_warnings)
DIVERGED_FACTOR = 2.0  # ... when that mean is more than this times the first step's loss
# The default seed: of seeds 0-19 trained with the tutorial's settings, the one with the best accuracy on
# Keras' validation split (the 6,000 training images not trained on; 98.15%). The test set played no
# part. Any seed: 97.45% +- 0.27% test accuracy (mean, sd over seeds 0-19), as in Keras (README).
DEFAULT_SEED = 9


def tutorial_case(seed: int) -> Case:
    """The tutorial CNN on one ``(1, 28, 28)`` image per sample, weights drawn from ``seed``."""
    return Case("TutorialCNN", "tutorial-cnn-train", tutorial_cnn_specs(), (1, 1, 28, 28),
                loss=PLAIN_CROSS_ENTROPY, seed=seed)


def initial_params(case: Case, dtype: str, init: str = "glorot") -> dict[str, np.ndarray]:
    """Initial parameters for ``case`` drawn from ``case.seed``, as plain arrays.

    ``init="torch"``: the reference layers' own draw (PyTorch's default,
    ``U(+-1/sqrt(fan_in))`` for weights and biases). ``init="glorot"``: Keras' default, which
    the tutorial's Keras model used: weights ``U(+-sqrt(6/(fan_in+fan_out)))`` with the
    receptive field counted in both fans, biases zero.
    """
    if init not in INITS:
        raise ValueError(f"initial_params: init must be one of {INITS}, got {init!r}")
    params = {k: np.array(v) for k, v in build_reference(case, "im2col", dtype).params.items()}
    if init == "glorot":
        rng = np.random.default_rng([case.seed, 2])
        for key, value in params.items():
            if key.endswith("bias"):
                value[...] = 0
                continue
            receptive = int(np.prod(value.shape[2:]))  # conv (F, C, kh, kw); linear (in, out) has none
            fan_in, fan_out = ((value.shape[1] * receptive, value.shape[0] * receptive) if value.ndim == 4
                               else value.shape)
            bound = np.sqrt(6.0 / (fan_in + fan_out))
            value[...] = rng.uniform(-bound, bound, value.shape)
    return params


def epoch_orders(n: int, epochs: int, seed: int) -> list[np.ndarray]:
    """One permutation of ``range(n)`` per epoch, from ``seed`` (independent of the weights' stream)."""
    rng = np.random.default_rng([seed, 1])
    return [rng.permutation(n) for _ in range(epochs)]


def scaled(images: np.ndarray, dtype: str) -> np.ndarray:
    """``uint8 (N, H, W)`` -> ``(N, 1, H, W)`` in ``dtype``, ``image / 255``."""
    return np.divide(images[:, np.newaxis], 255, dtype=dtype)


@dataclass
class TrainResult:
    """Per-step losses, and totals over the run (timing excludes data loading and evaluation)."""

    losses: list[float] = field(default_factory=list)
    correct: int = 0
    seen: int = 0
    stamps: list[float] = field(default_factory=list)  # clock start, then the time after each timed step

    @property
    def steps(self) -> int:
        return len(self.losses)

    @property
    def seconds(self) -> float:
        return self.stamps[-1] - self.stamps[0] if self.stamps else 0.0

    @property
    def seconds_per_step(self) -> float:
        return self.seconds / max(len(self.stamps) - 1, 1)

    def median_seconds_per_step(self, chunks: int = 5) -> float:
        """Median over ``chunks`` equal runs of steps: robust to a burst of load from other processes."""
        stamps = np.array(self.stamps)
        edges = np.linspace(0, len(stamps) - 1, min(chunks, len(stamps) - 1) + 1).astype(int)
        return float(np.median(np.diff(stamps[edges]) / np.diff(edges)))


def train(trainer, images: np.ndarray, labels: np.ndarray, orders: list[np.ndarray], batch_size: int, dtype: str,
          max_steps: int | None = None, progress: bool = False, warmup: int = 0) -> TrainResult:
    """Run ``trainer.step`` over ``orders`` in batches; ``images`` uint8 ``(N, H, W)``, ``labels (N,)`` int64.

    The clock starts after ``warmup`` steps (tracing, first-touch allocations).
    """
    result = TrainResult()
    total = sum(planned_steps(len(o), batch_size, 1) for o in orders)
    total = total if max_steps is None else min(total, max_steps)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="step", desc=trainer.name, mininterval=0.5)
    for order in orders:
        for s in range(0, len(order), batch_size):
            if result.steps == total:
                break
            if result.steps == warmup:
                result.stamps.append(time.perf_counter())
            idx = order[s:s + batch_size]
            loss, correct = trainer.step(scaled(images[idx], dtype), labels[idx])
            if not math.isfinite(loss):
                raise ValueError(f"the loss is {loss} at step {result.steps + 1} of {trainer.name}: training "
                                 f"diverged (is the learning rate too large?)")
            result.losses.append(loss)
            result.correct += correct
            result.seen += len(idx)
            if result.stamps:
                result.stamps.append(time.perf_counter())
            if bar is not None:
                bar.update()
                if result.steps % 1000 == 0:
                    recent = result.losses[-1000:]
                    bar.set_postfix(loss=f"{sum(recent) / len(recent):.4f}",
                                    acc=f"{result.correct / result.seen:.4f}", refresh=False)
    if bar is not None:
        bar.close()
    return result


def loss_warnings(losses: list[float], lr: float) -> list[str]:
    """The divergence rule: a run is flagged when the mean loss of its last ``w`` steps is more than
    :data:`DIVERGED_FACTOR` times the loss of its first step, ``w`` = :data:`LOSS_WINDOW` steps, or all the
    steps after the first when the run is shorter (a run of one step is not judged). Returns the warning, or
    nothing.

    The first step's loss is the initial weights' (computed before the first update): where the run started.
    A window at the start would not do: a diverging run jumps within a step or two (to 1e15 at ``--lr 1e6``)
    and then settles lower while staying huge, so an early window averages that jump in and hides the
    divergence. A loss can stay finite all the while (4e12 at ``--lr 1e6``): the accuracy reported is then
    that of a broken model, not of training."""
    window = min(LOSS_WINDOW, len(losses) - 1)
    if window < 1:
        return []
    first, last = float(losses[0]), float(np.mean(losses[-window:]))
    if not last > DIVERGED_FACTOR * first:
        return []
    return [f"training diverged: mean loss {last:.4g} over the last {window} steps > {DIVERGED_FACTOR:g} x "
            f"{first:.4g}, the first step's (is --lr {lr:g} too large?); the accuracy is that of a broken model"]


def evaluate(trainer, images: np.ndarray, labels: np.ndarray, dtype: str, batch: int = 1000) -> float:
    """Accuracy of ``trainer.predict`` on uint8 ``images (N, H, W)``."""
    correct = 0
    for s in range(0, len(images), batch):
        scores = trainer.predict(scaled(images[s:s + batch], dtype))
        correct += int((np.asarray(scores).argmax(axis=1) == labels[s:s + batch]).sum())
    return correct / len(images)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=int, default=1, help="passes over the training images (default 1)")
    parser.add_argument("--batch-size", type=int, default=1, help="images per step (default 1, the tutorial's)")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="default adam (the tutorial's)")
    parser.add_argument("--lr", type=float, default=None, help="default: 1e-3 for adam, 1e-2 for sgd")
    parser.add_argument("--impl", choices=("im2col", "loop"), default=None,
                        help="the reference's conv/pool kernels (default im2col; --framework reference only)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"initial weights and data order (default {DEFAULT_SEED}: the best validation accuracy "
                             "of seeds 0-19, see the README)")
    parser.add_argument("--init", choices=INITS, default="glorot",
                        help="initial weights: Keras' default (glorot, zero biases; the tutorial's) or PyTorch's")
    parser.add_argument("--dataset", choices=DATASETS, default="mnist", help="default mnist")
    parser.add_argument("--data-dir", default=None,
                        help="folder with the four IDX files (.gz or raw); default: $CNNREF_DATA_DIR, then "
                             "~/.cache/cnnref/<dataset> (downloaded there when missing)")
    parser.add_argument("--train-samples", type=int, default=54000,
                        help="train on the first N images (54000: Keras' validation_split=0.1)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="default float32")
    parser.add_argument("--framework", choices=("reference", *frameworks.NAMES), default="reference",
                        help="train in this framework from the same weights and order (default reference)")
    parser.add_argument("--json", metavar="PATH", default=None, help="write the results as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--compare", action="store_true",
                        help="time --steps steps of the reference and every framework side by side instead of training")
    parser.add_argument("--steps", type=int, default=None,
                        help="stop training after this many steps, then evaluate (default: all of --epochs); "
                             f"with --compare, the steps per framework (default {COMPARE_STEPS})")


def _check_args(args: argparse.Namespace) -> None:
    """The numeric flags, before anything is loaded."""
    for name in ("epochs", "batch_size", "train_samples", "steps"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise SystemExit(f"cnnref train: --{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.seed < 0:
        raise SystemExit(f"cnnref train: --seed must be >= 0, got {args.seed}")
    if args.lr is not None and not 0 < args.lr < math.inf:
        raise SystemExit(f"cnnref train: --lr must be a finite number > 0, got {args.lr}")


def _check_data(args: argparse.Namespace, data) -> None:
    """The data against the flags and the tutorial CNN: 28x28 images, a test set."""
    if args.train_samples > len(data.train_images):
        raise SystemExit(f"cnnref train: --train-samples must be <= {len(data.train_images)} (the training set), "
                         f"got {args.train_samples}")
    for split, images, labels in (("train", data.train_images, data.train_labels),
                                  ("test", data.test_images, data.test_labels)):
        if images.shape[1:] != (28, 28):
            raise SystemExit(f"cnnref train: the tutorial CNN takes 28x28 images; the {split} images in "
                             f"{data.directory} are {images.shape[1]}x{images.shape[2]}")
        if not len(labels):
            raise SystemExit(f"cnnref train: the {split} set in {data.directory} is empty")
        # labels 0-9: reference.load_dataset refuses others


def planned_steps(n_images: int, batch_size: int, epochs: int, max_steps: int | None = None) -> int:
    """Steps of ``epochs`` passes over ``n_images`` in batches (the last one may be short), at most ``max_steps``."""
    total = epochs * -(-n_images // batch_size)
    return total if max_steps is None else min(total, max_steps)


def compare(args, case, params, images, labels, lr) -> tuple[list[dict], int]:
    """``--steps`` steps (default :data:`COMPARE_STEPS`) per framework (fewer when the data and flags give
    fewer: the count run is returned with the rows) from the same weights and order: seconds/step (median of
    five chunks) and how far each framework's per-step losses are from the reference's."""
    orders = epoch_orders(len(images), args.epochs, args.seed)
    steps = planned_steps(len(images), args.batch_size, args.epochs, args.steps or COMPARE_STEPS)
    if steps < 2:
        raise SystemExit(f"cnnref train --compare: needs at least 2 steps to time, the data and flags give {steps}")
    rows, losses = [], {}
    impl = {"impl": args.impl or "im2col"}
    runs, against = [("reference", "reference", impl)], {}
    for name in frameworks.NAMES:
        try:
            fw = frameworks.load(name)
        except frameworks.FrameworkUnavailable as exc:
            rows.append({"framework": name, "skipped": str(exc)})
            continue
        if not fw.gradients:
            rows.append({"framework": name, "skipped": "computes the forward pass only: nothing to train"})
            continue
        adam = fw.reference_adam if args.optimizer == "adam" else {}
        # a framework whose Adam differs from PyTorch's (Keras: eps before the bias correction) is compared with
        # the reference computing that Adam
        against[name] = f"reference ({name}'s Adam)" if adam else "reference"
        runs += [(name, name, None)] + ([("reference", against[name], {**impl, **adam})] if adam else [])
    for framework, label, options in runs:
        trainer = make_trainer(framework, case, params, args.dtype, args.optimizer, lr, **(options or {}))
        result = train(trainer, images, labels, orders, args.batch_size, args.dtype, max_steps=steps,
                       warmup=min(COMPARE_WARMUP, steps // 2))
        losses[label] = np.array(result.losses)
        rows.append({"framework": label, "steps": result.steps, "seconds_per_step": result.median_seconds_per_step()})
    for row in rows:
        other = against.get(row["framework"])
        if other in losses and row["framework"] in losses:
            a, b = losses[row["framework"]], losses[other]
            row["max_loss_rel_diff"] = float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-300)))
    return rows, steps


def _print_compare(rows: list[dict], args, steps: int) -> None:
    print(f"{steps} steps, batch {args.batch_size}, {args.optimizer}, {args.dtype}")
    print(f"{'framework':<24} {'ms/step':>9} {'max rel loss diff vs reference':>32}")
    for row in rows:
        if "skipped" in row:
            print(f"{row['framework']:<24} skipped: {row['skipped']}")
            continue
        diff = f"{row['max_loss_rel_diff']:.2e}" if "max_loss_rel_diff" in row else "-"
        print(f"{row['framework']:<24} {row['seconds_per_step'] * 1e3:>9.3f} {diff:>32}")


def _extent(args: argparse.Namespace, steps: int) -> str:
    """How much of the data a run saw: its epochs, or its steps when ``--steps`` stopped it early."""
    planned = planned_steps(args.train_samples, args.batch_size, args.epochs)
    if steps < planned:
        return f"{steps} steps (--steps {args.steps}; {args.epochs} epoch(s) would be {planned})"
    return f"{args.epochs} epoch(s)"


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    if args.impl is not None and args.framework != "reference":
        raise SystemExit(f"cnnref train: --impl chooses the reference's kernels; it does not apply to "
                         f"--framework {args.framework}")
    if args.compare and args.framework != "reference":
        raise SystemExit("cnnref train: --compare runs the reference and every framework; drop --framework")
    data = load_dataset(args.dataset, args.data_dir)
    _check_data(args, data)
    lr = DEFAULT_LR[args.optimizer] if args.lr is None else args.lr
    images, labels = data.train_images[:args.train_samples], data.train_labels[:args.train_samples].astype(np.int64)
    case = tutorial_case(args.seed)
    params = initial_params(case, args.dtype, args.init)
    if args.compare:
        rows, steps = compare(args, case, params, images, labels, lr)
        _print_compare(rows, args, steps)
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            with open(args.json, "w") as f:
                json.dump({"compare": rows, "steps": steps, "batch_size": args.batch_size,
                           "optimizer": args.optimizer, "dtype": args.dtype}, f, indent=2)
        return 0
    options = {"impl": args.impl or "im2col"} if args.framework == "reference" else {}
    try:
        trainer = make_trainer(args.framework, case, params, args.dtype, args.optimizer, lr, **options)
    except frameworks.FrameworkUnavailable as exc:
        raise SystemExit(f"cnnref train: {exc}") from exc
    orders = epoch_orders(len(images), args.epochs, args.seed)
    result = train(trainer, images, labels, orders, args.batch_size, args.dtype, max_steps=args.steps,
                   progress=not args.no_progress)
    accuracy = evaluate(trainer, data.test_images, data.test_labels.astype(np.int64), args.dtype)
    held_out = slice(args.train_samples, None)  # Keras' validation split: the images not trained on
    validation = (evaluate(trainer, data.train_images[held_out], data.train_labels[held_out].astype(np.int64),
                           args.dtype) if args.train_samples < len(data.train_images) else None)
    warnings = loss_warnings(result.losses, lr)
    summary = {
        "framework": args.framework, "dataset": args.dataset, "test_accuracy": accuracy,
        "validation_accuracy": validation, "warnings": warnings, "epochs": args.epochs, "max_steps": args.steps,
        "batch_size": args.batch_size, "optimizer": args.optimizer, "lr": lr, "dtype": args.dtype,
        "seed": args.seed, "init": args.init, "train_samples": len(images), "steps": result.steps,
        "seconds_per_step": result.seconds_per_step, "seconds_total": result.seconds,
        "train_accuracy": result.correct / result.seen, "final_loss_1000": float(np.mean(result.losses[-1000:])),
        "data_dir": str(data.directory),
    }
    held = "" if validation is None else f" (validation {validation:.4f})"
    flagged = "".join(f"; WARNING: {w}" for w in warnings)
    print(f"{args.framework}: {args.dataset} test accuracy {accuracy:.4f}{held} after {_extent(args, result.steps)} "
          f"of {len(images)} images, batch {args.batch_size}, {args.optimizer} lr {lr:g}, {args.dtype}; "
          f"{result.seconds_per_step * 1e3:.3f} ms/step ({result.seconds:.1f} s){flagged}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)
    return 0
