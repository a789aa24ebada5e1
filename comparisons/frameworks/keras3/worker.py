"""A Keras backend in its own process: the ``keras-jax`` and ``keras-torch`` entries.

Keras fixes its backend when it is imported (``KERAS_BACKEND``), and the parent process already runs Keras on
TensorFlow for the ``keras`` entry, so every other backend runs in a worker process:

- one long-lived worker per entry per parent process, started by the entry's ``load()`` (``multiprocessing``,
  "spawn" context: a fresh interpreter, nothing of the parent's imported Keras inherited), for the purpose the
  parent prepared the entry for (:func:`comparisons.frameworks.prepare` in the worker, with
  :data:`WORKER_VAR` naming the entry, sets ``KERAS_BACKEND`` and the backend's settings there and only there);
- requests ``(op, args)`` and answers ``("ok", value)`` / ``("error", "Type: message")`` cross a
  ``multiprocessing`` pipe, pickled: cases, numpy arrays, strings;
- ops: ``run``, ``unsupported``, ``dtype_reason``, ``reference_case``, ``trainer`` / ``trainer_call`` (a trainer
  kept in the worker under an id), ``bench_step`` / ``bench_time`` / ``bench_call`` (a benchmark step kept in the
  worker under an id, timed there: :class:`RemoteStep`), and ``info`` (versions);
- an exception in the worker, its death (a signal, an exit) or no answer within :data:`REQUEST_TIMEOUT_S`
  raise :class:`~comparisons.harness.FrameworkCrashed` in the parent with the reason; a dead or stopped
  worker is replaced by a fresh one at the next request. ``run`` raising it gives failed records
  (:func:`comparisons.harness.compare`); ``unsupported``, ``dtype_reason`` and ``reference_case`` answer "supported"
  and the case unchanged when the worker fails, and the case's next ``run`` raises FrameworkCrashed with that reason,
  so the failure shows as the case's failed records.

The parent's :class:`~comparisons.frameworks.protocol.Framework` for the entry forwards these calls; its
``bench_step`` returns a :class:`RemoteStep`, built and timed in the worker by
:func:`comparisons.bench.measure.time_steps` (a pipe round trip per call would be timed with the layer), and a
failure there (a crash included) raises :class:`comparisons.bench.measure.Unavailable` with the reason.
"""

from __future__ import annotations

import functools
import importlib.util
import multiprocessing
import os
import signal
import time
import traceback
from collections.abc import Callable

WORKER_VAR = "CNNREF_KERAS_WORKER"  # set in a worker process to its entry's name
STARTUP_TIMEOUT_S = 300
REQUEST_TIMEOUT_S = 600
POLL_S = 0.5


def _crashed(message: str):
    from comparisons.harness import FrameworkCrashed

    return FrameworkCrashed(message)


# -- the worker process ------------------------------------------------------------------------------------------
def serve(conn, name: str, purpose: str, load: Callable[[str], object]) -> None:
    """The worker's loop: prepare ``name`` for ``purpose``, ``load(name)`` its in-process Framework, answer requests
    until the pipe closes."""
    os.environ[WORKER_VAR] = name
    trainers: dict[int, object] = {}
    try:
        from comparisons import frameworks

        frameworks.prepare(name, purpose)
        framework = load(name)
    except BaseException as exc:  # noqa: BLE001 (every failure goes back to the parent as its reason)
        conn.send(("error", _describe(exc)))
        return

    def new_trainer(*args):
        trainers[len(trainers)] = framework.trainer(*args)
        return len(trainers) - 1

    ops = {"info": lambda: {"version": framework.version, "versions": framework.versions, "kinds": framework.kinds},
           "run": lambda args, kwargs: framework.run(*args, **kwargs),
           "unsupported": framework.unsupported, "reference_case": framework.reference_case,
           "dtype_reason": framework.dtype_reason,
           "trainer": new_trainer,
           "trainer_call": lambda index, method, *args: getattr(trainers[index], method)(*args),
           **_bench_ops(framework)}
    conn.send(("ok", ops["info"]()))
    while True:
        try:
            op, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            answer = ("ok", ops[op](*args))
            conn.send(answer)
        except Exception as exc:  # noqa: BLE001
            conn.send(("error", _describe(exc)))


