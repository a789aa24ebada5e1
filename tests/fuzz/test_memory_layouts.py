"""Every layer fed inputs, upstream gradients and parameters in odd memory layouts must compute exactly what it
computes from the plain C-contiguous arrays holding the same values, and must never write to what it is given.

Layouts (:data:`LAYOUTS`): read-only, Fortran order, negative strides (``a[..., ::-1]``, compared with its
contiguous copy), a strided slice of a larger array, a transposed (channels-last) buffer, non-native byte
order, and a float32 array given to a float64 model (``cast32``) or a float64 one to a float32 model
(``cast64``). Results must be bit-for-bit equal (``np.array_equal``) to the plain run on the same values,
except where the model computes in the dtype it is given (layers without a ``dtype``: pools, activations,
dropout, flatten) and a cast changed that dtype: then the two runs compute in different precisions and agree to
float32 rounding, ``harness.tolerance("float32", x.size)`` (no sum is longer than the input). A layer with a
``dtype`` (Conv2d, Linear, BatchNorm2d) casts what it is given on entry, which the plain run does too, so
casts into it are exact.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import reference as ref
from comparisons import harness
from comparisons.cases import Case, build_reference, spec
from tests import strategies
from tests.fuzz.budget import examples, tally

LAYERS = strategies.layer_cases()
OTHER = {"float64": np.float32, "float32": np.float64}


def _slice(a: np.ndarray) -> np.ndarray:
    """``a``'s values as every other element of a larger array's last axis."""
    big = np.full((*a.shape[:-1], 2 * a.shape[-1]), np.nan if a.dtype.kind == "f" else 0, dtype=a.dtype)
    big[..., ::2] = a
    return big[..., ::2]


def _channels_last(a: np.ndarray) -> np.ndarray:
    """``a``'s values in a buffer whose first axis varies fastest (a transposed copy, viewed back)."""
    axes = tuple(range(a.ndim))[::-1]
    return np.ascontiguousarray(a.transpose(axes)).transpose(axes)


def _readonly(a: np.ndarray) -> np.ndarray:
    b = a.copy()
    b.setflags(write=False)
    return b


# name -> (odd layout of a, plain contiguous array with the odd array's values); ``negative`` reverses the values
# too, so its plain twin is the reversed copy. ``cast`` gives the other float dtype: a layer with a dtype
# (``typed``) casts it back exactly, so its twin is the cast-back array in the model's dtype; a layer without one
# computes in the dtype it is given, so its twin is the contiguous array of that dtype.
LAYOUTS = {
    "plain": lambda a, dt, typed: (a, a),
    "readonly": lambda a, dt, typed: (_readonly(a), a),
    "fortran": lambda a, dt, typed: (np.asfortranarray(a), a),
    "negative": lambda a, dt, typed: (a[..., ::-1], a[..., ::-1].copy()),
    "slice": lambda a, dt, typed: (_slice(a), a),
    "channels_last": lambda a, dt, typed: (_channels_last(a), a),
    "byteswap": lambda a, dt, typed: (a.astype(a.dtype.newbyteorder()), a),
    "cast": lambda a, dt, typed: (a.astype(OTHER[dt]), a.astype(OTHER[dt]).astype(dt if typed else OTHER[dt])),
}
layouts = st.sampled_from(tuple(LAYOUTS))
TYPED = (ref.Conv2d, ref.Linear, ref.BatchNorm2d)  # layers that cast their input to their dtype


def _run(model, x, dout_of):
    """Forward, then backward of ``dout_of(out)``: ``{"forward", "indices"?, "dx", grads...}``."""
    out = model.forward(x)
    found = {}
    if isinstance(out, tuple):
        out, found["indices"] = out
    dout = dout_of(out)
    found.update(forward=out, dx=model.backward(dout))
    found.update({key: np.array(value) for key, value in model.grads.items()})
    return found


def _snapshot(a: np.ndarray):
    return a.copy(), a.dtype, a.shape, a.strides, a.flags.writeable


def _unchanged(a: np.ndarray, snap) -> bool:
    copy, dtype, shape, strides, writeable = snap
    return (a.dtype == dtype and a.shape == shape and a.strides == strides and a.flags.writeable == writeable
            and np.array_equal(a, copy, equal_nan=True))


