"""Infinities and NaNs through the case matrix: the reference's are PyTorch's.

Every case without a loss runs with an infinity and a NaN in its input and an infinity in ``dout``, in float64,
with each implementation, and every case with parameters again with an infinity in each parameter instead of the
input; the forward, ``dx`` and every parameter gradient must have their NaNs, ``+inf`` and
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
from tests.frameworks import import_or_skip

# numpy warns of the infinities and NaNs these tests put in (the reference's own RuntimeWarnings are errors in the
# suite's settings)
pytestmark = [pytest.mark.torch, pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning"),
              pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")]

# The normalizations' backward adds terms that are each infinite once one ``dout`` is: the reference and PyTorch
# group them differently (the reference as (g - mean(g)) - xhat * mean(g * xhat)), so where one gets -inf from
# inf - (-inf) the other can get a NaN from inf - inf, depending on where the infinity lands. Both are IEEE results
# of the same sum and neither is more right: their forward is compared, not their gradients.
FORMULA_ORDER = {"LayerNorm", "GroupNorm"}

CASES = [case for case in cases.all_cases() if case.loss is None]


def _batched(a: np.ndarray, case: cases.Case) -> np.ndarray:
    """A single image's array with the batch axis of 1 the frameworks take."""
    return a[np.newaxis] if case.single and a.ndim in (1, 3) else a


def _with_parameters(case: cases.Case) -> bool:
    return bool(cases.build_reference(case, case.impls[0], np.dtype("float64")).params)


# PyTorch's batch and group norm kernels fold the scale into ``x * (gamma * invstd) + (beta - mean * gamma * invstd)``:
# an infinite ``gamma`` gives inf - inf = NaN there where the reference's ``(x - mean) * invstd * gamma`` gives
# +-inf. Both are IEEE results of two orders of one formula, so their non-finite parameters are not compared.
FOLDED_SCALE = {"BatchNorm2d", "GroupNorm"}
PARAMETER_CASES = [case for case in CASES if case.layer not in FOLDED_SCALE and _with_parameters(case)]


