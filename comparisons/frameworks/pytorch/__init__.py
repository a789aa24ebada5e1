"""PyTorch (``torch.nn`` on the CPU): :mod:`.model` builds and runs a case's model with the reference's
parameters, :mod:`.trainer` trains it, :mod:`.timing` times a layer, :mod:`.port` reads and builds
whole models. Nothing here imports torch until
its entry's ``load()``."""

from __future__ import annotations

from comparisons.frameworks import Entry


def _environment(purpose: str) -> dict[str, tuple[str, str]]:
    """PyTorch reads no environment setting that matters here (threads are set per use, in :mod:`.timing`)."""
    return {}


def _load():
    import torch

    from ..protocol import Framework
    from . import model, port, timing, trainer

    return Framework(name="torch", version=torch.__version__, versions={"torch": torch.__version__},
                     unsupported=model.unsupported, reference_case=model.reference_case, run=model.run,
                     trainer=trainer.TorchTrainer, bench_step=timing.bench_step, set_threads=torch.set_num_threads,
                     port=port)


ENTRIES = (Entry("torch", ("torch",), _environment, _load),)