def layout_run(case, impl: str, dtype: str, x_layout: str, dout_layout: str, param_layout: str):
    """Run ``case`` on odd layouts and on the plain arrays holding the same values: ``(arrays the layer wrote to,
    {quantity: (odd result, plain result)}, whether they must be bit-for-bit equal)``."""
    rng = np.random.default_rng(case.seed)
    x = (rng.standard_normal(case.input_shape) * case.scale).astype(dtype)
    plain_model, odd_model = build_reference(case, impl, dtype), build_reference(case, impl, dtype)
    odd_params = {}
    for key in list(plain_model.params):
        # the plain model gets the same values (reversed by ``negative``, rounded by ``cast``), C-contiguous
        odd_params[key], plain_value = LAYOUTS[param_layout](np.array(plain_model.params[key]), dtype, True)
        plain_model.params[key], odd_model.params[key] = plain_value, odd_params[key]
    layers = plain_model.layers
    odd_x, plain_x = LAYOUTS[x_layout](x, dtype, bool(layers) and isinstance(layers[0], TYPED))
    douts = []

    def dout_of(out):
        douts.append(LAYOUTS[dout_layout](np.random.default_rng(case.seed + 1).standard_normal(out.shape)
                                          .astype(dtype), dtype, bool(layers) and isinstance(layers[-1], TYPED)))
        return douts[0][0]

    snaps = {"x": _snapshot(odd_x), **{f"params[{k}]": _snapshot(v) for k, v in odd_params.items()}}
    odd = _run(odd_model, odd_x, dout_of)
    given_arrays = {"x": odd_x, "dout": douts[0][0], **{f"params[{k}]": v for k, v in odd_params.items()}}
    snaps["dout"] = _snapshot(douts[0][0])  # taken after the run: compared with the unchanged original below
    changed = [name for name, a in given_arrays.items() if name != "dout" and not _unchanged(a, snaps[name])]
    if not np.array_equal(douts[0][0], douts[0][1], equal_nan=True) and dout_layout not in ("cast", "negative"):
        changed.append("dout")
    plain = _run(plain_model, plain_x, lambda out: douts[0][1])
    assert set(odd) == set(plain)
    return changed, {key: (odd[key], plain[key]) for key in plain}, True


def bit_differences(results: dict) -> list[str]:
    """The quantities whose odd-layout result is not bit for bit the plain one, dtype (byte order too) included."""
    return [key for key, (odd, plain) in results.items()
            if odd.dtype != plain.dtype or not np.array_equal(odd, plain, equal_nan=True)]


# Every layer reads its arrays through ``reference.layer.canonical`` (C order, native bytes), so that numpy's
# reductions and matmul, which add in an order that follows the memory layout, see the same layout whatever the
# caller's: results are bit for bit those of the plain arrays. No layer is exempt.
LAYOUT_ROUNDING: set[str] = set()


@pytest.mark.parametrize("layer", list(LAYERS))
@examples(25)
@given(data=st.data())
def test_layouts_give_the_plain_results(layer, data):
    case = data.draw(LAYERS[layer], label="case")
    impl = data.draw(st.sampled_from(case.impls), label="impl")
    dtype = data.draw(strategies.dtypes, label="dtype")
    chosen = [data.draw(layouts, label=f"{what} layout") for what in ("x", "dout", "params")]
    with tally(case.layer):
        changed, results, exact = layout_run(case, impl, dtype, *chosen)
        assert not changed, f"the layer wrote to {changed}"
        if exact and case.layer not in LAYOUT_ROUNDING:
            differ = bit_differences(results)
            assert not differ, f"{differ} differ ({case.config}, {impl})"
        else:  # computed in another precision (cast into a dtype-less layer), or summed in another order
            tol = harness.tolerance("float32" if not exact else dtype, x_size := int(np.prod(case.input_shape)))
            for key, (odd, plain) in results.items():
                assert ref.max_rel_error(odd, plain) <= tol, f"{key} beyond rounding ({case.config}, {x_size})"