def _assert_nonfinite_as_pytorchs(case: cases.Case, impl: str, place: str) -> None:
    """Run ``case`` in float64 with non-finite values in ``place`` (``"input"``: an infinity and a NaN in the input;
    ``"parameters"``: an infinity in the middle cell of every parameter) and an infinity in ``dout``; the NaNs,
    ``+inf`` and ``-inf`` of the forward, ``dx`` and every parameter gradient must be PyTorch's."""
    torch = framework("torch")
    case = torch.reference_case(case)
    model = cases.build_reference(case, impl, np.dtype("float64"))
    buffers = {key: np.array(value) for key, value in model.buffers.items()}  # as before the forward
    rng = np.random.default_rng(20_000 + case.seed)
    x = rng.standard_normal(case.input_shape) * case.scale
    if place == "input":
        cells = x.reshape(-1)
        cells[cells.size // 3], cells[2 * cells.size // 3] = np.inf, np.nan
    else:
        for value in model.params.values():
            value.reshape(-1)[value.size // 2] = np.inf
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


@pytest.mark.parametrize("case, impl", [pytest.param(case, impl, id=f"{case.id}-{impl}")
                                        for case in CASES for impl in case.impls])
def test_infinities_and_nans_are_pytorchs(case, impl):
    _assert_nonfinite_as_pytorchs(case, impl, "input")


@pytest.mark.parametrize("case, impl", [pytest.param(case, impl, id=f"{case.id}-{impl}")
                                        for case in PARAMETER_CASES for impl in case.impls])
def test_infinite_parameters_are_pytorchs(case, impl):
    _assert_nonfinite_as_pytorchs(case, impl, "parameters")


# Convolutions with an infinity or a NaN in each place in turn: the input, the weight or ``dout``, every cell (up to
# POSITIONS of them, evenly spread). The geometries are those where zeros that are not the caller's meet it: one
# image with one channel per group and a 1x1 kernel (``np.dot`` hands a one-element operand to BLAS's axpy, which
# skips a zero one, so 0 * inf gave 0, not NaN), the padding, the flipped-kernel input gradient (2F <= C at stride
# 1), strides (col2im), and for ConvTranspose2d an ``output_padding`` at or past the stride (the adjoint
# convolution's dout extended by zero rows and columns).
#   name: (layer, x shape (N, C, H, W), out_channels, kernel, stride, padding, dilation, groups, output_padding)
CONV_GEOMETRIES = {
    "conv-1image-1channel-k1-p1": ("Conv2d", (1, 1, 3, 4), 2, 1, 1, 1, 1, 1, 0),
    "conv-1image-grouped-k1-s2-p1": ("Conv2d", (1, 2, 3, 3), 2, 1, 2, 1, 1, 2, 0),
    "conv-k3-p1-d2": ("Conv2d", (2, 2, 4, 4), 3, 3, 1, 1, 2, 1, 0),
    "conv-flipped-k3-p2": ("Conv2d", (1, 4, 3, 4), 2, 3, 1, 2, 1, 1, 0),
    "conv-k2-s2-p1": ("Conv2d", (2, 2, 4, 5), 2, 2, 2, 1, 1, 1, 0),
    "convtranspose-k1-s2-op1": ("ConvTranspose2d", (1, 2, 3, 3), 1, 1, 2, 0, 1, 1, 1),
    "convtranspose-k3-p1-op1-d2": ("ConvTranspose2d", (2, 2, 3, 3), 2, 3, 1, 1, 2, 1, 1),
    "convtranspose-k2-s2-op2-d3": ("ConvTranspose2d", (1, 2, 2, 3), 2, 2, 2, 0, 3, 1, 2),
    "convtranspose-grouped-k3-op2-d3": ("ConvTranspose2d", (2, 4, 3, 2), 2, 3, 1, 0, 3, 2, 2),
}
POSITIONS = 40
PLACES = ("x", "weight", "dout")


def _torch_conv(torch, layer, x, w, b, dout, stride, padding, dilation, groups, output_padding):
    """PyTorch's forward, ``dx``, ``dw`` and ``db`` of ``conv2d`` / ``conv_transpose2d``, float64."""
    tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
    if layer == "Conv2d":
        out = torch.nn.functional.conv2d(tx, tw, tb, stride, padding, dilation, groups)
    else:
        out = torch.nn.functional.conv_transpose2d(tx, tw, tb, stride, padding, output_padding, groups, dilation)
    out.backward(torch.from_numpy(dout))
    return {"forward": out.detach().numpy(), "dx": tx.grad.numpy(), "weight": tw.grad.numpy(),
            "bias": tb.grad.numpy()}


@pytest.mark.parametrize("impl", ["loop", "im2col"])
@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("name", CONV_GEOMETRIES)
def test_convolutions_nonfinite_in_every_place_are_pytorchs(name, place, impl):
    torch = import_or_skip("torch")
    layer, x_shape, out_channels, kernel, stride, padding, dilation, groups, output_padding = CONV_GEOMETRIES[name]
    options = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    if layer == "ConvTranspose2d":
        options["output_padding"] = output_padding
    model = getattr(ref, layer)(x_shape[1], out_channels, kernel, impl=impl, rng=1, **options)
    rng = np.random.default_rng(len(name))
    x = rng.standard_normal(x_shape)
    dout = rng.standard_normal(model.forward(x).shape)
    clean = {"x": x, "weight": model.params["weight"].copy(), "dout": dout}
    cells = clean[place].size
    for k, cell in enumerate(np.unique(np.linspace(0, cells - 1, min(cells, POSITIONS)).astype(int))):
        arrays = {key: value.copy() for key, value in clean.items()}
        arrays[place].reshape(-1)[cell] = (np.inf, -np.inf, np.nan)[k % 3]
        model.params["weight"] = arrays["weight"]
        ours = {"forward": model.forward(arrays["x"])}
        ours["dx"] = model.backward(arrays["dout"])
        ours.update(model.grads)
        theirs = _torch_conv(torch, layer, arrays["x"], arrays["weight"], model.params["bias"], arrays["dout"],
                             stride, padding, dilation, groups, output_padding)
        for key, mine in ours.items():
            for test in (np.isnan, np.isposinf, np.isneginf):
                assert np.array_equal(test(mine), test(theirs[key])), (
                    f"{place} cell {cell} = {arrays[place].reshape(-1)[cell]}: {key}: {test.__name__} differs")
            finite = np.isfinite(mine)
            np.testing.assert_allclose(mine[finite], theirs[key][finite], rtol=1e-12, atol=1e-12,
                                       err_msg=f"{place} cell {cell}: {key}: finite values (float64 rounding)")
