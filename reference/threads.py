"""Running the chunks of a batch on several threads: the thread setting, the worker pool, numpy's BLAS limit.

numpy releases the GIL in its copies and in ``matmul``, so a batch split into chunks, each chunk's copies and
GEMMs on its own Python thread with BLAS at one thread, keeps every core busy through the copies too (BLAS'
own threads only parallelise the GEMMs, and leave a core idle during each copy). :func:`run_parallel` runs
the first task on the caller's thread and the others on a process-wide pool of worker threads, with numpy's
BLAS limited to one thread while any such call runs (through one reused ``threadpoolctl`` controller; the
limit is lifted when the last one ends). The tasks' buffers belong to their callers: the pool holds threads
only.

The thread count is a process-wide setting, :func:`set_num_threads` (default: the cores this process may
run on). With one thread, or one task, the work runs on the caller's thread with BLAS as it is. Without
``threadpoolctl`` installed the chunks still run on threads, BLAS unlimited.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from .validation import check_int

T = TypeVar("T")

_setting: int | None = None  # None: the cores


@functools.lru_cache(maxsize=1)
def cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container or ``taskset`` can narrow
    below ``os.cpu_count()``), read once."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def set_num_threads(threads: int | None) -> None:
    """Threads a layer may split one batch over (``Conv2d(impl="im2col")``); None: the cores (the default).
    1 runs every batch on the caller's thread."""
    global _setting
    _setting = None if threads is None else check_int(threads, "set_num_threads", "threads", 1)


def get_num_threads() -> int:
    """The thread count :func:`set_num_threads` set, else the cores."""
    return cores() if _setting is None else _setting


def batch_slices(n: int, parts: int) -> list[slice]:
    """``n`` images in ``min(n, parts)`` contiguous chunks whose sizes differ by at most one, larger first."""
    parts = max(1, min(n, parts))
    size, extra = divmod(n, parts)
    bounds = [0]
    for k in range(parts):
        bounds.append(bounds[-1] + size + (k < extra))
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


@functools.lru_cache(maxsize=1)
def controller():
    """The process's ``threadpoolctl.ThreadpoolController``, built on first use and reused (building one scans
    the loaded libraries); None without ``threadpoolctl``."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()


class _BlasLimit:
    """numpy's BLAS at one thread while at least one :func:`run_parallel` call runs, then back to what it was.

    The limit is process-wide (BLAS has one thread count), hence the count of calls inside it. The
    ``threadpoolctl`` controller is built once: building one scans the loaded libraries (a fresh
    ``threadpool_limits`` costs about 0.4 ms); setting a thread count through it costs microseconds.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.saved: list[tuple[object, int | None]] = []
        self._libraries: list | None = None

    def libraries(self) -> list:
        """The BLAS libraries' ``threadpoolctl`` controllers ([] without threadpoolctl)."""
        if self._libraries is None:
            found = controller()
            self._libraries = [] if found is None else list(found.select(user_api="blas").lib_controllers)
        return self._libraries

    def __enter__(self) -> None:
        with self.lock:
            if self.depth == 0:
                self.saved = [(lib, lib.get_num_threads()) for lib in self.libraries()]
                for lib, _ in self.saved:
                    lib.set_num_threads(1)
            self.depth += 1

    def __exit__(self, *exc) -> None:
        with self.lock:
            self.depth -= 1
            if self.depth == 0:
                for lib, threads in self.saved:
                    if threads is not None:
                        lib.set_num_threads(threads)
                self.saved = []


_blas_limit = _BlasLimit()
_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_workers = 0


def _submit(tasks: Sequence[Callable[[], T]]) -> list[Future]:
    """Queue ``tasks`` on the process's worker pool, grown first to at least one thread per task (under the
    pool's lock, so that no other caller retires the pool in between)."""
    global _pool, _pool_workers
    with _pool_lock:
        if _pool is None or _pool_workers < len(tasks):
            old, _pool = _pool, ThreadPoolExecutor(max_workers=len(tasks), thread_name_prefix="reference-worker")
            _pool_workers = len(tasks)
            if old is not None:
                old.shutdown(wait=False)  # its queued tasks still run
        return [_pool.submit(task) for task in tasks]


def _forget_pool() -> None:
    """In a forked child: the parent's worker threads do not exist there."""
    global _pool, _pool_workers, _blas_limit
    _pool, _pool_workers, _blas_limit = None, 0, _BlasLimit()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def run_parallel(tasks: Sequence[Callable[[], T]]) -> list[T]:
    """Run every task (zero-argument callables) at once and return their results in order: the first on the
    caller's thread, the others on worker threads, numpy's BLAS at one thread meanwhile. A single task runs
    on the caller's thread, BLAS untouched. Waits for every task before it returns or raises (the first
    exception), so that no task still writes to its buffers afterwards."""
    if len(tasks) == 1:
        return [tasks[0]()]
    with _blas_limit:
        futures = _submit(tasks[1:])
        error: BaseException | None = None
        results: list = []
        try:
            results.append(tasks[0]())
        except BaseException as exc:  # re-raised once the workers are done
            error = exc
        for future in futures:
            try:
                results.append(future.result())
            except BaseException as exc:
                error = error or exc
    if error is not None:
        raise error
    return results
