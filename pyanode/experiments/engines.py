"""Where the trials of a sweep run: a local process pool, Dask distributed, or this process.

Every engine runs the same task (`pyanode.experiments.runner.execute_trial`) with the same
arguments, and each trial pins its own torch thread count and seeds its own generators, so a trial
gives the same result whatever the engine, the number of workers or the order of the trials.

The pool and Dask engines hand the tasks to a `concurrent.futures.Executor`: a
`ProcessPoolExecutor` with the "spawn" start method (forking a process that has started torch's
thread pools is unsafe), or Dask's executor created with `pure=False` (tasks are not cached or
merged by the hash of their arguments: a trial re-submitted after a failure runs again). Dask
workers should be processes with one thread each; trials that share a worker process take turns.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from pyanode._errors import SpecError
from pyanode._validate import check_choice, check_int
from pyanode.specs import setting

ENGINES = ("local", "dask", "inline")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

Task = tuple[Any, ...]


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    with contextlib.suppress(AttributeError):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # pragma: no cover - macOS, Windows


def pin_threads(threads: int) -> None:
    """Worker initialiser: `threads` intra-op threads for torch, OpenMP, MKL and OpenBLAS."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    import torch

    torch.set_num_threads(threads)


class AbstractEngine(abc.ABC):
    """Runs tasks `fn(*task)` and yields `(index, result)` pairs as the tasks finish.

    Closing the iterator early (an exception, or `on_failure="raise"`) cancels the tasks that
    have not started; the running ones finish and store their results.
    """

    threads: int

    @abc.abstractmethod
    def imap_unordered(
        self, fn: Callable[..., Any], tasks: Sequence[Task]
    ) -> Iterator[tuple[int, Any]]: ...

    @abc.abstractmethod
    def describe(self) -> str: ...


