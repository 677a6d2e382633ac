"""What the studies measure besides NFE: wall time, peak memory, errors."""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch

from pyanode._errors import SolverError

T = TypeVar("T")


class PeakMemory:
    """The peak of the bytes torch allocates while the context is open, above those allocated
    when it opened.

    On CUDA: `torch.cuda.max_memory_allocated`. On the CPU, torch's allocations are invisible to
    `tracemalloc` and too small for the process's RSS, so they are read from the profiler's
    memory events (`torch.profiler` with `profile_memory=True`): the largest running sum of the
    bytes allocated minus freed, in time order. This counts everything the pass allocates and
    holds: the stages or tape that backprop keeps for backward (whether autograd's saved
    tensors or a fused solver's own tape), the adjoint's augmented state, temporaries. The
    profiler slows the pass down about tenfold (time it separately), and the process's standard
    error (file descriptor 2) is silenced while it runs, because the profiler logs there.

    Arguments:
        device: the device whose allocations are measured.
    """

    def __init__(self, device: torch.device):
        self.device = torch.device(device)
        self.peak = 0
        self._profiler: Any = None
        self._quiet: Any = None
        self._base = 0

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            return self
        from torch.profiler import ProfilerActivity, profile

        # The profiler writes start/stop lines and allocator warnings to file descriptor 2
        # (from C++), which would bury the study's output: silenced while it runs.
        self._quiet = _quiet_stderr()
        self._quiet.__enter__()
        self._profiler = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
        self._profiler.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device) - self._base
            return
        try:
            self._profiler.__exit__(*exc)
        finally:
            self._quiet.__exit__(None, None, None)
        changes = sorted(
            (e.time_range.start, e.self_cpu_memory_usage)
            for e in self._profiler.events()
            if e.self_cpu_memory_usage
        )
        running = peak = 0
        for _, change in changes:
            running += change
            peak = max(peak, running)
        self.peak = peak


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the duration (C++ log lines included)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that a timer measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], T], repeats: int, device: torch.device) -> tuple[float, T]:
    """The shortest wall time of `repeats` calls of `fn` (seconds) and the last call's result.

    The minimum, not the mean: the slower calls are those disturbed by other load.
    """
    times = []
    result = None
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        result = fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return min(times), result  # type: ignore[return-value]


def relative_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    """`||value - reference|| / ||reference||` (2-norms over all elements), in float64."""
    value = value.detach().to(torch.float64).cpu()
    reference = reference.detach().to(torch.float64).cpu()
    scale = torch.linalg.vector_norm(reference).item()
    diff = torch.linalg.vector_norm(value - reference).item()
    return diff / scale if scale > 0 else diff


def max_abs_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    """`max |value - reference|`, in float64."""
    value = value.detach().to(torch.float64).cpu()
    return (value - reference.detach().to(torch.float64).cpu()).abs().max().item()


def per_sample_relative_errors(value: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """The relative error of each sample (row) of a batch, shape (B,)."""
    value = value.detach().to(torch.float64).cpu().reshape(value.shape[0], -1)
    reference = reference.detach().to(torch.float64).cpu().reshape(reference.shape[0], -1)
    scale = torch.linalg.vector_norm(reference, dim=1).clamp_min(torch.finfo(torch.float64).tiny)
    return torch.linalg.vector_norm(value - reference, dim=1) / scale


def failed_row(row: dict[str, Any], err: SolverError, *nan_columns: str) -> dict[str, Any]:
    """`row` completed for a solve that failed with `err`: `nfe_forward` is the
    NFE spent until the failure, `nan_columns` are NaN and `status` names the reason."""
    row.update(dict.fromkeys(nan_columns, math.nan))
    row.update(nfe_forward=err.nfe, status=f"failed: {err.reason}")
    return row


def coupling_measures(
    nfes: list[int], seconds: float, y1: torch.Tensor, reference: torch.Tensor
) -> dict[str, Any]:
    """The numbers of a batch-coupling row from the NFE of each solve (one for the batch, or
    one per sample), the time for the batch and its end state `y1`."""
    return {
        "nfe_forward": sum(nfes) / len(nfes),
        "nfe_min": min(nfes),
        "nfe_max": max(nfes),
        "seconds": seconds,
        "error": relative_error(y1, reference),
        "error_max_sample": per_sample_relative_errors(y1, reference).max().item(),
        "status": "ok",
    }
