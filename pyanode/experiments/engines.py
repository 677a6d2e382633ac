"""Where the trials of a batch run: a local pool of processes, Dask distributed, or this process.

Every engine runs the same task (`pyanode.experiments.runner.execute_trial`) with the same
arguments, and each trial pins its own torch thread count and seeds its own generators, so a trial
gives the same result whatever the engine, the number of workers or the order of the trials.

`engine.map(fn, tasks)` gives a `TaskRun`: the `(index, outcome)` of each task as it finishes,
where the outcome is what `fn(*task)` returned, the exception it raised, or `WorkerDied` when the
process running it died in each of a bounded number of attempts (a trial that always kills its
worker, as the out-of-memory killer does, must not stop the others). A task that raised does not
stop the others either: the caller decides (`TaskRun.stop` starts no more tasks).

The local pool is pyanode's own (not `concurrent.futures.ProcessPoolExecutor`, which gives up
on every task when one worker dies): processes started with the "spawn" method (forking a process
that has started torch's thread pools is unsafe), one task at a time each, a dead worker replaced
and its task run again (it resumes from its checkpoint). Workers ignore Ctrl-C (the sweep decides:
it ends them, and a second Ctrl-C kills them at once) and exit when the sweep's process dies.
Dask runs the tasks with `pure=False` (not cached or merged by the hash of their arguments: a
trial re-submitted after a failure runs again) and retries a task whose worker died as its
scheduler's `allowed-failures` says.
"""

from __future__ import annotations

import abc
import collections
import contextlib
import logging
import multiprocessing
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import as_completed
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any

from pyanode._errors import SpecError
from pyanode._validate import check_choice, check_int
from pyanode.specs import setting

log = logging.getLogger("pyanode")

ENGINES = ("local", "dask", "inline")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
ATTEMPTS = 3  # runs of a task whose worker dies, before it is given up (Dask's default is 4)
GRACE = 5.0  # seconds a worker has to end on SIGTERM before it is killed
# `host:port` or `scheme://host:port` (host a name, an IPv4 or a bracketed IPv6 address)
_ADDRESS = re.compile(r"(?:([a-z][a-z0-9+.-]*)://)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+)(?::(\d+))?")

Task = tuple[Any, ...]


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    with contextlib.suppress(AttributeError):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # pragma: no cover - macOS, Windows


