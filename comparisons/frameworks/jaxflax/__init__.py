"""JAX with Flax NNX on the CPU: :mod:`.capability` (shapes through a case, the reference conventions JAX
computes), :mod:`.layers` (the layers Flax lacks, written with ``jax.lax`` / ``jax.numpy``), :mod:`.losses`
(PyTorch's cross-entropy options by hand on ``jax.nn.log_softmax``), :mod:`.model` (a case's model with the
reference's parameters, differentiated with ``jax.vjp``), :mod:`.trainer` (optax), :mod:`.timing`. Nothing
here imports JAX until its entry's ``load()``."""

from __future__ import annotations

from comparisons.frameworks import Entry


def _environment(purpose: str) -> dict[str, tuple[str, str]]:
    """The variables JAX reads when imported; the same for both purposes (float32 code stays float32 with
    x64 on, and one process may then verify and train without a settings conflict)."""
    return {"JAX_ENABLE_X64": ("1", "float64 arrays: without it JAX silently computes float64 cases in float32"),
            "JAX_PLATFORMS": ("cpu", "the CPU backend only: no probe for accelerators, no GPU/TPU warning"),
            "TF_CPP_MIN_LOG_LEVEL": ("3", "XLA's C++ log lines are not results")}


def _load():
    import flax
    import jax
    import optax

    from ..protocol import Framework
    from . import capability, model, timing, trainer

    return Framework(name="jax", version=f"jax {jax.__version__} / flax {flax.__version__}",
                     versions={"jax": jax.__version__, "flax": flax.__version__, "optax": optax.__version__},
                     unsupported=capability.unsupported, reference_case=capability.reference_case, run=model.run,
                     trainer=trainer.FlaxTrainer, bench_step=timing.bench_step,
                     dtype_reason=capability.dtype_reason)


ENTRIES = (Entry("jax", ("jax", "flax", "optax"), _environment, _load),)
