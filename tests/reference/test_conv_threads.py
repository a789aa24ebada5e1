"""Conv2d(impl="im2col") on several threads and its flipped-kernel input gradient: each equals the serial and the
col2im computation, through copies, pickles and concurrent callers."""

from __future__ import annotations

import copy
import pickle
import threading

import numpy as np
import pytest

import reference.conv as conv_module
from reference import Conv2d, max_rel_error, threads
from reference.conv import Im2colPlan

# A chunk's GEMMs see fewer columns and its weight gradient is summed over the chunks: the threaded results
# differ from the serial ones by rounding only (float64 ~1e-16 per operation; float32 ~1e-7 over sums of
# a few hundred terms).
TOL = {np.float64: 1e-12, np.float32: 1e-5}

OPTIONS = [
    {"padding": 1},
    {"padding": 0, "bias": False},
    {"stride": 2, "padding": 1},
    {"stride": (1, 2), "padding": 1},
    {"padding": 2, "dilation": 2},
    {"padding": 1, "groups": 2},
    {"padding": 3},  # more padding than the kernel reaches
    {"padding": ((1, 0), (2, 1)), "padding_mode": "reflect"},
    {"padding": 1, "padding_mode": "circular", "kernel_size": (3, 2)},
]


@pytest.fixture
def set_threads():
    """``set_threads(n)``: the thread setting for this test, restored afterwards."""
    saved = threads._setting
    yield threads.set_num_threads
    threads._setting = saved


@pytest.fixture(params=["one block", "blocks of two images"])
def blocks(request, monkeypatch):
    """Each thread's chunk run as one block (the size of these tests' images), or two images at a time (as a
    chunk of larger images is): ``blocks.param``."""
    if request.param == "blocks of two images":
        monkeypatch.setattr(conv_module, "images_per_block", lambda image_bytes: 2)
    return request


def _assert_blocks(layer: Conv2d, x: np.ndarray, blocks) -> None:
    """Every chunk of ``layer``'s plan for ``x`` runs in the blocks the ``blocks`` fixture asked for."""
    for part in layer.im2col_plan(x.shape).parts:
        sizes = [s.stop - s.start for s in part.blocks]
        assert sizes == ([part.x_shape[0]] if blocks.param == "one block" else batch_slice_sizes(part.x_shape[0]))