def pin_threads(threads: int) -> None:
    """`threads` intra-op threads for torch, OpenMP, MKL and OpenBLAS (in a worker process)."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    import torch

    torch.set_num_threads(threads)


class WorkerDied(RuntimeError):
    """The process running a task died (killed by a signal, such as SIGKILL from the
    out-of-memory killer, or exited) in each of its `attempts` runs.

    Arguments:
        attempts: how many times the task was run.
        signal: the name of the signal that killed the last worker (e.g. "SIGKILL"), or None
            when unknown (an exit, or a Dask worker elsewhere).
        detail: how it died, in words.
    """

    def __init__(self, attempts: int, signal: str | None, detail: str):
        self.attempts, self.signal, self.detail = attempts, signal, detail
        super().__init__(f"its worker process died in each of {attempts} attempt(s): {detail}")

    def __reduce__(self):
        return (type(self), (self.attempts, self.signal, self.detail))


def _death(exitcode: int | None) -> tuple[str | None, str]:
    """(signal name, words) for a process's exit code (negative: killed by that signal; None:
    unknown)."""
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (as the out-of-memory killer does)" if name == "SIGKILL" else ""
        return name, f"killed by {name}{hint}"
    return None, "ended" if exitcode is None else f"exited with code {exitcode}"


# -- what every engine gives -----------------------------------------------------------------
class TaskRun(abc.ABC):
    """The tasks of one `AbstractEngine.map` call, as they finish.

    Iterate for `(index, outcome)` pairs. Use it as a context manager: leaving it normally
    lets the running tasks finish (after `stop`), leaving it by an exception (Ctrl-C, a
    SIGTERM turned into SystemExit) ends them now; they resume from their checkpoints later.
    """

    def __enter__(self) -> TaskRun:
        return self

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        self.close(now=kind is not None)

    @abc.abstractmethod
    def __iter__(self) -> Iterator[tuple[int, Any]]: ...

    @abc.abstractmethod
    def stop(self) -> None:
        """Start no more tasks; the iteration ends when the running ones have finished."""

    @abc.abstractmethod
    def close(self, now: bool) -> None:
        """Release the workers: at once (`now`), or after their running tasks."""


class AbstractEngine(abc.ABC):
    """Runs tasks `fn(*task)` (see `TaskRun`); `threads` is the torch thread count per task."""

    threads: int

    @abc.abstractmethod
    def map(self, fn: Callable[..., Any], tasks: Sequence[Task]) -> TaskRun: ...

    @abc.abstractmethod
    def check(self) -> None:
        """Raise SpecError if the engine cannot run here (a missing optional dependency, an
        unreachable scheduler), before any trial starts."""

    @abc.abstractmethod
    def describe(self) -> str: ...


# -- this process ------------------------------------------------------------------------------
@dataclass(frozen=True)
class InProcess(AbstractEngine):
    """The trials one after another in this process (for debugging: breakpoints work)."""

    threads: int = 1

    def __post_init__(self) -> None:
        check_int("threads", self.threads, low=1, error=SpecError)

    def describe(self) -> str:
        return f"this process, {self.threads} thread(s)"

    def check(self) -> None:
        return None

    def map(self, fn, tasks):
        return _Inline(fn, tasks)


class _Inline(TaskRun):
    def __init__(self, fn: Callable[..., Any], tasks: Sequence[Task]):
        self.fn, self.tasks, self.stopped = fn, tasks, False

    def __iter__(self):
        for index, task in enumerate(self.tasks):
            if self.stopped:
                return
            try:
                outcome = self.fn(*task)
            except Exception as err:  # the caller decides; KeyboardInterrupt goes up
                outcome = err
            yield index, outcome

    def stop(self) -> None:
        self.stopped = True

    def close(self, now: bool) -> None:
        return None


# -- the local pool ----------------------------------------------------------------------------
@dataclass(frozen=True)
class LocalPool(AbstractEngine):
    """A pool of `workers` spawned processes, each pinned to `threads` torch threads.

    Arguments:
        workers: processes (None: as many as fit, `available_cpus() // threads`, at least 1).
        threads: intra-op threads per process.
        attempts: runs of a task whose worker dies before it is given up (`WorkerDied`);
            None: 3.
    """

    workers: int | None = None
    threads: int = 1
    attempts: int | None = None

    def __post_init__(self) -> None:
        check_int("threads", self.threads, low=1, error=SpecError)
        if self.workers is not None:
            check_int("workers", self.workers, low=1, error=SpecError)
        if self.attempts is not None:
            check_int("attempts", self.attempts, low=1, error=SpecError)

    @property
    def n_workers(self) -> int:
        return self.workers or max(1, available_cpus() // self.threads)

    def describe(self) -> str:
        return f"local pool of {self.n_workers} process(es) x {self.threads} thread(s)"

    def check(self) -> None:
        return None

    def map(self, fn, tasks):
        size = min(self.n_workers, max(len(tasks), 1))
        return _Pool(fn, tasks, size, self.threads, self.attempts or ATTEMPTS)


def _serve(conn: Any, threads: int) -> None:
    """A pool worker: runs the tasks it receives, one at a time, and sends back each outcome
    (the value, or the exception raised); None ends it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the pool
    signal.signal(signal.SIGTERM, _exit_now)  # decides; SIGTERM unwinds (temp files removed)
    _exit_with_parent()
    pin_threads(threads)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        fn, args = message
        try:
            outcome = fn(*args)
        except Exception as err:
            outcome = err
        try:
            conn.send(("done", outcome))
        except Exception as err:  # an outcome that does not pickle
            conn.send(("done", RuntimeError(f"{type(outcome).__name__} could not be sent "
                                            f"back: {err}")))  # fmt: skip


