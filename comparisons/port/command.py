"""``cnnref port``: port a saved model between PyTorch and Keras.

``cnnref port --torch model.pt --to keras --out model.keras --input-shape C,H,W --trust-pickle`` and
``cnnref port --keras model.keras --to torch --out model.pt``. A ``model.pt`` is a whole module saved with
``torch.save``: a pickle, so loading it runs code stored in the file, and the command asks for ``--trust-pickle``.
Exit code 0 when the model is ported, 2 on bad input (a layer that cannot be ported exactly is named, with the
reason).
"""

from __future__ import annotations

import argparse
from pathlib import Path

PURPOSE = "compare"  # float64-capable, deterministic kernels (comparisons.frameworks)
FRAMEWORKS = ("torch", "keras")


def input_shape_arg(text: str) -> tuple[int, int, int]:
    """``"C,H,W"`` -> ``(C, H, W)``, three positive ints."""
    try:
        dims = tuple(int(part) for part in text.split(","))
    except ValueError:
        dims = ()
    if len(dims) != 3 or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"expected C,H,W (three positive ints), got {text!r}")
    return dims


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--torch``, ``--keras``, ``--trust-pickle``, ``--input-shape``: what ``port`` and ``diff`` share."""
    parser.add_argument("--torch", type=Path, metavar="FILE", help="a whole nn.Sequential saved with torch.save")
    parser.add_argument("--keras", type=Path, metavar="FILE", help="a keras.Sequential saved with model.save (.keras)")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="allow loading the --torch file: torch.save writes a pickle, and loading it runs code "
                             "stored in the file; pass this only for files you trust")
    parser.add_argument("--input-shape", type=input_shape_arg, metavar="C,H,W",
                        help="one input image, channels first (a Keras model's own input shape by default)")


def load_model(framework: str, path: Path, trust_pickle: bool, command: str):
    """The model saved at ``path`` by ``framework``; SystemExit (a usage error) for a missing file or a torch
    pickle without ``--trust-pickle``."""
    from comparisons.port import framework_port

    if not path.is_file():
        raise SystemExit(f"cnnref {command}: --{framework} {path}: no such file")
    port = framework_port(framework)
    if framework == "torch" and not trust_pickle:
        raise SystemExit(f"cnnref {command}: --torch {path}: {port.PICKLE_WARNING}; pass --trust-pickle to load it")
    return port.load(path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--to", required=True, choices=FRAMEWORKS, help="the framework to port to")
    parser.add_argument("--out", dest="output_model", required=True, type=Path, metavar="FILE",
                        help="where to save the ported model (.keras for Keras, torch.save for PyTorch)")
    parser.add_argument("--dtype", choices=("float32", "float64"), help="the ported model's dtype (default: the "
                                                                         "source's)")


def run(args: argparse.Namespace) -> int:
    from comparisons import port

    sources = [name for name in FRAMEWORKS if getattr(args, name) is not None]
    if len(sources) != 1:
        raise SystemExit("cnnref port: give exactly one of --torch FILE, --keras FILE")
    source = sources[0]
    if source == args.to:
        raise SystemExit(f"cnnref port: the model is already a {source} model (--to {args.to})")
    if args.to == "keras" and not str(args.output_model).endswith(".keras"):
        raise SystemExit(f"cnnref port: --out must end in .keras for Keras, got {args.output_model}")
    if source == "torch" and args.input_shape is None:
        raise SystemExit("cnnref port: --input-shape C,H,W is needed to port a PyTorch model to Keras (Keras models "
                         "are built for an input shape)")
    model = load_model(source, getattr(args, source), args.trust_pickle, "port")
    if source == "torch":
        ported = port.torch_to_keras(model, args.input_shape, args.dtype)
    else:
        ported = port.keras_to_torch(model, args.dtype)
    port.framework_port(args.to).save(ported, args.output_model)
    print(f"cnnref port: {source} -> {args.to}: {len(port.framework_port(args.to).read(ported))} layers, "
          f"saved {args.output_model}; check it with: cnnref diff --torch ... --keras ...")
    return 0
