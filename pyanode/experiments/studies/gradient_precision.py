"""Gradient work-precision: the error of the loss's parameter gradient for each gradient method.

For every solver setting and gradient method (backprop through the solver, the backsolve adjoint
with the seminorm of Kidger et al. 2021, and the adjoint with the full norm) the study records
the forward and backward NFE, the wall time of forward + backward, the bytes autograd holds for
backward (`saved_bytes`: the peak over forward and backward, see `SavedTensorBytes`; on CUDA
also `peak_bytes`, the peak of allocated memory), and the relative error of the gradient and of
the loss against the float64 reference (backprop through Dopri5 at rtol 1e-12, checked against
the full-norm adjoint).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from pyanode._errors import SolverError, SpecError
from pyanode.experiments.studies._measure import SavedTensorBytes, relative_error, timed
from pyanode.experiments.studies._reference import (
    REFERENCE_RTOL,
    GradientReference,
    gradient_reference,
    loss_and_gradient,
)
from pyanode.experiments.studies._settings import ALL_SOLVERS, Setting, check_grid, grid
from pyanode.experiments.studies._tables import StudyResult, julia_note, write_study
from pyanode.experiments.studies.problems import StudyProblem
from pyanode.experiments.studies.work_precision import DTYPES, check_config
from pyanode.solvers import AbstractGradientMethod, Adjoint, Backprop

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
    "saved_bytes",
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

    Raises:
        SpecError: for an unknown solver, gradient method or dtype, or an invalid grid.
    """

    solvers: tuple[str, ...] = ALL_SOLVERS
    tolerances: tuple[float, ...] = (1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8)
    steps: tuple[int, ...] = (4, 8, 16, 32, 64, 128)
    gradients: tuple[str, ...] = tuple(GRADIENT_METHODS)
    dtype: str = "float64"
    device: str = "cpu"
    repeats: int = 3
    max_steps: int = 100_000
    reference_rtol: float = REFERENCE_RTOL

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
    dtype and device) with `setting` and the method `gradient`; NFE, median time of forward +
    backward, saved bytes and errors against `reference`.

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
    nan = math.nan
    try:
        # One pass with the saved-tensor hooks and the memory peak, then the timed passes.
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
        held = [*problem.parameters(), *problem.buffers()]
        with SavedTensorBytes(exclude=held) as saved:
            loss, grad, stats = loss_and_gradient(problem, solver, controller, method)
        peak = torch.cuda.max_memory_allocated(device) - before if device.type == "cuda" else nan
        seconds, _ = timed(
            lambda: loss_and_gradient(problem, solver, controller, method), repeats, device
        )
    except SolverError as err:
        row.update(nfe_forward=err.nfe, nfe_backward=nan, nfe_total=nan, seconds=nan)
        row.update(saved_bytes=nan, peak_bytes=nan, loss_error=nan, error=nan)
        row["status"] = f"failed: {err.reason}"
        return row
    ref_loss = torch.tensor(reference.loss, dtype=torch.float64)
    row.update(
        nfe_forward=stats.nfe_forward,
        nfe_backward=stats.nfe_backward,
        nfe_total=stats.nfe_forward + stats.nfe_backward,
        seconds=seconds,
        saved_bytes=saved.peak,
        peak_bytes=peak,
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
) -> StudyResult:
    """Run the gradient work-precision study of `problem`.

    Arguments:
        problem: the initial-value problem with its loss (see `problems`).
        config: solvers, tolerances, steps, gradient methods, dtype, repeats.
        out: folder for `gradient.csv`, `study.json` and the figure `gradient.{png,pdf}`;
            nothing is written when None.
        figures: draw the figure (needs `out`).
        reference: a reference computed before (else it is computed here).

    Returns:
        The `StudyResult` (rows with the columns `COLUMNS`).

    Raises:
        ReferenceNotConverged: if the float64 reference gradient fails its checks.
    """
    reference = reference or gradient_reference(problem, rtol=config.reference_rtol)
    work = problem.converted(DTYPES[config.dtype], config.device)
    rows = []
    for setting in grid(
        config.solvers, config.tolerances, config.steps, problem.t1, max_steps=config.max_steps
    ):
        for gradient in config.gradients:
            if gradient == "adjoint-fullnorm" and not setting.adaptive:
                continue
            row = measure_gradient(work, setting, gradient, reference, repeats=config.repeats)
            log.info(
                "study gradient: %s %s %s: nfe %s + %s, error %.3g",
                problem.name,
                setting.label,
                gradient,
                row["nfe_forward"],
                row["nfe_backward"],
                row["error"],
            )
            rows.append(row)
    meta = {
        "study": "gradient",
        "problem": problem.describe(),
        "config": asdict(config),
        "reference": reference.checks(),
        "backends": ["torch"],
        "julia": julia_note(),
        "memory": "saved_bytes: peak of the storages autograd holds for backward over forward "
        "and backward (parameters and inputs excluded); peak_bytes: CUDA peak allocated "
        "(NaN on the CPU)",
    }
    result = StudyResult("gradient", rows, meta)
    if out is None:
        return result
    files = write_study(out, result, COLUMNS)
    if figures:
        from pyanode.plots.studies import plot_gradient

        files += plot_gradient(Path(out) / "gradient.csv", Path(out) / "gradient")
    return StudyResult("gradient", rows, meta, files)