def _exit_now(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _exit_with_parent() -> None:
    """End this worker when the process that started it dies (SIGKILL, SIGTERM, a crash), so
    that no worker outlives its sweep; the resource tracker then exits with the last of them."""
    parent = multiprocessing.parent_process()
    if parent is None:  # pragma: no cover - not started by multiprocessing
        return

    def watch() -> None:
        parent.join()  # the parent's end of a pipe closes when it dies
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(GRACE)
        os._exit(1)

    threading.Thread(target=watch, name="pyanode-exit-with-parent", daemon=True).start()


class _Worker:
    """The pool's side of one worker process."""

    def __init__(self, context: Any, threads: int):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, threads), daemon=True,
                                       name="pyanode-pool-worker")  # fmt: skip
        self.process.start()
        child.close()  # only the worker holds its end: its death closes the pipe
        self.ready, self.task = False, None

    def release(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.close()


class _Pool(TaskRun):
    def __init__(
        self, fn: Callable[..., Any], tasks: Sequence[Task], size: int, threads: int, attempts: int
    ):
        self.fn, self.tasks, self.size = fn, tasks, size
        self.threads, self.attempts = threads, attempts
        self.context = multiprocessing.get_context("spawn")
        self.pending = collections.deque(range(len(tasks)))
        self.runs = [0] * len(tasks)
        self.workers: list[_Worker] = []
        self.stopped = False
        self.failed_starts = 0

    def stop(self) -> None:
        self.stopped = True

    def __iter__(self):
        while True:
            self._dispatch()
            if not any(w.task is not None for w in self.workers) and (
                self.stopped or not self.pending
            ):
                return
            watched = {}
            for w in self.workers:
                watched[w.conn] = w
                watched[w.process.sentinel] = w
            for w in {watched[obj] for obj in wait(list(watched))}:
                yield from self._receive(w)

    def _dispatch(self) -> None:
        """Hand pending tasks to idle workers, starting workers up to the pool's size."""
        if self.stopped:
            return
        for w in self.workers:
            if self.pending and w.ready and w.task is None:
                w.task = self.pending.popleft()
                with contextlib.suppress(OSError):  # a worker just dead: seen by `wait`
                    w.conn.send((self.fn, self.tasks[w.task]))
        free = sum(w.task is None for w in self.workers)
        while len(self.workers) < self.size and len(self.pending) > free:
            self.workers.append(_Worker(self.context, self.threads))
            free += 1

    def _receive(self, w: _Worker) -> Iterator[tuple[int, Any]]:
        """The messages of `w` (ready, an outcome), then its death if it died."""
        try:
            while w.conn.poll():
                kind, value = w.conn.recv()
                if kind == "ready":
                    w.ready, self.failed_starts = True, 0
                else:
                    index, w.task = w.task, None
                    yield index, value
        except (EOFError, OSError):
            pass
        if w.process.is_alive():
            return
        w.process.join()
        self.workers.remove(w)
        w.release()
        yield from self._died(w)

    def _died(self, w: _Worker) -> Iterator[tuple[int, Any]]:
        name, how = _death(w.process.exitcode)
        if not w.ready:
            self.failed_starts += 1
            if self.failed_starts >= self.attempts:
                raise RuntimeError(
                    f"the local pool's worker processes die as they start ({how}, "
                    f"{self.failed_starts} times in a row); see the errors above"
                )
            return
        if w.task is None:
            return
        index = w.task
        self.runs[index] += 1
        if self.runs[index] < self.attempts:
            log.warning("a worker of the local pool was %s while running a trial; the trial "
                        "runs again from its checkpoint (attempt %d of %d)", how,
                        self.runs[index] + 1, self.attempts)  # fmt: skip
            self.pending.appendleft(index)
        else:
            yield index, WorkerDied(self.runs[index], name, how)

    def close(self, now: bool) -> None:
        workers, self.workers = self.workers, []
        try:
            for w in workers:
                if now or not w.ready:  # a worker still starting has nothing to finish
                    w.process.terminate()
                else:
                    with contextlib.suppress(OSError):
                        w.conn.send(None)  # ends it after its running task
            deadline = time.monotonic() + GRACE
            for w in workers:
                w.process.join(max(0.0, deadline - time.monotonic()) if now else None)
        finally:  # also on a second Ctrl-C while waiting: no worker is left behind
            for w in workers:
                if w.process.is_alive():
                    w.process.kill()
                    w.process.join()
                w.release()


# -- Dask ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DaskEngine(AbstractEngine):
    """Dask distributed: the cluster whose scheduler is at `scheduler`, or a `LocalCluster` of
    `workers` single-threaded worker processes when `scheduler` is None.

    Needs the optional dependency `dask[distributed]` (the `dask` extra:
    `pip install -e '.[dask]'`). The workers must import the same pyanode and see the sweep's
    output folder (a shared file system on a cluster); start them with one thread each
    (`--nthreads 1`, or dask-jobqueue's `processes` equal to `cores`), see docs/sweeps.md.

    Arguments:
        scheduler: address such as `tcp://10.0.0.5:8786` (None: start a LocalCluster).
        workers: processes of the LocalCluster (None: `available_cpus() // threads`).
        threads: torch threads per trial.
        attempts: runs of a task whose worker dies, for the LocalCluster (None: 3); a remote
            scheduler's own `distributed.scheduler.allowed-failures` + 1 decides there.
    """

    scheduler: str | None = None
    workers: int | None = None
    threads: int = 1
    attempts: int | None = None

    def __post_init__(self) -> None:
        check_int("threads", self.threads, low=1, error=SpecError)
        for name in ("workers", "attempts"):
            value = getattr(self, name)
            if value is None:
                continue
            check_int(name, value, low=1, error=SpecError)
            if self.scheduler is not None:
                raise SpecError(
                    f"{name}={value!r} is for a LocalCluster; with scheduler="
                    f"{self.scheduler!r} the cluster's own settings decide: leave {name} unset"
                )
        if self.scheduler is not None and (
            not isinstance(self.scheduler, str) or not _ADDRESS.fullmatch(self.scheduler)
        ):
            raise SpecError(
                f"scheduler must be an address like tcp://host:8786, got {self.scheduler!r}"
            )

    def describe(self) -> str:
        if self.scheduler is not None:
            return f"dask scheduler {self.scheduler} ({self.threads} thread(s) per trial)"
        workers = self.workers or max(1, available_cpus() // self.threads)
        return f"dask LocalCluster of {workers} process(es) x {self.threads} thread(s)"

    def check(self) -> None:
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise SpecError(
                "engine 'dask' needs the optional dependency dask[distributed]: "
                "install the dask extra (`pip install -e '.[dask]'` in pyanode's checkout)"
            ) from None
        if self.scheduler is not None:
            _check_reachable(self.scheduler)

    def map(self, fn, tasks):
        import dask
        from distributed import Client, LocalCluster

        stack = contextlib.ExitStack()
        try:
            stack.enter_context(_quiet("distributed"))
            if self.scheduler is None:
                workers = self.workers or max(1, available_cpus() // self.threads)
                settings = {
                    "distributed.scheduler.allowed-failures": (self.attempts or ATTEMPTS) - 1,
                    # one task per worker at a time: a worker's death then counts against
                    # the trial it ran, not against trials queued behind it
                    "distributed.scheduler.worker-saturation": 1.0,
                }
                with dask.config.set(settings):
                    cluster = stack.enter_context(
                        LocalCluster(
                            n_workers=min(workers, max(len(tasks), 1)),
                            threads_per_worker=1,
                            processes=True,
                            dashboard_address=None,
                            silence_logs=logging.ERROR,
                            env={name: str(self.threads) for name in THREAD_VARIABLES},
                        )
                    )
                client = stack.enter_context(Client(cluster))
            else:
                client = stack.enter_context(_connect(Client, self.scheduler))
            with contextlib.suppress(Exception):  # the signal of a dead worker, where it can
                client.register_plugin(_report_exits())
            return _Futures(stack, client, fn, tasks)
        except BaseException:
            stack.close()
            raise


# Dask retries a task whose worker died and, past its `allowed-failures`, gives up with
# `KilledWorker`, but the signal that killed the worker (SIGKILL from the out-of-memory killer,
# say) is only in the nanny's log: a nanny plugin sends each worker's exit code to the scheduler's
# event log under this topic, so that a trial whose workers keep dying is recorded with the
# signal, as on the local pool.
_EXIT_TOPIC = "pyanode-worker-exit"


def _report_exits() -> Any:
    """A nanny plugin that logs `{"worker": address, "exitcode": code}` under `_EXIT_TOPIC` when
    a worker process ends (its class is made here: it subclasses Dask's `NannyPlugin`, and
    pyanode imports distributed only when a Dask engine runs).

    It hooks the nanny's own exit callback (not a public API of Dask): where that callback is
    missing, nothing is reported and the signal stays unknown.
    """
    from distributed.diagnostics.plugin import NannyPlugin

    class ReportExits(NannyPlugin):
        name = "pyanode-report-exits"
        idempotent = True

        def setup(self, nanny: Any) -> None:
            original = getattr(nanny, "_on_worker_exit_sync", None)
            if original is None:
                return

            def on_exit(exitcode: int) -> None:
                with contextlib.suppress(Exception):
                    address = getattr(nanny.process, "worker_address", None)
                    nanny.log_event(_EXIT_TOPIC, {"worker": address, "exitcode": exitcode})
                original(exitcode)

            nanny._on_worker_exit_sync = on_exit  # the next worker process gets it
            if getattr(nanny, "process", None) is not None:
                nanny.process.on_exit = on_exit  # and the running one

    return ReportExits()


def _exit_code(client: Any, worker: str, wait: float = 3.0) -> int | None:
    """The exit code a nanny reported for the worker at `worker` (waiting up to `wait` seconds
    for the report, which travels apart from the task's failure), or None."""
    deadline = time.monotonic() + wait
    while True:
        with contextlib.suppress(Exception):
            for _, event in reversed(client.get_events(_EXIT_TOPIC)):
                if isinstance(event, dict) and event.get("worker") == worker:
                    return event.get("exitcode")
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)


def _check_reachable(address: str) -> None:
    """Raise SpecError at once (not after Dask's 30 s of retries) if nothing listens at a
    TCP scheduler address."""
    scheme, host, port = _ADDRESS.fullmatch(address).groups()  # type: ignore[union-attr]
    if scheme not in (None, "tcp") or port is None:
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=10).close()
    except OSError as err:
        raise SpecError(
            f"no Dask scheduler answers at {address} ({err.strerror or err}): start it "
            "(`dask scheduler`) or check the address"
        ) from None


@contextlib.contextmanager
def _connect(client: Any, address: str) -> Iterator[Any]:
    try:
        connected = client(address, timeout=30)
    except (OSError, TimeoutError) as err:
        raise SpecError(
            f"cannot connect to the Dask scheduler at {address} ({err}): check that it runs "
            "and that this machine can reach it"
        ) from None
    with connected:
        yield connected


class _Futures(TaskRun):
    """Tasks submitted to Dask, through its `concurrent.futures` executor."""

    def __init__(self, stack: contextlib.ExitStack, client: Any, fn: Callable[..., Any],
                 tasks: Sequence[Task]):  # fmt: skip
        self.stack, self.client = stack, client
        executor = client.get_executor(pure=False)
        self.futures = {executor.submit(fn, *task): i for i, task in enumerate(tasks)}

    def __iter__(self):
        for future in as_completed(list(self.futures)):
            if future.cancelled():
                continue
            error = future.exception()
            yield self.futures[future], future.result() if error is None else self._outcome(error)

    def _outcome(self, error: BaseException) -> Any:
        """A task's exception, with Dask's `KilledWorker` (its workers died running it, as
        often as the scheduler allows) as `WorkerDied`, with the signal a nanny reported."""
        from distributed.scheduler import KilledWorker

        if not isinstance(error, KilledWorker):
            return error
        worker = getattr(error.last_worker, "address", str(error.last_worker))
        name, how = _death(_exit_code(self.client, worker))
        if name is None:
            how = "see the log of its last worker"
        return WorkerDied(error.allowed_failures + 1, name, f"{how} (last on {worker})")

    def stop(self) -> None:
        for future in self.futures:
            future.cancel()

    def close(self, now: bool) -> None:
        self.stop()
        self.stack.close()


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """Show only errors of `logger` (Dask logs every worker start and stop at INFO)."""
    log = logging.getLogger(logger)
    before = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(before)


def get_engine(
    name: str,
    *,
    workers: int | None = None,
    threads: int = 1,
    scheduler: str | None = None,
    attempts: int | None = None,
) -> AbstractEngine:
    """The engine called `name` (`local`, `dask` or `inline`) with these settings.

    Raises:
        SpecError: for an unknown name, impossible counts, or a scheduler without `dask`.
    """
    check_choice("engine", name, ENGINES, error=SpecError)
    if name == "dask":
        return DaskEngine(scheduler=scheduler, workers=workers, threads=threads,
                          attempts=attempts)  # fmt: skip
    if scheduler is not None:
        raise SpecError(f"scheduler={scheduler!r} needs engine 'dask', got engine {name!r}")
    if name == "inline":
        for option, value in (("workers", workers), ("attempts", attempts)):
            if value not in (None, 1):
                raise SpecError(
                    f"engine 'inline' runs one trial at a time in this process, got "
                    f"{option}={value!r}"
                )
        return InProcess(threads=threads)
    return LocalPool(workers=workers, threads=threads, attempts=attempts)


@dataclass(frozen=True)
class EngineOptions:
    """Where a batch of trials runs (the options of `pyanode sweep`)."""

    engine: str = setting("local", "local: a process pool; dask: Dask distributed; inline: "
                          "this process", choices=ENGINES)  # fmt: skip
    workers: int | None = setting(None, "worker processes", type=int, shown="CPUs // threads")
    threads: int = setting(1, "torch threads per trial")
    scheduler: str | None = setting(None, "Dask scheduler address, e.g. tcp://host:8786",
                                    type=str, shown="a LocalCluster")  # fmt: skip
    attempts: int | None = setting(
        None, "runs of a trial whose worker process dies (killed, out of memory) before it is "
        "recorded as failed", type=int, shown=f"{ATTEMPTS}; a remote Dask cluster's own",
    )  # fmt: skip

    def build(self) -> AbstractEngine:
        """The engine (see `get_engine`)."""
        return get_engine(self.engine, workers=self.workers, threads=self.threads,
                          scheduler=self.scheduler, attempts=self.attempts)  # fmt: skip
