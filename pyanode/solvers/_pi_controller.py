"""Adaptive step-size control: the PI controller and the standard initial step selection."""

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
from pyanode.solvers._problem import Problem
from pyanode.solvers._solver import AbstractSolver

_STRETCH = 1.01  # take the rest of the way to a stop if it is within 1% more than dt (DOPRI5)


@dataclass(frozen=True)
class PIController(AbstractStepSizeController):
    """Adaptive steps from an embedded error estimate, with a proportional–integral controller.

    A step of size `dt` is accepted when the RMS norm of `err / (atol + rtol * max(|y_n|,
    |y_{n+1}|))` is at most 1. The next step is `dt * clip(safety * err^(-(icoeff + pcoeff)/k)
    * err_prev^(pcoeff/k), factormin, factormax)` with `k = solver.order` (the embedded order
    plus one) and `err_prev` the norm of the last accepted step; `pcoeff=0` is the plain
    I-controller (torchdiffeq's and diffrax's default), `pcoeff=0.2, icoeff=0.65` is Hairer's
    DOPRI5 PI controller. A rejected step shrinks `dt` (never grows it), and the step after a
    rejection does not grow either. Steps are clipped to land exactly on `t1`, the `saveat`
    times and the jump times; when the rest of the way to one is less than `1.01 dt` it is
    taken in one step, as in Hairer's DOPRI5.

    Arguments:
        rtol, atol: relative and absolute tolerance.
        pcoeff, icoeff: the proportional and integral coefficients.
        safety: factor applied to the optimal step.
        factormin, factormax: bounds of the step-size change per step.
        dt0: the first step; None selects it by Hairer, Nørsett & Wanner, "Solving ODEs I",
            II.4 (two evaluations of `f`, one counted in the NFE).
        dtmin: raise `SolverError` when the step falls below
            `max(dtmin, 4 eps max(|t|, |t1 - t0|))`, `eps` the machine epsilon of the state's
            dtype; None for the relative bound alone.
        dtmax: largest step; None for no bound.
        max_steps: step budget (accepted plus rejected) of one solve.

    Raises:
        ValueError: for a non-positive `rtol`, `safety`, `dt0`, `dtmax` or `max_steps`, a
            negative `atol`, `pcoeff` or `dtmin`, `factormin` not in (0, 1) or `factormax`
            not above 1.
    """

    rtol: float = 1e-3
    atol: float = 1e-3
    pcoeff: float = 0.0
    icoeff: float = 1.0
    safety: float = 0.9
    factormin: float = 0.2
    factormax: float = 10.0
    dt0: float | None = None
    dtmin: float | None = None
    dtmax: float | None = None
    max_steps: int = 10_000

    def __post_init__(self) -> None:
        name = "PIController"
        check_number(name, "rtol", self.rtol, low=0.0, strict=True)
        check_number(name, "atol", self.atol, low=0.0, strict=False)
        check_number(name, "pcoeff", self.pcoeff, low=0.0, strict=False)
        check_number(name, "icoeff", self.icoeff, low=0.0, strict=True)
        check_number(name, "safety", self.safety, low=0.0, strict=True)
        check_number(name, "factormin", self.factormin, low=0.0, strict=True)
        check_number(name, "factormax", self.factormax, low=1.0, strict=True)
        if self.safety > 1.0:
            raise ValueError(f"PIController safety must be in (0, 1], got {self.safety!r}")
        if self.factormin >= 1.0:
            raise ValueError(f"PIController factormin must be in (0, 1), got {self.factormin!r}")
        if self.dt0 is not None:
            check_number(name, "dt0", self.dt0, low=0.0, strict=True)
        if self.dtmin is not None:
            check_number(name, "dtmin", self.dtmin, low=0.0, strict=False)
        if self.dtmax is not None:
            check_number(name, "dtmax", self.dtmax, low=0.0, strict=True)
        check_positive_int(name, "max_steps", self.max_steps)

    def check_solver(self, solver: AbstractSolver) -> None:
        if not solver.adaptive:
            raise ValueError(
                f"PIController needs a solver with an error estimate, got {solver!r}; use "
                "Bosh3(), Dopri5() or Tsit5(), or ConstantStepSize(dt) for a fixed step"
            )

    def integrate(self, problem: Problem, y0: torch.Tensor) -> torch.Tensor:
        p = problem
        stepper, solver, norm = p.stepper, p.solver, p.norm
        counts = p.counts
        direction = p.direction
        t, t_end = p.t0, p.t1
        stops = p.stops
        n_new = solver.tableau.stages - 1  # evaluations per step besides the first stage
        fsal = solver.fsal
        step, error_ratio, accept = stepper.step, stepper.error_ratio, stepper.accept
        rtol, atol, safety = self.rtol, self.atol, self.safety
        factormin, factormax = self.factormin, self.factormax
        k = float(solver.order)
        expo_err = -(self.icoeff + self.pcoeff) / k
        expo_prev = self.pcoeff / k
        dtmax = math.inf if self.dtmax is None else self.dtmax
        eps = torch.finfo(y0.dtype).eps
        dtmin_rel = 4.0 * eps * abs(t_end - t)
        dtmin_user = 0.0 if self.dtmin is None else self.dtmin

        y = y0
        k0 = stepper.evaluate(p.t0_below, y)
        counts.nfe += 1
        counts.nfe_graph += 1
        with torch.no_grad():
            ay = y.abs()
        if self.dt0 is None:
            dt = initial_step(p, y, k0.detach(), ay, rtol, atol)
            counts.nfe += 1
        else:
            dt = self.dt0
        dt = min(dt, dtmax)

        i_stop = 0
        stop = stops[0]
        k0_time = None  # where a refreshed first stage is evaluated
        err_prev = 1.0
        last_rejected = False
        nonfinite = False
        n_steps = 0
        while True:
            if k0 is None:
                k0 = stepper.evaluate(t if k0_time is None else k0_time, y)
                counts.nfe += 1
                counts.nfe_graph += 1
                k0_time = None
            if n_steps >= self.max_steps:
                raise SolverError("max_steps", t, dt * direction, counts.nfe)
            rest = (stop.t - t) * direction
            landing = _STRETCH * dt >= rest
            if landing:
                t_next = stop.t
                t1_eval = stop.t_below if (stop.jump and direction > 0) else None
            else:
                t_next = t + dt * direction
                t1_eval = None
            y1, state = step(t, t_next, y, k0, t1_eval)
            counts.nfe += n_new
            n_steps += 1
            h = t_next - t
            err_norm, ay1 = error_ratio(state, h, ay, y1, rtol, atol, norm)
            h = abs(h)
            if err_norm <= 1.0:
                # Accept.
                raw = (
                    math.inf
                    if err_norm == 0.0
                    else safety * err_norm**expo_err * err_prev**expo_prev
                )
                factor = min(factormax, max(factormin, raw))
                if last_rejected:
                    factor = min(factor, 1.0)
                dt_next = h * factor
                if landing and h < dt:
                    # A step clipped short of dt: keep dt unless the error asks for less.
                    dt_next = max(dt_next, min(dt, h * raw))
                dt = min(dt_next, dtmax)
                accept(state)
                t, y, ay = t_next, y1, ay1
                counts.n_accepted += 1
                counts.nfe_graph += n_new
                err_prev = max(err_norm, 1e-4)
                last_rejected = nonfinite = False
                k0 = stepper.last_stage(state) if fsal else None
                if landing:
                    refresh = stop.jump
                    if stop.save >= 0 and p.on_save is not None:
                        y_saved = p.on_save(stop.save, t, y)
                        if y_saved is not y:
                            y, refresh = y_saved, True
                            with torch.no_grad():
                                ay = y.abs()
                    i_stop += 1
                    if i_stop == len(stops):
                        if fsal:
                            counts.nfe_graph -= 1  # the last stage of the last step is unused
                        return y
                    if refresh:
                        if fsal:
                            counts.nfe_graph -= 1
                        k0 = None
                        if stop.jump and direction < 0:
                            k0_time = stop.t_below
                    stop = stops[i_stop]
            else:
                # Reject (a NaN norm lands here too).
                counts.n_rejected += 1
                if math.isfinite(err_norm):
                    factor = max(factormin, min(1.0, safety * err_norm**expo_err))
                else:
                    _check_finite(y, k0, t, h, counts.nfe)
                    nonfinite = True
                    factor = factormin
                dt = h * factor
                last_rejected = True
                if dt < max(dtmin_user, dtmin_rel, 4.0 * eps * abs(t)):
                    raise SolverError(
                        "nonfinite" if nonfinite else "dt_underflow", t, dt, counts.nfe
                    )