def batch_slice_sizes(n: int) -> list[int]:
    """Block sizes of ``n`` images, two at a time: nearly equal sizes, larger first."""
    return [s.stop - s.start for s in threads.batch_slices(n, -(-n // 2))]


def _layer(options: dict, dtype=np.float64, impl="im2col") -> Conv2d:
    options = dict(options)
    kernel = options.pop("kernel_size", 3)
    return Conv2d(4, 6, kernel, impl=impl, dtype=dtype, rng=3, **options)


def _run(layer: Conv2d, x: np.ndarray, dout: np.ndarray) -> tuple:
    out = layer.forward(x)
    dx = layer.backward(dout)
    return out, dx, {k: v.copy() for k, v in layer.grads.items()}


def _assert_close(got: tuple, want: tuple, tol: float) -> None:
    assert max_rel_error(got[0], want[0]) <= tol, "out"
    assert max_rel_error(got[1], want[1]) <= tol, "dx"
    assert got[2].keys() == want[2].keys()
    for key in want[2]:
        assert max_rel_error(got[2][key], want[2][key]) <= tol, key


def _data(n: int, dtype, seed: int = 0, options: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4, 7, 9)).astype(dtype)
    dout = rng.standard_normal(_layer(options or {"padding": 1}, dtype).forward(x).shape).astype(dtype)
    return x, dout


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("options", OPTIONS, ids=str)
@pytest.mark.parametrize(("n", "workers"), [(2, 2), (7, 2), (5, 3)])
def test_threaded_pass_equals_serial_pass(set_threads, blocks, options, dtype, n, workers):
    x, dout = _data(n, dtype, options=options)
    set_threads(1)
    serial = _run(_layer(options, dtype), x, dout)
    set_threads(workers)
    layer = _layer(options, dtype)
    threaded = _run(layer, x, dout)
    assert len(layer.im2col_plan(x.shape).parts) == workers
    _assert_blocks(layer, x, blocks)
    _assert_close(threaded, serial, TOL[dtype])


@pytest.mark.parametrize("options", OPTIONS, ids=str)
def test_threaded_pass_on_an_odd_batch_equals_the_loop(set_threads, blocks, options):
    x, dout = _data(7, np.float64, seed=1, options=options)
    set_threads(2)
    layer = _layer(options)
    got = _run(layer, x, dout)
    batch = layer.im2col_plan(x.shape)
    assert [s.stop - s.start for s in batch.slices] == [4, 3]
    assert [plan.x_shape[0] for plan in batch.parts] == [4, 3]
    _assert_blocks(layer, x, blocks)  # blocks of 2 + 2 and 2 + 1 images
    _assert_close(got, _run(_layer(options, impl="loop"), x, dout), 1e-12)


@pytest.mark.parametrize(("n", "workers", "parts"), [(1, 2, 1), (3, 8, 3), (6, 1, 1)])
def test_a_batch_is_split_into_at_most_one_chunk_per_image_and_thread(set_threads, n, workers, parts):
    set_threads(workers)
    layer = _layer({"padding": 1})
    x, dout = _data(n, np.float64, seed=2)
    got = _run(layer, x, dout)
    assert len(layer.im2col_plan(x.shape).parts) == parts
    _assert_close(got, _run(_layer({"padding": 1}, impl="loop"), x, dout), 1e-12)


def test_one_image_runs_on_the_callers_thread(set_threads, monkeypatch):
    set_threads(2)
    layer = _layer({"padding": 1})
    seen = []
    original = Im2colPlan.forward

    def forward(self, *args):
        seen.append(threading.get_ident())
        return original(self, *args)

    monkeypatch.setattr(Im2colPlan, "forward", forward)
    layer.forward(np.ones((4, 5, 5)))
    assert seen == [threading.get_ident()]
    layer.forward(np.ones((2, 4, 5, 5)))
    # two chunks at once: one on the caller's thread and one on a worker, in whichever order they start
    assert len(seen) == 3 and seen[1:].count(threading.get_ident()) == 1 and len(set(seen[1:])) == 2


def test_changing_the_thread_count_rebuilds_the_plan_and_keeps_the_results(set_threads):
    x, dout = _data(6, np.float64, seed=3)
    layer = _layer({"padding": 1})
    set_threads(3)
    three = _run(layer, x, dout)
    set_threads(2)
    two = _run(layer, x, dout)
    assert len(layer.im2col_plan(x.shape).parts) == 2
    _assert_close(two, three, 1e-12)


# -- the input gradient: flipped kernel against col2im ---------------------------------------------------
FLIPPED_CASES = [
    # (x shape, F, kernel, pads, dilation, mode, groups)
    ((3, 4, 7, 9), 6, (3, 3), ((1, 1), (1, 1)), (1, 1), "zeros", 1),
    ((2, 4, 7, 9), 6, (3, 3), ((0, 0), (0, 0)), (1, 1), "zeros", 1),
    ((2, 4, 8, 8), 8, (3, 2), ((2, 1), (0, 1)), (1, 1), "zeros", 2),
    ((2, 4, 9, 9), 4, (3, 3), ((2, 2), (2, 2)), (2, 2), "zeros", 4),
    ((2, 2, 6, 7), 3, (3, 3), ((4, 3), (3, 5)), (1, 1), "zeros", 1),  # padding beyond the kernel's reach
    ((2, 3, 6, 7), 5, (3, 3), ((1, 2), (2, 1)), (1, 1), "reflect", 1),
    ((2, 3, 6, 7), 5, (2, 3), ((1, 1), (2, 2)), (1, 2), "replicate", 1),
    ((1, 4, 5, 6), 4, (3, 3), ((2, 2), (1, 1)), (1, 1), "circular", 2),
]


def _plan_pass(method: str, case: tuple, x, w, b, dout) -> tuple:
    x_shape, f, kernel, pads, dilation, mode, groups = case
    out_hw = Conv2d(x_shape[1], f, kernel, padding=pads, dilation=dilation, groups=groups,
                    padding_mode=mode)._output_size(x_shape)
    plan = Im2colPlan(x_shape, out_hw, kernel, (1, 1), pads, dilation, mode, groups, f, True, np.dtype(np.float64),
                      method)
    out = plan.forward(x, w, b)
    dx, dw, db = plan.backward(dout)
    return out, dx, {"weight": dw.copy(), "bias": db.copy()}


def _case_data(case: tuple, seed: int) -> tuple:
    """``(x, w, b, dout)`` of random values for a stride-1 ``case`` of :data:`FLIPPED_CASES`' form."""
    x_shape, f, kernel, pads, dilation, mode, groups = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal((f, x_shape[1] // groups, *kernel))
    b = rng.standard_normal(f)
    probe = Conv2d(x_shape[1], f, kernel, padding=pads, dilation=dilation, groups=groups, padding_mode=mode)
    return x, w, b, rng.standard_normal(probe.forward(x).shape)


@pytest.mark.parametrize("case", FLIPPED_CASES, ids=str)
def test_flipped_kernel_input_gradient_equals_col2im(case):
    x, w, b, dout = _case_data(case, seed=4)
    flipped, col2im = (_plan_pass(m, case, x, w, b, dout) for m in ("flipped", "col2im"))
    _assert_close(flipped, col2im, 1e-12)
    assert not np.array_equal(flipped[1], np.zeros_like(flipped[1]))


@pytest.mark.parametrize("case", [*FLIPPED_CASES, ((2, 1, 7, 8), 3, (3, 3), ((1, 1), (1, 1)), (1, 1), "zeros", 1)],
                         ids=str)
def test_shifted_and_plain_col2im_layouts_agree(case, monkeypatch):
    """The two stride-1 layouts of the window gradients (``conv.col2im_layout``), each forced on the same cases
    (one and several channels per group), give the same gradients to rounding."""
    x, w, b, dout = _case_data(case, seed=8)
    passes = {}
    for layout in ("shifted", "plain"):
        monkeypatch.setattr(conv_module, "col2im_layout", lambda stride, channels, layout=layout: layout)
        passes[layout] = _plan_pass("col2im", case, x, w, b, dout)
    _assert_close(passes["shifted"], passes["plain"], 1e-12)


def test_col2im_layout_rule():
    assert conv_module.col2im_layout((1, 1), 1) == "plain"
    assert conv_module.col2im_layout((1, 1), 2) == conv_module.col2im_layout((1, 1), 64) == "shifted"
    assert conv_module.col2im_layout((2, 1), 8) == conv_module.col2im_layout((1, 2), 1) == "strided"


@pytest.mark.parametrize("options", [o for o in OPTIONS if "stride" not in o], ids=str)
def test_layer_with_col2im_forced_equals_the_default_layer(options, monkeypatch):
    x, dout = _data(3, np.float64, seed=5, options=options)
    default = _run(_layer(options), x, dout)
    monkeypatch.setattr(conv_module, "input_grad_method", lambda stride, c, f: "col2im")
    layer = _layer(options)
    forced = _run(layer, x, dout)
    assert {plan.input_grad_method for plan in layer.im2col_plan(x.shape).parts} == {"col2im"}
    _assert_close(forced, default, 1e-12)


@pytest.mark.parametrize(("stride", "c", "f", "method"), [((1, 1), 64, 16, "flipped"), ((1, 1), 32, 16, "flipped"),
                                                           ((1, 1), 16, 32, "col2im"), ((1, 1), 64, 64, "col2im"),
                                                           ((1, 1), 1, 8, "col2im"), ((2, 2), 64, 16, "col2im"),
                                                           ((1, 2), 64, 16, "col2im")])
def test_the_flipped_kernel_serves_stride_one_up_to_half_the_input_channels(stride, c, f, method):
    assert conv_module.input_grad_method(stride, c, f) == method


def test_flipped_input_gradient_refuses_a_stride():
    with pytest.raises(ValueError, match=r"Im2colPlan: input_grad='flipped' needs stride 1, got stride=\(2, 2\)"):
        Im2colPlan((1, 1, 5, 5), (2, 2), (3, 3), (2, 2), ((0, 0), (0, 0)), (1, 1), "zeros", 1, 1, True,
                   np.dtype(np.float64), "flipped")
    with pytest.raises(ValueError, match="input_grad"):
        Im2colPlan((1, 1, 5, 5), (3, 3), (3, 3), (1, 1), ((0, 0), (0, 0)), (1, 1), "zeros", 1, 1, True,
                   np.dtype(np.float64), "direct")


# -- copies, pickles and concurrent callers --------------------------------------------------------------
@pytest.mark.parametrize("clone", [copy.deepcopy, lambda layer: pickle.loads(pickle.dumps(layer))],
                         ids=["deepcopy", "pickle"])
@pytest.mark.parametrize("options", [{"padding": 1}, {"stride": 2, "padding": 1}], ids=str)
def test_copy_of_a_used_threaded_layer_computes_like_the_original(set_threads, blocks, clone, options):
    set_threads(2)
    x, dout = _data(5, np.float64, seed=6, options=options)
    layer = _layer(options)
    _run(layer, x, dout)
    x2 = np.random.default_rng(7).standard_normal(x.shape)
    layer.forward(x2)  # the copy must differentiate this forward, not the first
    twin = clone(layer)
    dx_twin, dx = twin.backward(dout), layer.backward(dout)
    assert np.array_equal(dx_twin, dx)
    for key in layer.grads:
        assert np.array_equal(twin.grads[key], layer.grads[key]), key
    ours, theirs = layer.im2col_plan(x.shape), twin.im2col_plan(x.shape)
    assert len(theirs.parts) == 2
    _assert_blocks(twin, x, blocks)
    for a, b in zip(ours.parts, theirs.parts, strict=True):
        assert a.xp is None or not np.shares_memory(a.xp, b.xp)
        if b.xp is not None:  # the copy's block windows read its own padded input
            assert all(np.may_share_memory(w, b.xp) and not np.may_share_memory(w, a.xp) for w in b.block_windows)
        for plan_a, plan_b in zip(a.plans.values(), b.plans.values(), strict=True):
            assert not np.shares_memory(plan_a.cols, plan_b.cols) and not np.shares_memory(plan_a.xp, plan_b.xp)
    got, want = _run(twin, x, dout), _run(layer, x, dout)
    _assert_close(got, want, 0.0)


@pytest.mark.parametrize("clone", [copy.deepcopy, lambda layer: pickle.loads(pickle.dumps(layer))],
                         ids=["deepcopy", "pickle"])
def test_copy_of_a_used_one_image_layer_runs_its_own_plan(set_threads, clone):
    """One image is one chunk of one block, whose plan the layer calls directly (``BatchIm2col.sole``): a copy's
    is its own chunk's plan, not the original's, and differentiates the forward run before the copy."""
    set_threads(2)
    x, dout = _data(1, np.float64, seed=3)
    layer = _layer({"padding": 1})
    _run(layer, x, dout)
    layer.forward(np.random.default_rng(4).standard_normal(x.shape))
    twin = clone(layer)
    ours, theirs = layer.im2col_plan(x.shape), twin.im2col_plan(x.shape)
    assert ours.sole is ours.parts[0].plans[1] and theirs.sole is theirs.parts[0].plans[1]
    assert not np.shares_memory(ours.sole.cols, theirs.sole.cols)
    assert np.array_equal(twin.backward(dout), layer.backward(dout))
    for key in layer.grads:
        assert np.array_equal(twin.grads[key], layer.grads[key]), key
    _assert_close(_run(twin, x, dout), _run(_layer({"padding": 1}, impl="loop"), x, dout), 1e-12)


@pytest.mark.parametrize("options", [{"padding": 1}, {"stride": 2, "padding": 1, "groups": 2}], ids=str)
def test_blocks_differentiate_the_forwards_input_when_x_changes_afterwards(set_threads, monkeypatch, options):
    """Blocks fill their columns again in the backward, from the chunk's copy of the forward's input: an
    ``x`` changed in place between forward and backward does not change the gradients."""
    monkeypatch.setattr(conv_module, "images_per_block", lambda image_bytes: 2)
    set_threads(2)
    x, dout = _data(6, np.float64, seed=9, options=options)
    want = _run(_layer(options, impl="loop"), x, dout)
    layer = _layer(options)
    out = layer.forward(x)
    x *= -2.0
    got = (out, layer.backward(dout), {k: v.copy() for k, v in layer.grads.items()})
    assert all(len(part.blocks) == 2 for part in layer.im2col_plan(x.shape).parts)
    _assert_close(got, want, 1e-12)


def test_concurrent_forwards_on_one_threaded_instance_each_get_their_own_output(set_threads):
    set_threads(2)
    layer = _layer({"padding": 1})
    rng = np.random.default_rng(8)
    inputs = [rng.standard_normal((5, 4, 7, 9)) for _ in range(6)]
    set_threads(1)
    expected = [_layer({"padding": 1}).forward(x) for x in inputs]
    set_threads(2)
    results: dict[int, list] = {k: [] for k in range(len(inputs))}
    barrier = threading.Barrier(len(inputs), timeout=60)

    def infer(k):
        barrier.wait()
        for _ in range(5):
            results[k].append(layer.forward(inputs[k]))

    callers = [threading.Thread(target=infer, args=(k,)) for k in range(len(inputs))]
    for t in callers:
        t.start()
    for t in callers:
        t.join(120)
    for k, outs in results.items():
        assert len(outs) == 5
        for out in outs:
            assert max_rel_error(out, expected[k]) <= 1e-12


def test_threads_training_their_own_copies_at_once_each_get_their_gradients(set_threads):
    set_threads(2)
    layer = _layer({"padding": 1, "groups": 2})
    rng = np.random.default_rng(9)
    batches = [(rng.standard_normal((4, 4, 7, 9)), rng.standard_normal((4, 6, 7, 9))) for _ in range(4)]
    copies = [copy.deepcopy(layer) for _ in batches]
    expected = [_run(_layer({"padding": 1, "groups": 2}, impl="loop"), x, d) for x, d in batches]
    found: dict[int, tuple] = {}
    barrier = threading.Barrier(len(batches), timeout=60)

    def train(k):
        barrier.wait()
        for _ in range(3):
            found[k] = _run(copies[k], *batches[k])

    callers = [threading.Thread(target=train, args=(k,)) for k in range(len(batches))]
    for t in callers:
        t.start()
    for t in callers:
        t.join(120)
    for k in range(len(batches)):
        _assert_close(found[k], expected[k], 1e-12)


def test_backward_from_another_thread_than_the_forward_still_raises(set_threads):
    set_threads(2)
    layer = _layer({"padding": 1})
    x, dout = _data(4, np.float64, seed=10)
    layer.forward(x)
    errors = []

    def backward():
        try:
            layer.backward(dout)
        except RuntimeError as exc:
            errors.append(str(exc))

    caller = threading.Thread(target=backward)
    caller.start()
    caller.join(60)
    assert len(errors) == 1 and "Conv2d.backward: called in thread" in errors[0]


@pytest.mark.parametrize("options", [o for o in OPTIONS if "stride" not in o], ids=str)
def test_a_layer_on_the_flipped_kernel_path_equals_the_loop(set_threads, blocks, options):
    """8 -> 4 channels (``F <= C/2``, stride 1): the layer's own choice is the flipped kernel, split over threads."""
    set_threads(2)
    options = dict(options)
    kernel = options.pop("kernel_size", 3)
    layer, loop = (Conv2d(8, 4, kernel, impl=impl, rng=5, **options) for impl in ("im2col", "loop"))
    rng = np.random.default_rng(11)
    x = rng.standard_normal((5, 8, 7, 6))
    dout = rng.standard_normal(layer.forward(x).shape)
    assert {plan.input_grad_method for plan in layer.im2col_plan(x.shape).parts} == {"flipped"}
    _assert_close(_run(layer, x, dout), _run(loop, x, dout), TOL[np.float64])
    _assert_blocks(layer, x, blocks)


# -- non-finite values -------------------------------------------------------------------------------------
# (in, out) channels per layer: several input channels per group (col2im's shifted layout), one (its plain
# layout), and at most half as many outputs as inputs (the flipped kernel, at stride 1)
NONFINITE_CHANNELS = {"shifted": (4, 6), "plain": (1, 4), "flipped": (4, 2)}
NONFINITE_OPTIONS = [
    {"padding": 0},
    {"padding": 1},
    {"stride": (1, 2), "padding": 1},
    {"stride": (2, 1)},
    {"padding": 2, "dilation": 2},
    {"padding": 1, "groups": 2},
    {"padding": ((1, 0), (2, 1)), "padding_mode": "reflect"},
]


def _assert_same_values(got: np.ndarray, want: np.ndarray, what: str) -> None:
    """The same NaNs and infinities in the same places, the finite values equal to float64 rounding."""
    for test in (np.isnan, np.isposinf, np.isneginf):
        assert np.array_equal(test(got), test(want)), f"{what}: {test.__name__} differs"
    finite = np.isfinite(want)
    if finite.any():
        assert max_rel_error(got[finite], want[finite]) <= TOL[np.float64], what


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("where", ["input", "weight"])
@pytest.mark.parametrize("options, layout", [
    pytest.param(options, layout, id=f"{options}-{layout}") for options in NONFINITE_OPTIONS
    for layout, channels in NONFINITE_CHANNELS.items()
    if all(n % options.get("groups", 1) == 0 for n in channels)])  # the layouts whose channels split into the groups
def test_non_finite_inputs_and_weights_give_the_loops_infs_and_nans(set_threads, blocks, options, layout, where):
    """The backward's GEMMs meet zeros that are not part of the convolution (``dout``'s past each row's end, whose
    columns hold input values; ``dout``'s border in the flipped kernel): a non-finite input or weight times such
    a zero must not put a NaN in a gradient where the loop implementation has a finite value or an infinity.
    Values at the first columns are read past the row end of the windows before them. (The forward is compared
    with PyTorch's, non-finite value by value, in ``tests/comparisons/test_nonfinite_torch.py``.)"""
    c, f = NONFINITE_CHANNELS[layout]
    set_threads(2)
    layer, loop = (Conv2d(c, f, 3, impl=impl, rng=5, **options) for impl in ("im2col", "loop"))
    rng = np.random.default_rng(12)
    x = rng.standard_normal((5, c, 8, 9))
    if where == "input":
        x[0, 0, 3, 0], x[2, -1, 5, 1], x[4, 0, 0, 0] = np.inf, -np.inf, np.nan
    else:
        for w in (layer.params["weight"], loop.params["weight"]):
            w[-1, 0, 1, 2] = np.inf
    dout = rng.standard_normal(loop.forward(x).shape)
    got, want = _run(layer, x, dout), _run(loop, x, dout)
    _assert_blocks(layer, x, blocks)
    if layout == "flipped" and options.get("stride", 1) == 1:
        assert {part.input_grad_method for part in layer.im2col_plan(x.shape).parts} == {"flipped"}
    for name, a, b in [("dx", got[1], want[1])] + [(key, got[2][key], want[2][key]) for key in want[2]]:
        _assert_same_values(a, b, name)
    assert np.isnan(got[1]).any() or np.isinf(got[1]).any() or np.isnan(got[2]["weight"]).any() or np.isinf(
        got[2]["weight"]).any(), "the case has no non-finite gradient to check"


def test_a_finite_pass_after_a_non_finite_one_is_the_plain_computation(set_threads):
    """The non-finite mode is for the pass that needed it: the next finite pass gives the same results, to the bit,
    as a layer that never saw a non-finite value."""
    set_threads(2)
    x, dout = _data(4, np.float64, seed=13)
    layer, fresh = _layer({"padding": 1}), _layer({"padding": 1})
    bad = x.copy()
    bad[0, 0, 2, 0] = np.inf
    with np.errstate(invalid="ignore"):
        _run(layer, bad, dout)
    got, want = _run(layer, x, dout), _run(fresh, x, dout)
    _assert_close(got, want, 0.0)
