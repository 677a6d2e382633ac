"""What the studies measure besides NFE (wall time, peak memory, errors), and how a study's
results are written (a CSV table, study.json and its figure)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import torch

from pyanode._errors import SolverError
from pyanode.experiments.store import atomic_write_text, to_json
from pyanode.solvers._step import clear_pool

T = TypeVar("T")


class PeakMemory:
    """The peak of the bytes torch allocates while the context is open, above those allocated
    when it opened.

    On CUDA: `torch.cuda.max_memory_allocated`. On the CPU, torch's allocations are invisible to
    `tracemalloc` and too small for the process's RSS, so they are read from the profiler's
    memory events (`torch.profiler` with `profile_memory=True`): every allocation and free is an
    event that carries the allocator's running total ("Total Allocated"), and the peak is the
    largest total above the one before the first event. Per-operator sums would not do: an
    operator that allocates and frees inside itself (a custom autograd Function's backward, the
    adjoint's whole backward solve) nets to almost nothing. This counts everything the pass
    allocates and holds: the stages or tape that backprop keeps for backward, the adjoint's
    augmented state, temporaries, and the solver's pool of step workspaces, which is emptied when
    the context opens. The profiler slows the pass down about tenfold (time it
    separately), and the process's standard error (file descriptor 2) is silenced while it
    runs, because the profiler logs there.

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
        clear_pool()  # workspaces recycled from an earlier pass would not count as allocated
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
        self.peak = _peak_allocated(self._profiler)


def _peak_allocated(profiler: Any) -> int:
    """The largest running total of CPU bytes allocated in a finished profile, above the total
    before its first allocation (the memory events of its trace, in time order)."""
    with tempfile.TemporaryDirectory() as folder:
        trace = Path(folder) / "trace.json"
        profiler.export_chrome_trace(str(trace))
        events = json.loads(trace.read_text())["traceEvents"]
    memory = sorted(
        (e["ts"], e["args"]["Total Allocated"], e["args"]["Bytes"])
        for e in events
        if e.get("name") == "[memory]" and e["args"].get("Device Type") == 0
    )
    if not memory:
        return 0
    base = memory[0][1] - memory[0][2]
    return max(0, max(total for _, total, _ in memory) - base)


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


# -- the results of a study: table, study.json, figure --------------------------------------------
@dataclass(frozen=True)
class StudyResult:
    """What a study returns.

    Arguments:
        name: the study (`forward`, `gradient`, `cross-solver`, `batch-coupling`).
        rows: the table, one dict per row, with the columns of the study's `COLUMNS`.
        meta: plain values: the problem, the config, the reference checks, the backends.
        files: the files written (empty when no `out` was given).
    """

    name: str
    rows: list[dict[str, Any]]
    meta: dict[str, Any]
    files: list[Path] = field(default_factory=list)


def csv_text(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """The rows as CSV with the header `columns`; NaN and None are written as empty cells,
    floats with 17 significant digits (they read back exactly)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_study(
    out: str | os.PathLike,
    result: StudyResult,
    columns: Sequence[str],
    extra_tables: dict[str, tuple[list[dict[str, Any]], Sequence[str]]] | None = None,
) -> list[Path]:
    """Write `<name>.csv` (and the extra tables) and `study.json` under `out`, each atomically.

    Returns:
        The files written.
    """
    out = Path(out)
    stem = result.name.replace("-", "_")
    files = [atomic_write_text(out / f"{stem}.csv", csv_text(result.rows, columns))]
    for name, (rows, cols) in (extra_tables or {}).items():
        files.append(atomic_write_text(out / f"{name}.csv", csv_text(rows, cols)))
    files.append(
        atomic_write_text(out / "study.json", to_json(result.meta, indent=2, sort_keys=True))
    )
    return files


def study_meta(
    study: str, problem: Any, config: Any, reference: Any, rows: list[dict[str, Any]], julia: str
) -> dict[str, Any]:
    """The entries of study.json that every study of one problem shares: the study's name, the
    problem, the config, the reference checks, the backends of `rows` and the Julia note."""
    return {
        "study": study,
        "problem": problem.describe(),
        "config": asdict(config),
        "reference": reference.checks(),
        "backends": sorted({r["backend"] for r in rows}),
        "julia": julia,
    }


def save_study(
    out: str | os.PathLike | None,
    result: StudyResult,
    columns: Sequence[str],
    *,
    figures: bool = True,
    extra_tables: dict[str, tuple[list[dict[str, Any]], Sequence[str]]] | None = None,
) -> StudyResult:
    """Write `result` under `out` (see `write_study`) and, with `figures`, its figure
    `<name>.{png,pdf}` drawn from the table; nothing is written when `out` is None.

    Returns:
        `result` with the files written.
    """
    if out is None:
        return result
    files = write_study(out, result, columns, extra_tables)
    if figures:
        # imported here: matplotlib is loaded only when a figure is drawn
        from pyanode.plots import studies as plots

        plot = {
            "forward": plots.plot_forward,
            "gradient": plots.plot_gradient,
            "batch-coupling": plots.plot_batch_coupling,
            "cross-solver": plots.plot_cross_solver,
        }[result.name]
        stem = Path(out) / result.name.replace("-", "_")
        files += plot(stem.with_name(stem.name + ".csv"), stem)
    return replace(result, files=files)


def text_table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    """The rows as an aligned plain-text table of `columns` (numbers with 4 significant digits)."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "-" if math.isnan(value) else f"{value:.4g}"
        return str(value)

    body = [list(columns)] + [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(line[i]) for line in body) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)) for line in body]
    return "\n".join(lines)
