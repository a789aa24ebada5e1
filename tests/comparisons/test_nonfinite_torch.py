"""Infinities and NaNs through the case matrix: the reference's are PyTorch's.

Every case without a loss runs with an infinity and a NaN in its input and an infinity in ``dout``, in float64,
with each implementation; the forward, ``dx`` and every parameter gradient must have their NaNs, ``+inf`` and
``-inf`` where PyTorch has them. Where a layout's zeros (im2col's columns past a row's end, interpolation and
averaging matrices) or a 0/1 mask (ReLU, max pooling) would turn them into NaNs of its own, the reference keeps
them out; this test is what shows that it does, layer by layer.
"""

from __future__ import annotations

import numpy as np
import pytest

import reference as ref
from comparisons import cases
from comparisons.frameworks.protocol import RunInputs
from tests.comparisons.helpers import framework

pytestmark = pytest.mark.torch

# The normalizations' backward adds terms that are each infinite once one ``dout`` is: the reference and PyTorch
# group them differently (the reference as (g - mean(g)) - xhat * mean(g * xhat)), so where one gets -inf from
# inf - (-inf) the other can get a NaN from inf - inf, depending on where the infinity lands. Both are IEEE results
# of the same sum and neither is more right: their forward is compared, not their gradients.
FORMULA_ORDER = {"LayerNorm", "GroupNorm"}

CASES = [case for case in cases.all_cases() if case.loss is None]


def _batched(a: np.ndarray, case: cases.Case) -> np.ndarray:
    """A single image's array with the batch axis of 1 the frameworks take."""
    return a[np.newaxis] if case.single and a.ndim in (1, 3) else a


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("case, impl", [pytest.param(case, impl, id=f"{case.id}-{impl}")
                                        for case in CASES for impl in case.impls])
def test_infinities_and_nans_are_pytorchs(case, impl):
    torch = framework("torch")
    case = torch.reference_case(case)
    model = cases.build_reference(case, impl, np.dtype("float64"))
    buffers = {key: np.array(value) for key, value in model.buffers.items()}  # as before the forward
    rng = np.random.default_rng(20_000 + case.seed)
    x = rng.standard_normal(case.input_shape) * case.scale
    cells = x.reshape(-1)
    cells[cells.size // 3], cells[2 * cells.size // 3] = np.inf, np.nan
    h = x
    for layer in model.layers:
        h = layer.forward(h)
        h = h[0] if isinstance(h, tuple) else h  # max pooling's (out, indices)
    dout = rng.standard_normal(h.shape)
    dout.reshape(-1)[dout.size // 2] = np.inf
    ours = {"forward": h}
    grad = dout
    for layer in reversed(model.layers):
        grad = layer.backward(grad)
    ours["dx"] = grad
    ours.update({key: model.grads[key] for key in model.params})
    masks = {i: _batched(layer.mask, case) for i, layer in enumerate(model.layers)
             if isinstance(layer, ref.Dropout) and not case.eval_mode}
    params = {key: np.array(value) for key, value in model.params.items()}
    theirs = torch.run(case, RunInputs(params, _batched(x, case), "float64", _batched(dout, case), None, buffers,
                                       masks, {}))
    assert not all(np.isfinite(a).all() for a in ours.values()), "nothing non-finite reached the results"
    for key, mine in ours.items():
        if case.layer in FORMULA_ORDER and key != "forward":
            continue
        other = np.asarray(theirs[key])
        if case.single and other.shape != mine.shape and other.shape[1:] == mine.shape:
            other = other[0]
        for test in (np.isnan, np.isposinf, np.isneginf):
            assert np.array_equal(test(mine), test(other)), f"{key}: {test.__name__} differs"
