"""Forward work-precision: the error of `y(t1)` against the NFE and wall time of each solver.

Every adaptive solver runs at every tolerance (`rtol = atol = tol`) and every fixed-step solver
at `dt = t1 / n` for each step count `n`; the error is relative to the float64 reference (see
`_reference`). For the fixed-step solvers the slope of `log(error)` against `log(dt)` is the
measured order of convergence, written beside the tableau's order in `orders.csv`.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from pyanode._errors import SolverError, SpecError
from pyanode._names import DEVICES
from pyanode._validate import check_choice, check_int, check_number
from pyanode.experiments.studies._julia import check_mode, julia_forward_row
from pyanode.experiments.studies._julia import julia_backend as resolve_julia
from pyanode.experiments.studies._measure import failed_row, max_abs_error, relative_error, timed
from pyanode.experiments.studies._problem import StudyProblem
from pyanode.experiments.studies._reference import (
    REFERENCE_RTOL,
    ForwardReference,
    end_state,
    forward_reference,
)
from pyanode.experiments.studies._settings import (
    FIXED_STEP,
    Setting,
    check_grid,
    grid,
    study_setting,
)
from pyanode.experiments.studies._tables import StudyResult, save_study, study_meta

log = logging.getLogger("pyanode")

COLUMNS = (
    "backend",
    "problem",
    "solver",
    "order",
    "rtol",
    "atol",
    "dt",
    "nfe_forward",
    "n_accepted",
    "n_rejected",
    "seconds",
    "error",
    "error_max",
    "status",
)
ORDER_COLUMNS = ("backend", "problem", "solver", "tableau_order", "measured_order", "points")
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass(frozen=True)
class ForwardConfig:
    """Settings of the forward work-precision study; the defaults are the documented study.

    Arguments:
        solvers: registry names; adaptive ones run at `tolerances`, fixed-step ones at `steps`.
        tolerances: `rtol = atol` of the adaptive solvers.
        steps: steps per solve of the fixed-step solvers (`dt = t1 / steps`).
        dtype: `float64` (solver error alone) or `float32` (what training uses: the error
            levels off near float32 round-off).
        device: `cpu` or `cuda`.
        repeats: solves per setting; the time is the fastest (the least disturbed by other
            load on the machine, as `timeit` advises).
        max_steps: step budget of one solve.
        reference_rtol: tolerance of the float64 Dopri5 reference.
        julia: `auto` adds rows from the Julia backend where it is usable and can build the
            problem (a Neural ODE), `off` never, `require` raises `JuliaUnavailable` when it
            cannot.

    Raises:
        SpecError: for an unknown solver, dtype or julia mode, an invalid grid, or repeats < 1.
    """

    solvers: tuple[str, ...] = study_setting("solvers")
    tolerances: tuple[float, ...] = study_setting("tolerances")
    steps: tuple[int, ...] = study_setting("steps")
    dtype: str = study_setting("dtype")
    device: str = study_setting("device")
    repeats: int = study_setting("repeats")
    max_steps: int = study_setting("max_steps")
    reference_rtol: float = study_setting("reference_rtol", REFERENCE_RTOL)
    julia: str = study_setting("julia")

    def __post_init__(self) -> None:
        check_config(self)
        check_grid(self.solvers, self.tolerances, self.steps)


def check_config(config: Any) -> None:
    """The checks every study config shares: dtype, device, repeats, max_steps."""
    check_choice("dtype", config.dtype, DTYPES, error=SpecError)
    check_choice("device", config.device, DEVICES, error=SpecError)
    for name in ("repeats", "max_steps"):
        check_int(name, getattr(config, name), low=1, error=SpecError)
    check_number("reference_rtol", config.reference_rtol, low=1e-14, high=1e-8, error=SpecError)
    check_mode(config.julia)


def measure_forward(
    problem: StudyProblem,
    setting: Setting,
    reference: torch.Tensor,
    *,
    repeats: int = 1,
) -> dict[str, Any]:
    """One row of the forward table: solve `problem` (already in the study's dtype and device)
    with `setting` `repeats` times; NFE, fastest time and errors against `reference`.

    A failed solve is a row too: `status` holds the failure, the numbers are NaN.
    """
    row: dict[str, Any] = {"backend": "torch", "problem": problem.name, **setting.columns()}
    solver, controller = setting.method(), setting.controller()
    try:
        seconds, (y1, stats) = timed(
            lambda: end_state(problem, solver, controller), repeats, problem.device
        )
    except SolverError as err:
        return failed_row(row, err, "n_accepted", "n_rejected", "seconds", "error", "error_max")
    row.update(
        nfe_forward=stats.nfe_forward,
        n_accepted=stats.n_accepted,
        n_rejected=stats.n_rejected,
        seconds=seconds,
        error=relative_error(y1, reference),
        error_max=max_abs_error(y1, reference),
        status="ok",
    )
    return row


def measured_order(dts: list[float], errors: list[float]) -> float:
    """The least-squares slope of `log(error)` against `log(dt)`: the order of convergence.

    Points with a non-positive or NaN error are left out; NaN when fewer than two remain.
    """
    pairs = [(d, e) for d, e in zip(dts, errors, strict=True) if e > 0 and math.isfinite(e)]
    if len(pairs) < 2:
        return math.nan
    x = np.log([d for d, _ in pairs])
    y = np.log([e for _, e in pairs])
    return float(np.polyfit(x, y, 1)[0])


def orders(rows: list[dict[str, Any]], *, floor: float = 1e-12) -> list[dict[str, Any]]:
    """The measured order of each fixed-step solver in `rows`, per backend (errors below
    `floor`, the reach of float64 round-off, are left out of the fit)."""
    out = []
    keys = dict.fromkeys((r["backend"], r["solver"]) for r in rows if r["solver"] in FIXED_STEP)
    for backend, solver in keys:
        mine = [r for r in rows if (r["backend"], r["solver"]) == (backend, solver)]
        kept = [r for r in mine if r["status"] == "ok" and r["error"] > floor]
        out.append(
            {
                "backend": backend,
                "problem": mine[0]["problem"],
                "solver": solver,
                "tableau_order": mine[0]["order"],
                "measured_order": measured_order(
                    [r["dt"] for r in kept], [r["error"] for r in kept]
                ),
                "points": len(kept),
            }
        )
    return out


def forward_study(
    problem: StudyProblem,
    config: ForwardConfig = ForwardConfig(),
    out: str | os.PathLike | None = None,
    *,
    figures: bool = True,
    reference: ForwardReference | None = None,
    julia_backend: Any = None,
) -> StudyResult:
    """Run the forward work-precision study of `problem`.

    Arguments:
        problem: the initial-value problem (see `PROBLEMS`).
        config: solvers, tolerances, steps, dtype, repeats.
        out: folder for `forward.csv`, `orders.csv`, `study.json` and the figure
            `forward.{png,pdf}`; nothing is written when None.
        figures: draw the figure (needs `out`).
        reference: a reference computed before (else it is computed here).
        julia_backend: the backend object for the Julia rows (default `JuliaBackend()`).

    Returns:
        The `StudyResult` (rows with the columns `COLUMNS`).

    Raises:
        ReferenceNotConverged: if the float64 reference fails its checks.
        JuliaUnavailable: for `julia="require"` when the Julia backend cannot run.
    """
    julia, note = resolve_julia(config.julia, problem, julia_backend)
    reference = reference or forward_reference(problem, rtol=config.reference_rtol)
    work = problem.converted(DTYPES[config.dtype], config.device)
    rows = []
    for setting in grid(
        config.solvers, config.tolerances, config.steps, problem.t1, max_steps=config.max_steps
    ):
        new = [measure_forward(work, setting, reference.y1, repeats=config.repeats)]
        if julia is not None:
            new.append(julia_forward_row(julia, problem, setting, reference.y1, config.repeats))
        for row in new:
            log.info(
                "study forward: %s %s (%s): nfe %s, error %.3g",
                problem.name,
                setting.label,
                row["backend"],
                row["nfe_forward"],
                row["error"],
            )
        rows += new
    order_rows = orders(rows)
    meta = study_meta("forward", problem, config, reference, rows, note)
    meta["orders"] = order_rows
    return save_study(
        out,
        StudyResult("forward", rows, meta),
        COLUMNS,
        figures=figures,
        extra_tables={"orders": (order_rows, ORDER_COLUMNS)},
    )
