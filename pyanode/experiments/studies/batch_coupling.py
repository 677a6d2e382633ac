"""Batch coupling: one adaptive solve for the whole batch against one solve per sample.

`solve` treats the batch as one system: all samples share the steps and the error norm is the
RMS over all of them, so an easy sample takes the steps of the hard ones and a hard sample's
error is averaged with the easy ones'. Per-sample step control would give each sample its own
steps; our solver has no per-sample step sizes, so the honest baseline is a loop that solves
each sample as its own system. The table reports, for both modes, the NFE per sample (the batch
solve's NFE, or the mean, min and max over the per-sample solves), the wall time for the whole
batch, the relative error of the batch's end state and the worst sample's relative error.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch

from pyanode._errors import SolverError, SpecError
from pyanode._validate import check_int
from pyanode.experiments.studies._julia import julia_backend as resolve_julia
from pyanode.experiments.studies._julia import julia_coupling_row
from pyanode.experiments.studies._measure import (
    StudyResult,
    coupling_measures,
    failed_row,
    save_study,
    study_meta,
    timed,
)
from pyanode.experiments.studies._problems import StudyProblem
from pyanode.experiments.studies._reference import REFERENCE_RTOL, forward_reference
from pyanode.experiments.studies._settings import (
    ADAPTIVE,
    DTYPES,
    FIXED_STEP,
    Setting,
    check_config,
    check_grid,
    grid,
    study_setting,
)
from pyanode.specs import setting as option

log = logging.getLogger("pyanode")

MODES = ("batch", "per-sample")
COLUMNS = (
    "backend",
    "problem",
    "solver",
    "order",
    "rtol",
    "atol",
    "mode",
    "samples",
    "nfe_forward",
    "nfe_min",
    "nfe_max",
    "seconds",
    "error",
    "error_max_sample",
    "status",
)


@dataclass(frozen=True)
class BatchCouplingConfig:
    """Settings of the batch-coupling study.

    Arguments:
        solvers: adaptive solvers only (a fixed step has no step control to couple).
        tolerances: `rtol = atol` of each solve.
        samples: the study uses the first `samples` points of the problem's batch (the
            per-sample loop costs one solve each).
        dtype, device, repeats, max_steps, reference_rtol, julia: as in `ForwardConfig`.

    Raises:
        SpecError: for a fixed-step or unknown solver, an invalid tolerance, or samples < 1.
    """

    solvers: tuple[str, ...] = study_setting("solvers", ADAPTIVE)
    tolerances: tuple[float, ...] = study_setting("tolerances")
    samples: int = option(64, "first samples of the batch")
    dtype: str = study_setting("dtype")
    device: str = study_setting("device")
    repeats: int = study_setting("repeats", 1)
    max_steps: int = study_setting("max_steps")
    reference_rtol: float = study_setting("reference_rtol", REFERENCE_RTOL)
    julia: str = study_setting("julia")

    def __post_init__(self) -> None:
        check_config(self)
        fixed = [s for s in self.solvers if s in FIXED_STEP]
        if fixed:
            raise SpecError(
                f"batch coupling needs adaptive solvers (a fixed step has no step control to "
                f"couple), got {', '.join(map(repr, fixed))}; accepted: {', '.join(ADAPTIVE)}"
            )
        check_grid(self.solvers, self.tolerances, (), accepted=ADAPTIVE)
        check_int("samples", self.samples, low=1, error=SpecError)


def _batch_solve(problem: StudyProblem, setting: Setting) -> tuple[torch.Tensor, list[int]]:
    with torch.no_grad():
        sol = problem.solve(setting.method(), setting.controller())
    return sol.ys, [sol.stats.nfe_forward]


def _per_sample_solves(problem: StudyProblem, setting: Setting) -> tuple[torch.Tensor, list[int]]:
    solver, controller = setting.method(), setting.controller()
    y0, args = problem.y0(), problem.args()
    ends, nfes = [], []
    with torch.no_grad():
        for i in range(problem.batch):
            sample_args = None if args is None else args[i : i + 1]
            sol = problem.solve(solver, controller, y0=y0[i : i + 1], args=sample_args)
            ends.append(sol.ys)
            nfes.append(sol.stats.nfe_forward)
    return torch.cat(ends), nfes


def measure_coupling(
    problem: StudyProblem,
    setting: Setting,
    mode: str,
    reference: torch.Tensor,
    *,
    repeats: int = 1,
) -> dict[str, Any]:
    """One row: solve `problem` with `setting` as one system (`mode="batch"`) or sample by
    sample (`"per-sample"`); NFE per sample, time for the batch, errors against `reference`.

    Raises:
        ValueError: for a mode not in `MODES`.
    """
    if mode == "batch":
        run = _batch_solve
    elif mode == "per-sample":
        run = _per_sample_solves
    else:
        raise ValueError(f"mode={mode!r} is not known; accepted: {', '.join(MODES)}")
    row: dict[str, Any] = {"backend": "torch", "problem": problem.name, **setting.columns()}
    del row["dt"]
    row.update(mode=mode, samples=problem.batch)
    try:
        seconds, (y1, nfes) = timed(lambda: run(problem, setting), repeats, problem.device)
    except SolverError as err:
        return failed_row(row, err, "nfe_min", "nfe_max", "seconds", "error", "error_max_sample")
    row.update(coupling_measures(nfes, seconds, y1, reference))
    return row


def batch_coupling_study(
    problem: StudyProblem,
    config: BatchCouplingConfig = BatchCouplingConfig(),
    out: str | os.PathLike | None = None,
    *,
    figures: bool = True,
    julia_backend: Any = None,
) -> StudyResult:
    """Run the batch-coupling study on the first `config.samples` points of `problem`.

    Arguments:
        problem: the initial-value problem; its samples must not interact (each row of the
            batch evolves on its own, as in every pyanode vector field).
        config: solvers, tolerances, samples, dtype.
        out: folder for `batch_coupling.csv`, `study.json` and `batch_coupling.{png,pdf}`;
            nothing is written when None.
        figures: draw the figure (needs `out`).
        julia_backend: the backend object for the Julia rows (default `JuliaBackend()`).

    Returns:
        The `StudyResult` (rows with the columns `COLUMNS`).

    Raises:
        ReferenceNotConverged: if the float64 reference fails its checks.
        JuliaUnavailable: for `julia="require"` when the Julia backend cannot run.
    """
    sub = problem.first(config.samples)
    julia, note = resolve_julia(config.julia, sub, julia_backend)
    reference = forward_reference(sub, rtol=config.reference_rtol)
    work = sub.converted(DTYPES[config.dtype], config.device)
    rows = []
    settings = grid(config.solvers, config.tolerances, (), sub.t1, max_steps=config.max_steps)
    for setting in settings:  # adaptive solvers only: every solver at every tolerance
        for mode in MODES:
            new = [measure_coupling(work, setting, mode, reference.y1, repeats=config.repeats)]
            if julia is not None:
                new.append(
                    julia_coupling_row(julia, sub, setting, mode, reference.y1, config.repeats)
                )
            for row in new:
                log.info(
                    "study batch-coupling: %s %s %s (%s): nfe %.1f, error %.3g",
                    problem.name,
                    setting.label,
                    mode,
                    row["backend"],
                    row["nfe_forward"],
                    row["error"],
                )
            rows += new
    meta = study_meta("batch-coupling", sub, config, reference, rows, note)
    meta["per_sample"] = (
        "a loop of one solve per sample (the solver has no per-sample step sizes); "
        "nfe_forward is the mean over the samples"
    )
    return save_study(out, StudyResult("batch-coupling", rows, meta), COLUMNS, figures=figures)
