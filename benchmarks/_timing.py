"""Timing helpers: alternating rounds, medians, wall and CPU time, and the machine's load."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Samples:
    """Repeated measurements of one thing, in seconds: wall clock and this thread's CPU time.

    CPU time excludes the time the thread waited for a core, so on a shared machine it is the
    steadier of the two; on an idle core the two agree.
    """

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def add(self, wall: float, cpu: float) -> None:
        self.wall.append(wall)
        self.cpu.append(cpu)

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def median_cpu(self) -> float:
        return statistics.median(self.cpu)

    @property
    def spread(self) -> float:
        """Interquartile range over the median of the wall times (the timing noise)."""
        if len(self.wall) < 4:
            return float("nan")
        q = statistics.quantiles(self.wall, n=4)
        return (q[2] - q[0]) / self.median


class Stopwatch:
    """Wall and thread CPU time of a block: `with Stopwatch() as w: ...; w.wall, w.cpu`."""

    def __enter__(self) -> Stopwatch:
        self._wall, self._cpu = time.perf_counter(), time.thread_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.thread_time() - self._cpu


def device_sync(device: Any) -> Callable[[], None]:
    """What waits for a torch `device`'s queued work: `torch.cuda.synchronize` on CUDA (whose
    kernels run asynchronously, so a timer must wait for them), a no-op elsewhere."""
    if device.type == "cuda":
        import torch

        return torch.cuda.synchronize
    return lambda: None


def alternate(
    fns: dict[str, Callable[[], object]], *, rounds: int, reps: int, warmup: int = 3
) -> dict[str, Samples]:
    """Time each function `reps` times per round, the functions taking turns (rotating order)
    for `rounds` rounds; returns per-call samples (one per round)."""
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
    out = {name: Samples() for name in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            fn = fns[name]
            with Stopwatch() as w:
                for _ in range(reps):
                    fn()
            out[name].add(w.wall / reps, w.cpu / reps)
    return out


class LoadMeter:
    """The machine's CPU use by others while a benchmark runs (from /proc/stat)."""

    def __init__(self):
        self._start = self._read()
        self._cpu0 = time.process_time()
        self._wall0 = time.perf_counter()

    @staticmethod
    def _read() -> tuple[int, int] | None:
        try:
            with open("/proc/stat") as f:
                parts = f.readline().split()[1:]
        except OSError:
            return None
        values = [int(x) for x in parts]
        return values[3] + values[4], sum(values)  # idle + iowait, total (jiffies)

    def summary(self) -> str:
        """Cores busy with anything (this process included) and this process's share."""
        end = self._read()
        wall = time.perf_counter() - self._wall0
        own = (time.process_time() - self._cpu0) / max(wall, 1e-9)
        cores = os.cpu_count() or 1
        if self._start is None or end is None:
            return f"this process used {own:.2f} cores"
        idle, total = end[0] - self._start[0], end[1] - self._start[1]
        busy = cores * (1.0 - idle / max(total, 1))
        return (
            f"{busy:.2f} of {cores} cores busy on average, {own:.2f} of them this process; "
            f"load average {os.getloadavg()[0]:.2f}"
        )
