"""Fixed steps."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from pyanode._errors import SolverError
from pyanode.solvers._controller import (
    AbstractStepSizeController,
    check_number,
    check_positive_int,
)
from pyanode.solvers._problem import Problem, Stop
from pyanode.solvers._solver import AbstractSolver

_MERGE = 1e-9  # grid points this close (relative to dt) to a stop are replaced by the stop


@dataclass(frozen=True)
class ConstantStepSize(AbstractStepSizeController):
    """Steps of size `dt` on the grid `t0 + n dt`, the last one clipped to end at `t1`.

    Without `saveat` or jump times a solve takes `ceil((t1 - t0) / dt)` steps; stops inside a
    step split it so that the steps land on them exactly. Any solver works (the error estimate,
    if any, is not computed). The state is checked for NaN/inf after every step.

    Arguments:
        dt: the step size (positive; the direction comes from `t1 - t0`).
        max_steps: step budget of one solve.

    Raises:
        ValueError: if `dt` is not a finite number > 0 or `max_steps` is not an int >= 1.
    """

    dt: float
    max_steps: int = 10_000

    def __post_init__(self) -> None:
        check_number("ConstantStepSize", "dt", self.dt, low=0.0, strict=True)
        check_positive_int("ConstantStepSize", "max_steps", self.max_steps)

    def check_solver(self, solver: AbstractSolver) -> None:
        return None

    def integrate(self, problem: Problem, y0: torch.Tensor) -> torch.Tensor:
        p = problem
        stepper, solver = p.stepper, p.solver
        counts = p.counts
        schedule = _schedule(p.t0, p.stops, self.dt, p.direction)
        if len(schedule) > self.max_steps:
            raise SolverError(
                "max_steps",
                p.t0,
                self.dt * p.direction,
                0,
                f"ConstantStepSize(dt={self.dt!r}) needs {len(schedule)} steps from t0={p.t0!r} "
                f"to t1={p.t1!r}, more than max_steps={self.max_steps}: increase max_steps or dt",
            )
        n_new = solver.tableau.stages - 1
        fsal = solver.fsal
        forward = p.direction > 0
        t = p.t0
        y = y0
        k0 = None
        k0_time = p.t0_below
        for t_next, stop in schedule:
            if k0 is None:
                k0 = stepper.evaluate(k0_time, y)
                counts.nfe += 1
                counts.nfe_graph += 1
            k0_time = t_next
            t1_eval = stop.t_below if (stop is not None and stop.jump and forward) else None
            y1, state = stepper.step(t, t_next, y, k0, t1_eval)
            stepper.accept(state)
            counts.nfe += n_new
            counts.nfe_graph += n_new
            counts.n_accepted += 1
            with torch.no_grad():
                finite = bool(torch.isfinite(y1).all())
            if not finite:
                raise SolverError("nonfinite", t, t_next - t, counts.nfe)
            t, y = t_next, y1
            k0 = stepper.last_stage(state) if fsal else None
            if stop is not None:
                refresh = stop.jump
                if stop.save >= 0 and p.on_save is not None:
                    y_saved = p.on_save(stop.save, t, y)
                    if y_saved is not y:
                        y, refresh = y_saved, True
                if refresh and k0 is not None:
                    k0 = None
                    counts.nfe_graph -= 1
                if stop.jump and not forward:
                    k0_time = stop.t_below
        if fsal and schedule:
            counts.nfe_graph -= 1  # the last stage of the last step is unused
        return y


def _schedule(t0: float, stops: list[Stop], dt: float, direction: float):
    """`[(t_next, stop or None), ...]`: the end of every step and the stop it lands on."""
    out: list[tuple[float, Stop | None]] = []
    t_start = t0
    for stop in stops:
        span = (stop.t - t0) * direction
        n_grid = math.ceil(span / dt * (1 - 1e-12))  # grid points t0 + n dt before this stop
        first = math.floor((t_start - t0) * direction / dt * (1 + 1e-12)) + 1
        for n in range(first, n_grid):
            t_n = t0 + direction * n * dt
            if abs(stop.t - t_n) > _MERGE * dt and (t_n - t_start) * direction > _MERGE * dt:
                out.append((t_n, None))
        out.append((stop.t, stop))
        t_start = stop.t
    return out
