"""Gradient work-precision: the error of the loss's parameter gradient for each gradient method.

For every solver setting and gradient method (backprop through the solver, the backsolve adjoint
with the seminorm of Kidger et al. 2021, and the adjoint with the full norm) the study records
the forward and backward NFE, the wall time of forward + backward, the peak of the memory torch
allocates over forward + backward (`peak_bytes`, see `PeakMemory`), and the relative error of
the gradient and of the loss against the float64 reference (backprop through Dopri5 at rtol
1e-12, checked against the full-norm adjoint).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch

from pyanode._errors import SolverError, SpecError
from pyanode.experiments.studies._julia import JULIA_GRADIENTS, julia_gradient_row
from pyanode.experiments.studies._julia import julia_backend as resolve_julia
from pyanode.experiments.studies._measure import PeakMemory, failed_row, relative_error, timed
from pyanode.experiments.studies._problem import StudyProblem
from pyanode.experiments.studies._reference import (
    REFERENCE_RTOL,
    GradientReference,
    gradient_reference,
    loss_and_gradient,
)
from pyanode.experiments.studies._settings import Setting, check_grid, grid, study_setting
from pyanode.experiments.studies._tables import StudyResult, save_study, study_meta
from pyanode.experiments.studies.work_precision import DTYPES, check_config
from pyanode.solvers import AbstractGradientMethod, Adjoint, Backprop
from pyanode.specs import setting as option

log = logging.getLogger("pyanode")

# name in the tables -> gradient method; "adjoint" is the spec's default (seminorm=True)
GRADIENT_METHODS: dict[str, AbstractGradientMethod] = {
    "backprop": Backprop(),
    "adjoint": Adjoint(seminorm=True),
    "adjoint-fullnorm": Adjoint(seminorm=False),
}

COLUMNS = (
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
        julia: as in `ForwardConfig`; the Julia rows use every method of `JULIA_GRADIENTS`
            (SciMLSensitivity's backprop, backsolve, interpolating, quadrature and Gauss
            adjoints).

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
        unknown = [g for g in self.gradients if g not in GRADIENT_METHODS]
        if unknown or not self.gradients:
            raise SpecError(
                f"gradients={list(self.gradients)!r} must be a non-empty list of: "
                f"{', '.join(GRADIENT_METHODS)}"
            )


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
        The `StudyResult` (rows with the columns `COLUMNS`).

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
                for gradient in JULIA_GRADIENTS
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
    return save_study(out, StudyResult("gradient", rows, meta), COLUMNS, figures=figures)