@dataclass(frozen=True)
class LocalPool(AbstractEngine):
    """A pool of `workers` spawned processes, each pinned to `threads` torch threads.

    Arguments:
        workers: processes (None: as many as fit, `available_cpus() // threads`, at least 1).
        threads: intra-op threads per process.
    """

    workers: int | None = None
    threads: int = 1

    def __post_init__(self) -> None:
        check_int("threads", self.threads, low=1, error=SpecError)
        if self.workers is not None:
            check_int("workers", self.workers, low=1, error=SpecError)

    @property
    def n_workers(self) -> int:
        return self.workers or max(1, available_cpus() // self.threads)

    def describe(self) -> str:
        return f"local pool of {self.n_workers} process(es) x {self.threads} thread(s)"

    def imap_unordered(self, fn, tasks):
        if not tasks:
            return
        executor = ProcessPoolExecutor(
            max_workers=min(self.n_workers, len(tasks)),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=pin_threads,
            initargs=(self.threads,),
        )
        with executor:
            try:
                yield from _as_completed(executor, fn, tasks)
            except BrokenProcessPool:
                raise RuntimeError(
                    "a worker process of the local pool died (killed, or out of memory); the "
                    "finished trials are stored: run the sweep again to resume the others"
                ) from None


@dataclass(frozen=True)
class DaskEngine(AbstractEngine):
    """Dask distributed: the cluster whose scheduler is at `scheduler`, or a `LocalCluster` of
    `workers` single-threaded worker processes when `scheduler` is None.

    Needs the optional dependency `dask[distributed]` (`pip install 'pyanode[dask]'`). The
    workers must import the same pyanode and see the sweep's output folder (a shared file
    system on a cluster); start them with one thread each (`--nthreads 1`, or dask-jobqueue's
    `processes` equal to `cores`), see docs/sweeps.md.

    Arguments:
        scheduler: address such as `tcp://10.0.0.5:8786` (None: start a LocalCluster).
        workers: processes of the LocalCluster (None: `available_cpus() // threads`).
        threads: torch threads per trial.
    """

    scheduler: str | None = None
    workers: int | None = None
    threads: int = 1

    def __post_init__(self) -> None:
        check_int("threads", self.threads, low=1, error=SpecError)
        if self.workers is not None:
            check_int("workers", self.workers, low=1, error=SpecError)
        if self.scheduler is not None and self.workers is not None:
            raise SpecError(
                f"workers={self.workers!r} sizes a LocalCluster; with scheduler="
                f"{self.scheduler!r} the cluster's own workers run the trials: leave workers unset"
            )
        if self.scheduler is not None and (
            not isinstance(self.scheduler, str) or not self.scheduler
        ):
            raise SpecError(
                f"scheduler must be an address like tcp://host:8786, got {self.scheduler!r}"
            )

    def describe(self) -> str:
        if self.scheduler is not None:
            return f"dask scheduler {self.scheduler} ({self.threads} thread(s) per trial)"
        workers = self.workers or max(1, available_cpus() // self.threads)
        return f"dask LocalCluster of {workers} process(es) x {self.threads} thread(s)"

    def imap_unordered(self, fn, tasks):
        if not tasks:
            return
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise SpecError(
                "engine 'dask' needs the optional dependency dask[distributed]: "
                "pip install 'pyanode[dask]'"
            ) from None
        with contextlib.ExitStack() as stack:
            stack.enter_context(_quiet("distributed"))
            if self.scheduler is None:
                workers = self.workers or max(1, available_cpus() // self.threads)
                cluster = stack.enter_context(
                    LocalCluster(
                        n_workers=min(workers, len(tasks)),
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=None,
                        silence_logs=logging.ERROR,
                        env={name: str(self.threads) for name in THREAD_VARIABLES},
                    )
                )
                client = stack.enter_context(Client(cluster))
            else:
                client = stack.enter_context(Client(self.scheduler))
            yield from _as_completed(client.get_executor(pure=False), fn, tasks)


@dataclass(frozen=True)
class InProcess(AbstractEngine):
    """The trials one after another in this process (for debugging: breakpoints work)."""

    threads: int = 1

    def __post_init__(self) -> None:
        check_int("threads", self.threads, low=1, error=SpecError)

    def describe(self) -> str:
        return f"this process, {self.threads} thread(s)"

    def imap_unordered(self, fn, tasks):
        for index, task in enumerate(tasks):
            yield index, fn(*task)


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


def _as_completed(
    executor: Executor, fn: Callable[..., Any], tasks: Sequence[Task]
) -> Iterator[tuple[int, Any]]:
    futures: dict[Future, int] = {executor.submit(fn, *task): i for i, task in enumerate(tasks)}
    try:
        for future in as_completed(futures):
            yield futures[future], future.result()
    finally:
        for future in futures:
            future.cancel()


def get_engine(
    name: str, *, workers: int | None = None, threads: int = 1, scheduler: str | None = None
) -> AbstractEngine:
    """The engine called `name` (`local`, `dask` or `inline`) with these settings.

    Raises:
        SpecError: for an unknown name, impossible counts, or a scheduler without `dask`.
    """
    check_choice("engine", name, ENGINES, error=SpecError)
    if name == "dask":
        return DaskEngine(scheduler=scheduler, workers=workers, threads=threads)
    if scheduler is not None:
        raise SpecError(f"scheduler={scheduler!r} needs engine 'dask', got engine {name!r}")
    if name == "inline":
        if workers not in (None, 1):
            raise SpecError(f"engine 'inline' runs one trial at a time, got workers={workers!r}")
        return InProcess(threads=threads)
    return LocalPool(workers=workers, threads=threads)


@dataclass(frozen=True)
class EngineOptions:
    """Where a batch of trials runs (the options of `pyanode sweep`)."""

    engine: str = setting("local", "local: a process pool; dask: Dask distributed; inline: "
                          "this process", choices=ENGINES)  # fmt: skip
    workers: int | None = setting(None, "worker processes", type=int, shown="CPUs // threads")
    threads: int = setting(1, "torch threads per trial")
    scheduler: str | None = setting(None, "Dask scheduler address, e.g. tcp://host:8786",
                                    type=str, shown="a LocalCluster")  # fmt: skip

    def build(self) -> AbstractEngine:
        """The engine (see `get_engine`)."""
        return get_engine(
            self.engine, workers=self.workers, threads=self.threads, scheduler=self.scheduler
        )
