"""reference.threads: the thread setting, batch chunks, running tasks at once with BLAS at one thread."""

from __future__ import annotations

import threading

import pytest

from reference import threads


@pytest.fixture
def restore_setting():
    saved = threads._setting
    yield
    threads._setting = saved


@pytest.mark.parametrize(("n", "parts", "sizes"), [(7, 2, [4, 3]), (8, 2, [4, 4]), (5, 3, [2, 2, 1]), (1, 2, [1]),
                                                    (3, 4, [1, 1, 1]), (6, 1, [6])])
def test_batch_slices_cover_the_batch_in_order_with_sizes_one_apart(n, parts, sizes):
    slices = threads.batch_slices(n, parts)
    assert [s.stop - s.start for s in slices] == sizes
    assert slices[0].start == 0 and slices[-1].stop == n
    assert all(a.stop == b.start for a, b in zip(slices[:-1], slices[1:], strict=True))


def test_default_thread_count_is_the_usable_cores(restore_setting):
    threads.set_num_threads(None)
    assert threads.get_num_threads() == threads.cores() >= 1
    threads.set_num_threads(3)
    assert threads.get_num_threads() == 3


@pytest.mark.parametrize(("value", "error", "message"), [
    (0, ValueError, "set_num_threads: threads must be positive, got 0 (int)"),
    (True, TypeError, "set_num_threads: threads must be an int, got True (bool)"),
    ("2", TypeError, "set_num_threads: threads must be an int, got '2' (str)"),
])
def test_set_num_threads_refuses_what_is_not_a_positive_int(restore_setting, value, error, message):
    with pytest.raises(error) as info:
        threads.set_num_threads(value)
    assert str(info.value) == message


def test_tasks_run_at_once_on_different_threads_and_return_in_order():
    barrier = threading.Barrier(3, timeout=30)  # each task waits for the other two: they must run at once

    def task(k):
        barrier.wait()
        return k, threading.get_ident()

    found = threads.run_parallel([lambda k=k: task(k) for k in range(3)])
    assert [k for k, _ in found] == [0, 1, 2]
    assert found[0][1] == threading.get_ident()  # the first on the caller's thread
    assert len({ident for _, ident in found}) == 3


def test_one_task_runs_on_the_callers_thread():
    assert threads.run_parallel([threading.get_ident]) == [threading.get_ident()]


def test_an_error_is_raised_after_every_task_finished():
    finished = threading.Event()

    def slow():
        finished.wait(0.2)
        finished.set()
        return 1

    def fails():
        raise ArithmeticError("task 0")

    with pytest.raises(ArithmeticError, match="task 0"):
        threads.run_parallel([fails, slow])
    assert finished.is_set()


def _blas_threads() -> list[int]:
    return [lib.get_num_threads() for lib in threads._blas_limit.libraries()]


def test_blas_runs_at_one_thread_inside_and_as_before_after():
    if not threads._blas_limit.libraries():  # threadpoolctl is a dependency; the BLAS is the build's
        pytest.skip("threadpoolctl finds no BLAS library in this process")
    libraries = threads._blas_limit.libraries()
    for lib in libraries:
        lib.set_num_threads(2)
    before = _blas_threads()
    if before != [2] * len(libraries):
        pytest.skip("another thread controls OpenBLAS' thread count (threadpoolctl lets one thread set it)")
    inside = threads.run_parallel([_blas_threads, _blas_threads])
    assert inside == [[1] * len(libraries)] * 2
    assert _blas_threads() == before
    with pytest.raises(ZeroDivisionError):
        threads.run_parallel([lambda: 1 / 0, _blas_threads])
    assert _blas_threads() == before
