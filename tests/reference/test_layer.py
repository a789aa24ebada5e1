"""The rules every layer follows (reference/layer.py): one forward's cache, parameters as they were at
forward, threads, copies and pickles; each tested on every layer kind and implementation."""

from __future__ import annotations

import copy
import pickle
import threading

import numpy as np
import pytest

from tests.reference.helpers import LAYER_KINDS, WITH_PARAMS, assert_same, forward_backward, fresh_like

KINDS = list(LAYER_KINDS)


def draw(shape, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def expected_pass(build, subject, x, dout=None):
    """What ``subject`` must give for one forward + backward on ``x``: a fresh layer in its state."""
    return forward_backward(fresh_like(build, subject), x, dout)


COPIERS = {"deepcopy": copy.deepcopy, "pickle": lambda layer: pickle.loads(pickle.dumps(layer))}


@pytest.mark.parametrize("copier", COPIERS)
@pytest.mark.parametrize("stage", ["unused", "after forward", "after backward"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_copy_computes_like_the_original(kind, stage, copier):
    build, (shape, other) = LAYER_KINDS[kind]
    layer = build()
    if stage != "unused":
        layer.forward(draw(shape, 0))
    if stage == "after backward":
        layer.backward(draw(layer.forward(draw(shape, 0)).shape, 1))
    clone = COPIERS[copier](layer)
    for seed, s in enumerate((shape, other, shape)):  # the same shape (a kept plan), another, and back
        x = draw(s, 10 + seed)
        expected = expected_pass(build, layer, x)
        assert_same(forward_backward(clone, x), expected, f"copy, input {s}")
        assert_same(forward_backward(layer, x), expected, f"original, input {s}")


@pytest.mark.parametrize("copier", COPIERS)
@pytest.mark.parametrize("kind", KINDS)
def test_a_copy_taken_between_forward_and_backward_backpropagates_that_forward(kind, copier):
    build, (shape, _) = LAYER_KINDS[kind]
    layer = build()
    x = draw(shape, 0)
    expected = expected_pass(build, layer, x)
    layer.forward(x)
    clone = COPIERS[copier](layer)
    dout = np.random.default_rng(7).standard_normal(expected[0].shape)
    assert_same(clone.backward(dout), expected[1], "copy's dx")
    assert_same(layer.backward(dout), expected[1], "original's dx")


def test_a_shallow_copy_is_refused():
    build, _ = LAYER_KINDS["Conv2d-im2col"]
    with pytest.raises(TypeError, match="copy.deepcopy"):
        copy.copy(build())


@pytest.mark.parametrize("kind", KINDS)
def test_backward_before_forward_raises(kind):
    build, (shape, _) = LAYER_KINDS[kind]
    with pytest.raises(RuntimeError, match="before forward"):
        build().backward(np.ones(shape))


@pytest.mark.parametrize("kind", KINDS)
def test_backward_twice_repeats_the_same_gradients(kind):
    build, (shape, _) = LAYER_KINDS[kind]
    layer = build()
    first = forward_backward(layer, draw(shape, 0))
    dout = np.random.default_rng(7).standard_normal(first[0].shape)
    again = layer.backward(dout)
    assert_same(again, first[1], "second dx")
    for key, grad in first[2].items():
        assert_same(layer.grads[key], grad, f"second grads[{key!r}]")


@pytest.mark.parametrize("change", ["in place", "replaced"])
@pytest.mark.parametrize("kind", WITH_PARAMS)
def test_backward_uses_the_parameters_of_its_forward(kind, change):
    """A parameter changed (or replaced) between forward and backward takes effect at the next forward, in
    both implementations alike."""
    build, (shape, _) = LAYER_KINDS[kind]
    layer = build()
    x = draw(shape, 0)
    expected = expected_pass(build, layer, x)
    layer.forward(x)
    for key in list(layer.params):
        if change == "in place":
            layer.params[key] *= -3.0
        else:
            layer.params[key] = layer.params[key] * -3.0
    dout = np.random.default_rng(7).standard_normal(expected[0].shape)
    assert_same(layer.backward(dout), expected[1], "dx")
    for key, grad in expected[2].items():
        assert_same(layer.grads[key], grad, f"grads[{key!r}]")
    x2 = draw(shape, 1)  # and the next forward computes with the changed values
    assert_same(forward_backward(layer, x2), expected_pass(build, layer, x2), "next pass")


def run_in_threads(target, count: int) -> list:
    """Run ``target(i)`` in ``count`` threads at once; return the results (re-raising a thread's error)."""
    results, errors = [None] * count, []
    start = threading.Barrier(count)

    def work(i):
        try:
            start.wait()
            results[i] = target(i)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


@pytest.mark.parametrize("kind", KINDS)
def test_concurrent_forwards_each_get_their_own_output(kind):
    build, shapes = LAYER_KINDS[kind]
    layer = build().eval()
    inputs = [draw(shapes[i % 2], i) for i in range(8)]  # alternating shapes: plans rebuilt under contention
    reference = fresh_like(build, layer)
    expected = [reference.forward(x) for x in inputs]

    def work(i):
        return [np.array(layer.forward(x), copy=True) for x in inputs[i::4] for _ in range(10)]

    for i, outputs in enumerate(run_in_threads(work, 4)):
        for out, want in zip(outputs, [e for e in expected[i::4] for _ in range(10)], strict=True):
            assert_same(out, want, f"thread {i}")


@pytest.mark.parametrize("kind", KINDS)
def test_backward_from_another_thread_raises(kind):
    build, (shape, _) = LAYER_KINDS[kind]
    layer = build()
    out = layer.forward(draw(shape, 0))
    with pytest.raises(RuntimeError, match="thread"):
        run_in_threads(lambda i: layer.backward(np.ones_like(out)), 1)


@pytest.mark.parametrize("kind", KINDS)
def test_backward_after_another_threads_forward_raises(kind):
    """Thread A's forward, thread B's forward, then A's backward: the cache is B's, so A is refused."""
    build, (shape, _) = LAYER_KINDS[kind]
    layer = build()
    out = layer.forward(draw(shape, 0))
    run_in_threads(lambda i: layer.forward(draw(shape, 1)), 1)
    with pytest.raises(RuntimeError, match="thread"):
        layer.backward(np.ones_like(out))


@pytest.mark.parametrize("kind", KINDS)
def test_a_copy_per_thread_trains_correctly(kind):
    build, (shape, _) = LAYER_KINDS[kind]
    layer = build()
    inputs = [draw(shape, i) for i in range(4)]
    expected = [expected_pass(build, layer, x) for x in inputs]
    copies = [copy.deepcopy(layer) for _ in inputs]

    def work(i):
        return [forward_backward(copies[i], inputs[i]) for _ in range(5)]

    for i, passes in enumerate(run_in_threads(work, 4)):
        for result in passes:
            if kind != "Dropout":  # each pass draws a new mask: only the first matches the expectation
                assert_same(result, expected[i], f"thread {i}")
        assert_same(passes[0], expected[i], f"thread {i}")
