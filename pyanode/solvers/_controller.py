"""Step-size controllers: they decide `(accept, next dt)` from a step's error ratio, nothing else.

The one step-size loop (`_loop.py`) takes the steps, lands them on the stops, keeps the counts
and checks every step size it is given against the minimum step. A controller is a frozen
dataclass of settings; what changes during a solve is the `state` that `init` returns and
`adapt` passes on (as in diffrax's `adapt_step_size`).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pyanode._errors import SolverError
from pyanode._validate import check_int, check_number
from pyanode.solvers._tableau import AbstractSolver


class AbstractStepSizeController(abc.ABC):
    """Chooses the steps of a solve.

    Attributes:
        max_steps: step budget (accepted plus rejected) of one solve.
        dtmin: the smallest step size allowed (None: only the precision floor).
        tolerances: `(rtol, atol)` of the error ratio, or None when the steps need none.
    """

    max_steps: int
    dtmin: float | None = None
    tolerances: tuple[float, float] | None = None

    @abc.abstractmethod
    def check_solver(self, solver: AbstractSolver) -> None:
        """Raise `ValueError` if `solver` cannot be used with this controller."""

    @abc.abstractmethod
    def init(
        self,
        t0: float,
        t1: float,
        stops: Sequence[float],
        floor: float,
        order: int,
        select: Callable[[], float],
    ) -> tuple[float, Any]:
        """The first step size and the controller's state, before the first step.

        **Arguments:** `t0`, `t1` and the `stops` (times the steps land on, ordered, the last
        `t1`) of the solve; `floor`, the precision floor of the step size; `order`, the
        solver's order; `select()`, the step size chosen from the vector field at `t0`
        (Hairer, Nørsett & Wanner; costs one evaluation of `f`: call it only when needed).

        **Raises:** `SolverError` when the solve cannot succeed (a step budget too small).
        """

    @abc.abstractmethod
    def adapt(
        self, ratio: float | None, t: float, h: float, dt: float, state: Any
    ) -> tuple[bool, float, Any]:
        """`(accept, next dt, state)` after a step of size `h` (> 0) taken when the proposed
        size was `dt`, with error ratio `ratio` (None without tolerances); `t` is the time
        the solution is at if the step is accepted. The next step size is not checked here:
        the loop raises `SolverError` when it falls below `max(dtmin, floor)`."""

    @abc.abstractmethod
    def toward(self, rest: float, dt: float, floor: float) -> tuple[float, bool]:
        """`(h, lands)`: the size of the next step, `rest` away from the next stop, for the
        proposed size `dt`, and whether it lands on the stop (then `h == rest`). Never more
        than `rest`: a step that does not land leaves more than the precision `floor`."""


@dataclass(frozen=True)
class PIController(AbstractStepSizeController):
    """Adaptive steps from an embedded error estimate, with a proportional–integral controller.

    A step of size `dt` is accepted when the RMS norm of `err / (atol + rtol * max(|y_n|,
    |y_{n+1}|))` is at most 1. The next step is `dt * clip(safety * err^(-(icoeff + pcoeff)/k)
    * err_prev^(pcoeff/k), factormin, factormax)` with `k = solver.order` (the embedded order
    plus one) and `err_prev` the norm of the last accepted step; `pcoeff=0` is the plain
    I-controller (torchdiffeq's and diffrax's default), `pcoeff=0.2, icoeff=0.65` is Hairer's
    DOPRI5 PI controller. A rejected step shrinks `dt` (never grows it), and the step after a
    rejection does not grow either; a step clipped short to land on a stop keeps `dt` for the
    next unless its error asks for less. Steps land exactly on `t1`, the landed `saveat`
    times and the jump and step times, and never leave a sliver before one (see `toward`).

    Arguments:
        rtol, atol: relative and absolute tolerance.
        pcoeff, icoeff: the proportional and integral coefficients.
        safety: factor applied to the optimal step.
        factormin, factormax: bounds of the step-size change per step.
        dt0: the first step; None selects it by Hairer, Nørsett & Wanner, "Solving ODEs I",
            II.4 (two evaluations of `f`, one counted in the NFE). Raised to `dtmin`.
        dtmin: raise `SolverError` when a step size, accepted or rejected, would fall below
            `max(dtmin, 4 eps max(|t0|, |t1|, |t1 - t0|))`, `eps` the machine epsilon of the
            state's dtype (the precision floor, below which `t + dt` no longer moves `t`);
            None for the floor alone.
        dtmax: largest step; None for no bound.
        max_steps: step budget (accepted plus rejected) of one solve.

    Raises:
        ValueError: for a non-positive `rtol`, `safety`, `dt0`, `dtmax` or `max_steps`, a
            negative `atol`, `pcoeff` or `dtmin`, `safety` above 1, `factormin` not in (0, 1)
            or `factormax` not above 1.
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
        def number(name: str, **bounds: Any) -> None:
            check_number(f"PIController {name}", getattr(self, name), **bounds)

        number("rtol", low=0.0, strict_low=True)
        number("atol", low=0.0)
        number("pcoeff", low=0.0)
        number("icoeff", low=0.0, strict_low=True)
        number("safety", low=0.0, strict_low=True, high=1.0)
        number("factormin", low=0.0, strict_low=True, high=1.0)
        if self.factormin == 1.0:
            raise ValueError(
                "PIController factormin must be below 1 (a rejected step must shrink), got 1.0"
            )
        number("factormax", low=1.0, strict_low=True)
        for name, low, strict in (("dt0", 0.0, True), ("dtmin", 0.0, False), ("dtmax", 0.0, True)):
            if getattr(self, name) is not None:
                number(name, low=low, strict_low=strict)
        check_int("PIController max_steps", self.max_steps, low=1)

    @property
    def tolerances(self) -> tuple[float, float]:
        return (self.rtol, self.atol)

    def check_solver(self, solver: AbstractSolver) -> None:
        if not solver.adaptive:
            raise ValueError(
                f"PIController needs a solver with an error estimate, got {solver!r}; use "
                "Bosh3(), Dopri5() or Tsit5(), or ConstantStepSize(dt) for a fixed step"
            )

    def init(self, t0, t1, stops, floor, order, select):
        dt = select() if self.dt0 is None else self.dt0
        dt = max(dt, 0.0 if self.dtmin is None else self.dtmin)
        dt = min(dt, math.inf if self.dtmax is None else self.dtmax)
        # state: the previous error ratio, whether the last step was rejected, the exponents
        return dt, (1.0, False, -(self.icoeff + self.pcoeff) / order, self.pcoeff / order)

    def toward(self, rest, dt, floor):
        """The last steps before a stop: `dt` is `safety` times the step the error estimate
        predicts to meet the tolerance, so a stop within `dt / safety` (at most `dtmax`) is
        reached in one step, stretched; one within twice that in two equal steps; else `dt`.
        A sliver (a last step of a few % of `dt`, a full step's evaluations) never remains."""
        reach = dt / self.safety
        if self.dtmax is not None:
            reach = max(dt, min(reach, self.dtmax))
        if rest <= reach + floor:
            return rest, True
        if rest <= 2.0 * reach:
            return 0.5 * rest, False
        return dt, False

    def adapt(self, ratio, t, h, dt, state):
        err_prev, rejected, expo_err, expo_prev = state
        if ratio <= 1.0:
            raw = math.inf if ratio == 0.0 else self.safety * ratio**expo_err * err_prev**expo_prev
            factor = min(self.factormax, max(self.factormin, raw))
            if rejected:
                factor = min(factor, 1.0)
            dt_next = h * factor
            if h < dt:  # shortened before a stop: keep dt unless the error asks for less
                dt_next = max(dt_next, min(dt, h * raw))
            if self.dtmax is not None:
                dt_next = min(dt_next, self.dtmax)
            return True, dt_next, (max(ratio, 1e-4), False, expo_err, expo_prev)
        # reject (a NaN ratio lands here too)
        if math.isfinite(ratio):
            factor = max(self.factormin, min(1.0, self.safety * ratio**expo_err))
        else:
            factor = self.factormin
        return False, h * factor, (err_prev, True, expo_err, expo_prev)