def _bench_ops(framework) -> dict[str, Callable]:
    """The worker's benchmark ops: ``bench_step(layer, shape, dtype, threads, seed) -> id`` builds the entry's step
    and keeps it; ``bench_time(id, rounds, min_sample_s, settle_s) -> (per-call times, calls per sample)`` times it
    here with :func:`comparisons.bench.measure.time_steps` and forgets it; ``bench_call(id)`` runs it once and
    returns its result as numpy arrays."""
    import numpy as np

    from comparisons.bench.measure import time_steps

    steps: dict[int, Callable] = {}

    def build(*args):
        steps[len(steps)] = framework.bench_step(*args)
        return len(steps) - 1

    def measure(index, rounds, min_sample_s, settle_s):
        samples = time_steps({"step": steps.pop(index)}, rounds, min_sample_s, settle_s=settle_s)["step"]
        return [float(t) for t in samples], samples.calls

    def call(index):
        return [np.asarray(t) for t in steps[index]()]

    return {"bench_step": build, "bench_time": measure, "bench_call": call}


def _describe(exc: BaseException) -> str:
    """``"Type: message (at file:line)"``: the exception and the innermost frame of the project or Keras."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


# -- the parent's side ---------------------------------------------------------------------------------------------
def _exit_reason(exitcode: int | None) -> str:
    if exitcode is None:
        return "no exit status"
    if exitcode < 0:
        return f"killed by {signal.Signals(-exitcode).name}"
    return f"exit status {exitcode}"


class Worker:
    """One entry's worker process, started on the first request (and again after it died)."""

    def __init__(self, name: str, purpose: str, load: Callable[[str], object]) -> None:
        self.name, self.purpose, self.load = name, purpose, load
        self.process = self.conn = None
        self.info: dict = {}

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self.process = context.Process(target=serve, args=(child, self.name, self.purpose, self.load),
                                       name=f"cnnref-{self.name}", daemon=True)
        self.process.start()
        child.close()
        self.conn = parent
        self.info = self._receive(STARTUP_TIMEOUT_S, "starting")

    def stop(self) -> None:
        """End this worker's process (it is ours: by its own handle) and close the pipe."""
        if self.process is not None and self.process.is_alive():
            self.process.kill()
        if self.process is not None:
            self.process.join(5)
        if self.conn is not None:
            self.conn.close()
        self.process = self.conn = None

    def call(self, op: str, *args):
        """Send ``(op, args)``, return the answer; FrameworkCrashed with the reason on an error or a death."""
        if self.process is None or not self.process.is_alive():
            self.stop()
            self.start()
        try:
            self.conn.send((op, args))
        except (OSError, ValueError) as exc:
            reason = _exit_reason(self.process.exitcode) if not self.process.is_alive() else str(exc)
            self.stop()
            raise _crashed(f"{self.name} worker process: request {op!r} not sent: {reason}") from exc
        return self._receive(REQUEST_TIMEOUT_S, op)

    def _receive(self, timeout: float, op: str):
        deadline = time.monotonic() + timeout
        pid = self.process.pid
        while not self.conn.poll(POLL_S):
            if not self.process.is_alive():
                self.process.join(1)
                reason = _exit_reason(self.process.exitcode)
                self.stop()
                raise _crashed(f"{self.name} worker process {pid} died during {op!r}: {reason}")
            if time.monotonic() > deadline:
                self.stop()
                raise _crashed(f"{self.name} worker process {pid}: no answer to {op!r} within {timeout:.0f} s")
        try:
            status, payload = self.conn.recv()
        except (EOFError, OSError) as exc:
            self.process.join(1)
            reason = _exit_reason(self.process.exitcode)
            self.stop()
            raise _crashed(f"{self.name} worker process {pid} died during {op!r}: {reason}") from exc
        if status == "error":
            if op == "starting":
                self.stop()
            raise _crashed(f"{self.name} worker process: {op} raised {payload}")
        return payload


_WORKERS: dict[str, Worker] = {}


def worker(name: str, purpose: str, load: Callable[[str], object]) -> Worker:
    """This process's worker of entry ``name`` (started now if needed); a worker prepared for another purpose is
    stopped and replaced."""
    current = _WORKERS.get(name)
    if current is not None and current.purpose != purpose:
        current.stop()
        current = None
    if current is None:
        current = _WORKERS[name] = Worker(name, purpose, load)
    if current.process is None:
        current.start()
    return current


