"""What the PyTorch framework (:mod:`comparisons.frameworks.pytorch`) assumes of PyTorch, and what the shared
case matrix cannot show against it: inverted dropout, the unbiased running variance, the cross-entropy of an
all-ignored batch (nan), and the pooling tie rules and indices on tied inputs.

The cross-entropy and pooling options themselves are in the shared case matrix (``cases.option_cases``, run by
``tests/comparisons/test_matrix.py`` and ``cnnref verify``) on random inputs; here the pools run on inputs
drawn from {0, 1}, where most windows hold tied maxima and the first-maximum rule decides.

Tolerance: ``harness.tolerance(dtype, K)`` (``4 * eps * K``), ``K`` the longest sum behind a value:
the softmax's ``C`` terms plus the reduction's positions for the loss, the window size for
pooling (the input size bounds it).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import reference as ref
from comparisons import cases, harness
from comparisons.cases_options import (
    POOL2D_OPTIONS,
    POOL_OPTIONS,
    CrossEntropyOption,
)
from reference import adaptive, max_rel_error, softmax_cross_entropy

pytestmark = pytest.mark.torch
DTYPES = ["float64", "float32"]


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_torch_dropout_is_inverted_dropout(p, torch_framework):
    """What the adapter's fixed-mask dropout assumes: nn.Dropout scales kept elements by 1/(1-p) and is the
    identity in eval mode."""
    import torch

    x = torch.from_numpy(np.random.default_rng(0).uniform(1, 2, (50, 40)))  # no element is 0
    layer = torch.nn.Dropout(p)
    torch.manual_seed(0)
    out = layer(x)
    kept = out != 0
    assert 0 < int(kept.sum()) < x.numel()
    # PyTorch multiplies by the rounded 1/(1-p) rather than dividing: equal to within one rounding
    assert max_rel_error(out.numpy(), (x * kept / (1 - p)).numpy()) <= 2 * np.finfo(np.float64).eps
    assert torch.equal(layer.eval()(x), x)


def test_torch_keeps_unbiased_running_variance(torch_framework):
    """The reference's default is PyTorch's convention; the Keras one is refused with the reason."""
    case = cases.batchnorm_cases()[0]
    biased = dataclasses.replace(case, specs=(cases.spec("batchnorm", **{**case.specs[0].kwargs,
                                                                          "unbiased_running_var": False}),))
    assert "unbiased" in torch_framework.unsupported(biased)
    assert torch_framework.reference_case(case) is case


def torch_cross_entropy(opt, scores, target, weight, dloss):
    """``(loss, dscores)`` from ``torch.nn.functional.cross_entropy`` with ``loss.backward(dloss)``."""
    import torch

    z = torch.from_numpy(scores).requires_grad_(True)
    w = None if weight is None else torch.from_numpy(weight)
    loss = torch.nn.functional.cross_entropy(z, torch.from_numpy(target), **opt.kwargs(w))
    loss.backward(torch.as_tensor(dloss, dtype=z.dtype))
    return loss.detach().numpy(), z.grad.numpy()


def test_nothing_counted_matches_torch(torch_framework):
    """All targets ignored: nan mean, zero gradient, in both."""
    opt = CrossEntropyOption("all-ignored", (3, 4), ignore=-100)
    scores = np.random.default_rng(0).standard_normal((3, 4))
    target = np.full(3, -100)
    loss, dscores = softmax_cross_entropy(scores, target)
    t_loss, t_dscores = torch_cross_entropy(opt, scores, target, None, 1.0)
    assert np.isnan(loss) and np.isnan(t_loss)
    assert np.array_equal(dscores, t_dscores)


def _torch_pool(opt, x, dout):
    """``(out, indices or None, dx)`` from the torch module (amax over H, W for GlobalMaxPool2d)."""
    import torch

    tx = torch.from_numpy(x).requires_grad_(True)
    indices = None
    if opt.layer == "GlobalMaxPool2d":
        out = tx.amax(dim=(-2, -1))
    else:
        module = getattr(torch.nn, opt.layer)(**opt.kwargs)
        out = module(tx)
        if opt.kwargs.get("return_indices"):
            out, indices = out
            indices = indices.numpy()
    out.backward(torch.from_numpy(dout))
    return out.detach().numpy(), indices, tx.grad.numpy()


# amax splits the gradient evenly among tied maxima, the reference (and MaxPool2d, AdaptiveMaxPool2d) gives
# it all to the first: with ties, GlobalMaxPool2d is compared with AdaptiveMaxPool2d(1) instead
POOL_CASES = [o for o in POOL_OPTIONS if o.ties and o.layer != "GlobalMaxPool2d"]
POOL2D_TIES = [o for o in POOL2D_OPTIONS if o.ties]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opt", POOL_CASES, ids=[o.id for o in POOL_CASES])
def test_adaptive_max_pool_ties_match_torch(opt, dtype, torch_framework):
    x = opt.input(dtype)
    layer = getattr(adaptive, opt.layer)(**opt.kwargs)
    out = layer.forward(x)
    out, indices = out if opt.kwargs.get("return_indices") else (out, None)
    dout = np.random.default_rng(opt.seed + 100).standard_normal(out.shape).astype(dtype)
    dx = layer.backward(dout)
    t_out, t_indices, t_dx = _torch_pool(opt, x, dout)
    tol = harness.tolerance(dtype, x.shape[-2] * x.shape[-1])
    assert out.dtype == t_out.dtype and max_rel_error(out, t_out) <= tol
    assert max_rel_error(dx, t_dx) <= tol
    if indices is not None:
        assert np.array_equal(indices, t_indices)


@pytest.mark.parametrize("opt", [o for o in POOL_OPTIONS if o.layer == "GlobalMaxPool2d" and o.ties],
                         ids=[o.id for o in POOL_OPTIONS if o.layer == "GlobalMaxPool2d" and o.ties])
def test_global_max_pool_ties_follow_adaptive_max_pool_1(opt, torch_framework):
    import torch

    x = opt.input()
    layer = adaptive.GlobalMaxPool2d()
    out = layer.forward(x)
    dout = np.random.default_rng(opt.seed).standard_normal(out.shape)
    dx = layer.backward(dout)
    tx = torch.from_numpy(x).requires_grad_(True)
    t_out, t_idx = torch.nn.AdaptiveMaxPool2d(1, return_indices=True)(tx)
    t_out.backward(torch.from_numpy(dout)[..., None, None])
    assert np.array_equal(out, t_out.detach().numpy()[..., 0, 0])
    assert np.array_equal(layer.indices, t_idx.numpy()[..., 0, 0])
    assert np.array_equal(dx, tx.grad.numpy())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("impl", ["loop", "im2col"])
@pytest.mark.parametrize("opt", POOL2D_TIES, ids=[o.id for o in POOL2D_TIES])
def test_pool2d_ties_match_torch(opt, impl, dtype, torch_framework):
    """MaxPool2d with return_indices on tied windows: output, indices (exactly) and dx."""
    import torch

    x = opt.input(dtype)
    layer = getattr(ref, opt.layer)(**opt.kwargs, impl=impl)
    out = layer.forward(x)
    out, indices = out if opt.kwargs.get("return_indices") else (out, None)
    dout = np.random.default_rng(opt.seed + 100).standard_normal(out.shape).astype(dtype)
    dx = layer.backward(dout)
    tx = torch.from_numpy(x).requires_grad_(True)
    t_out = getattr(torch.nn, opt.layer)(**opt.kwargs)(tx)
    t_out, t_indices = t_out if indices is not None else (t_out, None)
    t_out.backward(torch.from_numpy(dout))
    kernel = opt.kwargs["kernel_size"]
    tol = harness.tolerance(dtype, int(np.prod(kernel if isinstance(kernel, tuple) else (kernel, kernel))))
    assert out.shape == tuple(t_out.shape) and max_rel_error(out, t_out.detach().numpy()) <= tol
    assert max_rel_error(dx, tx.grad.numpy()) <= tol
    if indices is not None:
        assert np.array_equal(indices, t_indices.numpy())


@pytest.mark.parametrize("cid", ["bce-probs-N6C5-none-edges", "bce-logits-N3C4H2W3-mean-weight-posweight"])
def test_binary_cross_entropy_at_zero_and_one(cid, torch_framework):
    """PyTorch's clamp of the logs at -100 and its gradient's ``max(p (1 - p), 1e-12)`` are the reference's: the loss
    of a wrong certain prediction is 100 and matches, its gradient 1e12 too; Keras' clip_epsilon is refused."""
    case = next(c for c in cases.binary_loss_cases() if c.id == cid)
    for dtype in DTYPES:
        records = harness.compare(case, None, dtype, torch_framework)
        assert {r.quantity for r in records} == {"forward", "loss", "dx"} and all(r.passed for r in records)
    if not case.binary_loss.logits:
        run = harness.run_reference(case, None, "float64")
        assert run.results["loss"].max() == 100.0 and np.abs(run.results["dx"]).max() > 1e11
        clipped = dataclasses.replace(case, loss=dataclasses.replace(case.loss, clip_epsilon=1e-7))
        assert "clip_epsilon is Keras' clipping" in torch_framework.unsupported(clipped)