@dataclass(frozen=True)
class ConstantStepSize(AbstractStepSizeController):
    """Steps of size `dt` on the grid `t0 + n dt`, the last one clipped to end at `t1`.

    Without `saveat` or jump times a solve takes `ceil((t1 - t0) / dt)` steps; a stop inside a
    step ends it there and the next step ends on the grid again, and a grid point closer to a
    stop than `1e-9 dt` (plus the precision floor) is dropped. Every step is accepted; any
    solver works (the error estimate, if any, is not computed) and the state is checked for
    NaN/inf after every step. The number of steps is checked against `max_steps` before the
    first step.

    Arguments:
        dt: the step size (positive; the direction comes from `t1 - t0`).
        max_steps: step budget of one solve.

    Raises:
        ValueError: if `dt` is not a finite number > 0 or `max_steps` is not an integer >= 1.
    """

    dt: float
    max_steps: int = 10_000

    def __post_init__(self) -> None:
        check_number("ConstantStepSize dt", self.dt, low=0.0, strict_low=True)
        check_int("ConstantStepSize max_steps", self.max_steps, low=1)

    def check_solver(self, solver: AbstractSolver) -> None:
        return None

    def init(self, t0, t1, stops, floor, order, select):
        tol = self._slack + floor
        n = self._count(t0, stops, tol) if self.dt >= floor else 0  # else the loop refuses dt
        if n > self.max_steps:
            raise SolverError(
                "max_steps",
                t0,
                math.copysign(self.dt, t1 - t0),
                0,
                f"ConstantStepSize(dt={self.dt!r}) needs {n} steps from t0={t0!r} to t1={t1!r}, "
                f"more than max_steps={self.max_steps}: increase max_steps or dt",
            )
        return self.dt, (t0, tol)

    @property
    def _slack(self) -> float:
        """How far past a grid point a stop may lie and still be landed on from the one before
        (round-off in `t0 + n dt`)."""
        return 1e-9 * self.dt

    def toward(self, rest, dt, floor):
        if rest <= dt + self._slack + floor:
            return rest, True
        return dt, False

    def _count(self, t0: float, stops: Sequence[float], tol: float) -> int:
        """The steps of a solve: per stop, the grid points before it (those within `tol` of it
        or of the previous stop dropped) and the step that lands on it."""
        n, done = 0, 0.0
        for stop in stops:
            reach = abs(stop - t0)
            first = math.floor((done + tol) / self.dt) + 1
            last = math.ceil((reach - tol) / self.dt) - 1
            n += max(0, last - first + 1) + 1
            done = reach
        return n

    def adapt(self, ratio, t, h, dt, state):
        t0, tol = state
        done = abs(t - t0)
        return True, (math.floor((done + tol) / self.dt) + 1) * self.dt - done, state