class RemoteTrainer:
    """A :class:`~comparisons.frameworks.protocol.Trainer` kept in the worker; ``step``/``predict``/``params``
    forwarded."""

    def __init__(self, remote: Worker, case, params, dtype: str, optimizer: str, lr: float) -> None:
        self.name, self.remote = remote.name, remote
        self.index = remote.call("trainer", case, params, dtype, optimizer, lr)
        self.process = remote.process

    def _call(self, method: str, *args):
        if self.remote.process is not self.process:
            raise _crashed(f"{self.name} worker process was restarted: its trainer is gone")
        return self.remote.call("trainer_call", self.index, method, *args)

    def step(self, x, y):
        return self._call("step", x, y)

    def predict(self, x):
        return self._call("predict", x)

    def params(self):
        return self._call("params")


def _unavailable(exc: Exception):
    """:class:`comparisons.bench.measure.Unavailable` for a failed benchmark request: the worker's own reason when
    its step raised Unavailable there, else the whole failure (a crash: the process and how it ended)."""
    from comparisons.bench.measure import Unavailable

    message = str(exc)
    marker = "raised Unavailable: "
    return Unavailable(f"{message.split(marker, 1)[1]} (in the worker)" if marker in message else message)


@functools.cache
def _remote_step_class():
    """:class:`RemoteStep`, defined on first use: it subclasses :class:`comparisons.bench.measure.TimedElsewhere`,
    which this module does not import at its top (the registry imports it without the benchmark)."""
    from comparisons.bench.measure import Samples, TimedElsewhere, Unavailable
    from comparisons.harness import FrameworkCrashed

    class RemoteStep(TimedElsewhere):
        """A benchmark step kept in ``remote``'s worker under ``index``: :meth:`measure` times it there (once), a call
        runs it there and returns its result as numpy arrays. A failure in the worker raises Unavailable."""

        def __init__(self, remote: Worker, index: int) -> None:
            self.name, self.remote, self.index = remote.name, remote, index
            self.process = remote.process

        def _call(self, op: str, *args):
            if self.remote.process is not self.process or not self.process.is_alive():
                ended = "" if self.process.is_alive() else f" ({_exit_reason(self.process.exitcode)})"
                raise Unavailable(f"{self.name} worker process {self.process.pid} ended{ended}: "
                                  f"its benchmark step is gone")
            try:
                return self.remote.call(op, self.index, *args)
            except FrameworkCrashed as exc:
                raise _unavailable(exc) from exc

        def measure(self, rounds: int, min_sample_s: float, settle_s: float) -> Samples:
            times, calls = self._call("bench_time", rounds, min_sample_s, settle_s)
            samples = Samples(times)
            samples.calls = calls
            return samples

        def __call__(self):
            return self._call("bench_call")

    return RemoteStep


def framework(name: str, purpose: str, packages: tuple[str, ...], load: Callable[[str], object]):
    """The parent's :class:`~comparisons.frameworks.protocol.Framework` of entry ``name``, forwarding to its worker
    (``load(name)``, a module-level function, builds the in-process Framework in the worker). A missing package
    raises ModuleNotFoundError here (the registry turns it into FrameworkUnavailable) before any process starts."""
    for package in packages:
        if importlib.util.find_spec(package) is None:
            raise ModuleNotFoundError(f"No module named {package!r}", name=package)
    from comparisons.harness import FrameworkCrashed

    from ..protocol import Framework

    remote = worker(name, purpose, load)
    failed: dict[str, list[str]] = {}  # case id -> why a question about it failed: its run raises that

    def ask(op: str, case, *args, otherwise):
        try:
            return remote.call(op, case, *args)
        except FrameworkCrashed as exc:
            failed.setdefault(case.id, []).append(str(exc))
            return otherwise

    def run(case, inputs):
        if case.id in failed:
            raise FrameworkCrashed("; ".join(failed.pop(case.id)))
        return remote.call("run", (case, inputs), {})

    def unsupported(case):
        return ask("unsupported", case, otherwise=None)

    def dtype_reason(case, dtype):
        return ask("dtype_reason", case, dtype, otherwise=None)

    def reference_case(case):
        return ask("reference_case", case, otherwise=case)

    def trainer(case, params, dtype, optimizer, lr):
        return RemoteTrainer(remote, case, params, dtype, optimizer, lr)

    def bench_step(layer, shape, dtype, threads, seed=0):
        try:
            index = remote.call("bench_step", layer, shape, dtype, threads, seed)
        except FrameworkCrashed as exc:
            raise _unavailable(exc) from exc
        return _remote_step_class()(remote, index)

    return Framework(name=name, version=remote.info["version"], versions=remote.info["versions"],
                     unsupported=unsupported, reference_case=reference_case, run=run, trainer=trainer,
                     bench_step=bench_step, dtype_reason=dtype_reason, reference_adam={"eps_hat": True},
                     kinds=remote.info["kinds"])
