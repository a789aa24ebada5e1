"""``cnnref diff --torch model.pt --keras model.keras``: run both on the same input layer by layer and print where
they first disagree.

Prints the per-layer table of :func:`comparisons.port.compare_models` and the first divergence. Exit code 0 when
the models agree, 1 when they disagree (in a layer's output or gradients, or in structure), 2 on bad input.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .command import add_model_arguments, load_model

PURPOSE = "compare"  # float64-capable, deterministic kernels (comparisons.frameworks)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--batch", type=int, default=2, metavar="N", help="images in the input batch (default 2)")
    parser.add_argument("--grads", action="store_true",
                        help="compare the parameter gradients too (training mode; dropout must be p=0)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the standard-normal input (default 0)")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="write the table as Markdown")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the report as JSON")


def run(args: argparse.Namespace) -> int:
    from comparisons.port import compare_models, framework_port

    if args.torch is None or args.keras is None:
        raise SystemExit("cnnref diff: give both --torch FILE and --keras FILE")
    if args.batch < 1:
        raise SystemExit(f"cnnref diff: --batch must be at least 1, got {args.batch}")
    torch_model = load_model("torch", args.torch, args.trust_pickle, "diff")
    keras_model = load_model("keras", args.keras, args.trust_pickle, "diff")
    shape = args.input_shape or framework_port("keras").input_shape(keras_model)
    x = np.random.default_rng(args.seed).standard_normal((args.batch, *shape))
    report = compare_models(torch_model, keras_model, x, grads=args.grads)
    text = report.to_markdown()
    print(text, end="")
    if args.markdown:
        args.markdown.write_text(text)
    if args.json:
        args.json.write_text(report.to_json() + "\n")
    return 0 if report.agree else 1