def _case(layer, kind, shape, single=True, **kwargs):
    return Case(layer, f"layout-{kind}", (spec(kind, **kwargs),), shape, tags=frozenset({"single"} if single else ()))


LAYOUT_SENSITIVE_SUMS = [
    pytest.param(_case("Conv2d", "conv", (1, 1, 1), in_channels=1, out_channels=1, kernel_size=1, stride=1, padding=1,
                       dilation=1, bias=True), "loop", ("plain", "fortran", "plain"), id="conv-loop-bias-grad"),
    pytest.param(_case("GlobalAvgPool2d", "globalavgpool", (2, 1, 8)), "loop", ("fortran", "plain", "plain"),
                 id="globalavgpool-loop-fortran-x"),
    pytest.param(_case("BatchNorm2d", "batchnorm", (1, 2, 4), num_features=1, eps=1e-5, momentum=0.0,
                       unbiased_running_var=True), None, ("plain", "fortran", "plain"), id="batchnorm-fortran-dout"),
    pytest.param(_case("Linear", "linear", (1, 1), single=False, in_features=1, out_features=4, bias=False), None,
                 ("plain", "plain", "slice"), id="linear-strided-weight"),
    pytest.param(_case("AdaptiveAvgPool2d", "adaptiveavgpool", (1, 1, 1), output_size=4), None,
                 ("plain", "negative", "plain"), id="adaptiveavgpool-reversed-dout"),
]


@pytest.mark.parametrize("case, impl, chosen", LAYOUT_SENSITIVE_SUMS)
def test_layouts_do_not_change_the_last_bits(case, impl, chosen):
    """Minimal draws where numpy's summation order follows the memory layout (float64): the results are still
    bit for bit the plain arrays'."""
    changed, results, _ = layout_run(case, impl, "float64", *chosen)
    assert not changed
    assert not bit_differences(results)


@examples(60)
@given(opt=strategies.cross_entropy_options(), data=st.data())
def test_cross_entropy_layouts(opt, data):
    """``softmax_cross_entropy``'s scores, target, weight and dloss in odd layouts: the plain results, nothing
    written to."""
    from comparisons.cases_options import ce_arrays

    scores, target, weight, dloss = ce_arrays(opt)
    arrays = {"scores": scores, "target": target, "weight": weight, "dloss": dloss}
    odd, plain = {}, {}
    for name, a in arrays.items():
        if not isinstance(a, np.ndarray):
            odd[name] = plain[name] = a
            continue
        # scores set the dtype of the computation: a cast changes the precision (covered for the dtype-less layers)
        castable = a.dtype.kind == "f" and name != "scores"
        layout = data.draw(layouts.filter(lambda lay, castable=castable: lay != "cast" or castable), label=name)
        odd[name], plain[name] = LAYOUTS[layout](a, str(a.dtype), True)
        if layout == "negative" and name in ("scores", "target") and a.ndim >= 2:
            # reversing the last axis of (N, C) scores permutes classes: keep values and layout together
            odd[name], plain[name] = _slice(a), a
    snaps = {name: _snapshot(a) for name, a in odd.items() if isinstance(a, np.ndarray)}
    with tally("softmax_cross_entropy"):
        loss, dscores = ref.softmax_cross_entropy(odd["scores"], odd["target"], odd["weight"],
                                                  reduction=opt.reduction, label_smoothing=opt.label_smoothing,
                                                  dloss=odd["dloss"], **({"ignore_index": opt.ignore}
                                                                         if opt.ignore is not None else {}))
        p_loss, p_dscores = ref.softmax_cross_entropy(plain["scores"], plain["target"], plain["weight"],
                                                      reduction=opt.reduction, label_smoothing=opt.label_smoothing,
                                                      dloss=plain["dloss"], **({"ignore_index": opt.ignore}
                                                                               if opt.ignore is not None else {}))
        changed = [name for name, snap in snaps.items() if not _unchanged(odd[name], snap)]
        assert not changed, f"softmax_cross_entropy wrote to {changed}"
        assert np.array_equal(np.asarray(loss), np.asarray(p_loss), equal_nan=True)
        assert np.array_equal(dscores, p_dscores, equal_nan=True)