def _check_finite(y: torch.Tensor, k0: torch.Tensor, t: float, dt: float, nfe: int) -> None:
    """Raise at once if the accepted state or `f` there is non-finite: smaller steps won't help."""
    with torch.no_grad():
        if not bool(torch.isfinite(y).all()):
            raise SolverError("nonfinite", t, dt, nfe, "the state became NaN or infinite")
        if not bool(torch.isfinite(k0).all()):
            raise SolverError(
                "nonfinite",
                t,
                dt,
                nfe,
                "the vector field returned NaN or infinite values at a finite state: check the "
                "vector field and its weights",
            )


def initial_step(
    p: Problem, y0: torch.Tensor, f0: torch.Tensor, ay0: torch.Tensor, rtol: float, atol: float
) -> float:
    """The starting step of Hairer, Nørsett & Wanner, "Solving ODEs I", II.4 (one `f` call).

    The trial evaluation stays inside the first piece: at most half way to the first stop.
    """
    order = p.solver.order
    direction = p.direction
    with torch.no_grad():
        scale = ay0 * rtol + atol
        d0 = p.norm(y0 / scale)
        d1 = p.norm(f0 / scale)
        h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
        if not math.isfinite(d1):
            raise SolverError(
                "nonfinite",
                p.t0,
                0.0,
                1,
                "the vector field returned NaN or infinite values at the initial state: check "
                "the vector field and its weights",
            )
        h0 = min(h0, 0.5 * abs(p.stops[0].t - p.t0))
        t1 = p.t0 + direction * h0
        f1 = p.stepper.probe(t1, torch.add(y0, f0, alpha=direction * h0))
        d2 = p.norm((f1 - f0) / scale) / h0
        dmax = max(d1, d2)
        if not math.isfinite(dmax):
            return h0 * 1e-3
        h1 = max(1e-6, h0 * 1e-3) if dmax <= 1e-15 else (0.01 / dmax) ** (1.0 / order)
    return min(100.0 * h0, h1)
