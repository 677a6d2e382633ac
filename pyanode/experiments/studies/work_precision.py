"""Work-precision: the error of the forward solution and of the loss gradient, against the NFE,
wall time and memory of each solver setting.

- forward (`forward_study`): the error of `y(t1)`. Every adaptive solver runs at every tolerance
  (`rtol = atol = tol`) and every fixed-step solver at `dt = t1 / n` for each step count `n`;
  for the fixed-step solvers the slope of `log(error)` against `log(dt)` is the measured order
  of convergence, written beside the tableau's order in `orders.csv`.
- gradient (`gradient_study`): the error of the loss's parameter gradient for every solver
  setting and gradient method (backprop through the solver, the backsolve adjoint with the
  seminorm of Kidger et al. 2021, and the adjoint with the full norm), with the forward and
  backward NFE, the wall time of forward + backward, the peak of the memory torch allocates over
  forward + backward (`peak_bytes`, see `PeakMemory`) and the error of the loss.

Errors are relative to the float64 reference (see `_reference`: Dopri5 at rtol 1e-12, checked).
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
from pyanode._names import gradients_of
from pyanode._validate import check_subset
from pyanode.experiments.studies._julia import julia_backend as resolve_julia
from pyanode.experiments.studies._julia import julia_forward_row, julia_gradient_row
from pyanode.experiments.studies._measure import (
    PeakMemory,
    StudyResult,
    failed_row,
    max_abs_error,
    relative_error,
    save_study,
    study_meta,
    timed,
)
from pyanode.experiments.studies._problems import StudyProblem
from pyanode.experiments.studies._reference import (
    REFERENCE_RTOL,
    ForwardReference,
    GradientReference,
    end_state,
    forward_reference,
    gradient_reference,
    loss_and_gradient,
)
from pyanode.experiments.studies._settings import (
    DTYPES,
    FIXED_STEP,
    Setting,
    check_config,
    check_grid,
    grid,
    study_setting,
)
from pyanode.solvers import AbstractGradientMethod, Adjoint, Backprop
from pyanode.specs import setting as option

log = logging.getLogger("pyanode")

# -- forward --------------------------------------------------------------------------------------
FORWARD_COLUMNS = (
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
        The `StudyResult` (rows with the columns `FORWARD_COLUMNS`).

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
        FORWARD_COLUMNS,
        figures=figures,
        extra_tables={"orders": (order_rows, ORDER_COLUMNS)},
    )


# -- gradient -------------------------------------------------------------------------------------
# name in the tables -> gradient method; "adjoint" is the spec's default (seminorm=True)
GRADIENT_METHODS: dict[str, AbstractGradientMethod] = {
    "backprop": Backprop(),
    "adjoint": Adjoint(seminorm=True),
    "adjoint-fullnorm": Adjoint(seminorm=False),
}

GRADIENT_COLUMNS = (
    "backend",
    "problem",
    "solver",
    "order",
    "gradient",
    "rtol",
    "atol",
    "dt",
    "nfe_forward",
    "nfe_backward",
    "nfe_total",
    "seconds",
    "peak_bytes",
    "loss_error",
    "error",
    "status",
)


@dataclass(frozen=True)
class GradientConfig:
    """Settings of the gradient work-precision study.

    Arguments:
        solvers, tolerances, steps: the solver grid (as in `ForwardConfig`).
        gradients: keys of `GRADIENT_METHODS`. With a fixed step the two adjoints are the same
            computation (the norm only steers step control), so `adjoint-fullnorm` is run for
            adaptive solvers only.
        dtype, device, repeats, max_steps, reference_rtol: as in `ForwardConfig`.
        julia: as in `ForwardConfig`; the Julia rows use every gradient method of the Julia
            backend (`gradients_of("julia")`: SciMLSensitivity's backprop, backsolve,
            interpolating, quadrature and Gauss adjoints).

    Raises:
        SpecError: for an unknown solver, gradient method, dtype or julia mode, or an invalid
            grid.
    """

    solvers: tuple[str, ...] = study_setting("solvers")
    tolerances: tuple[float, ...] = study_setting("tolerances")
    steps: tuple[int, ...] = study_setting("steps")
    gradients: tuple[str, ...] = option(tuple(GRADIENT_METHODS), "gradient methods")
    dtype: str = study_setting("dtype")
    device: str = study_setting("device")
    repeats: int = study_setting("repeats")
    max_steps: int = study_setting("max_steps")
    reference_rtol: float = study_setting("reference_rtol", REFERENCE_RTOL)
    julia: str = study_setting("julia")

    def __post_init__(self) -> None:
        check_config(self)
        check_grid(self.solvers, self.tolerances, self.steps)
        check_subset("gradients", self.gradients, GRADIENT_METHODS, error=SpecError)


def measure_gradient(
    problem: StudyProblem,
    setting: Setting,
    gradient: str,
    reference: GradientReference,
    *,
    repeats: int = 1,
) -> dict[str, Any]:
    """One row of the gradient table: loss and parameter gradient of `problem` (in the study's
    dtype and device) with `setting` and the method `gradient`; NFE, fastest time of forward +
    backward, peak memory and errors against `reference`.

    A failed solve is a row too: `status` holds the failure, the numbers are NaN.
    """
    row: dict[str, Any] = {
        "backend": "torch",
        "problem": problem.name,
        **setting.columns(),
        "gradient": gradient,
    }
    solver, controller = setting.method(), setting.controller()
    method = GRADIENT_METHODS[gradient]
    device = problem.device
    try:
        # The timed passes first: they also warm up one-time allocations (caches, workspaces)
        # that would otherwise count in the memory peak. Then one pass measuring memory (the
        # profiler slows it down).
        seconds, _ = timed(
            lambda: loss_and_gradient(problem, solver, controller, method), repeats, device
        )
        with PeakMemory(device) as memory:
            loss, grad, stats = loss_and_gradient(problem, solver, controller, method)
    except SolverError as err:
        return failed_row(
            row, err, "nfe_backward", "nfe_total", "seconds", "peak_bytes", "loss_error", "error"
        )
    ref_loss = torch.tensor(reference.loss, dtype=torch.float64)
    row.update(
        nfe_forward=stats.nfe_forward,
        nfe_backward=stats.nfe_backward,
        nfe_total=stats.nfe_forward + stats.nfe_backward,
        seconds=seconds,
        peak_bytes=memory.peak,
        loss_error=relative_error(loss, ref_loss),
        error=relative_error(grad, reference.gradient),
        status="ok",
    )
    return row


def gradient_study(
    problem: StudyProblem,
    config: GradientConfig = GradientConfig(),
    out: str | os.PathLike | None = None,
    *,
    figures: bool = True,
    reference: GradientReference | None = None,
    julia_backend: Any = None,
) -> StudyResult:
    """Run the gradient work-precision study of `problem`.

    Arguments:
        problem: the initial-value problem with its loss (see `PROBLEMS`).
        config: solvers, tolerances, steps, gradient methods, dtype, repeats.
        out: folder for `gradient.csv`, `study.json` and the figure `gradient.{png,pdf}`;
            nothing is written when None.
        figures: draw the figure (needs `out`).
        reference: a reference computed before (else it is computed here).
        julia_backend: the backend object for the Julia rows (default `JuliaBackend()`).

    Returns:
        The `StudyResult` (rows with the columns `GRADIENT_COLUMNS`).

    Raises:
        ReferenceNotConverged: if the float64 reference gradient fails its checks.
        JuliaUnavailable: for `julia="require"` when the Julia backend cannot run.
    """
    julia, note = resolve_julia(config.julia, problem, julia_backend)
    reference = reference or gradient_reference(problem, rtol=config.reference_rtol)
    work = problem.converted(DTYPES[config.dtype], config.device)
    rows = []
    for setting in grid(
        config.solvers, config.tolerances, config.steps, problem.t1, max_steps=config.max_steps
    ):
        new = [
            measure_gradient(work, setting, gradient, reference, repeats=config.repeats)
            for gradient in config.gradients
            if setting.adaptive or gradient != "adjoint-fullnorm"
        ]
        if julia is not None:
            new += [
                julia_gradient_row(julia, problem, setting, gradient, reference, config.repeats)
                for gradient in gradients_of("julia")
            ]
        for row in new:
            log.info(
                "study gradient: %s %s %s (%s): nfe %s + %s, error %.3g",
                problem.name,
                setting.label,
                row["gradient"],
                row["backend"],
                row["nfe_forward"],
                row["nfe_backward"],
                row["error"],
            )
        rows += new
    meta = study_meta("gradient", problem, config, reference, rows, note)
    meta["memory"] = (
        "peak_bytes: peak of the bytes torch allocated over forward + backward, above "
        "those allocated before (CPU: profiler memory events; CUDA: max_memory_allocated)"
    )
    return save_study(out, StudyResult("gradient", rows, meta), GRADIENT_COLUMNS, figures=figures)
