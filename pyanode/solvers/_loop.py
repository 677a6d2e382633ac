"""The one step-size loop: steps from `t0` to `t1`, landing on the stops (jump and step times,
and the save times when asked to), with the FSAL, save and jump bookkeeping in one place.

Save times the steps do not land on are interpolated: after each accepted step, the states at
the save times inside it come from the tableau's continuous extension (`Stepper.interpolate`),
as in torchdiffeq and diffrax. Landing on them instead (`dense=False`) makes each a step end.

The loop asks the stepper for a step and the controller for `(accept, next dt)`; every step
size the controller gives, for an accepted or a rejected step, is checked against the minimum
step `max(dtmin, floor)`, where the precision floor `4 eps max(|t0|, |t1|, |t1 - t0|)` (`eps`
of the state's dtype) is where `t + dt` stops moving `t` in the times handed to `f`.

A stepper may take a whole solve without stops between `t0` and `t1` in one call
(`Stepper.whole`): the compiled `MLPField` path runs this same algorithm as one numba function,
where the Python here would cost several times the arithmetic (see `pyanode.torch._compiled`);
it reports a failure by `failure_error`'s arguments, so both raise the same `SolverError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from pyanode._errors import SolverError
from pyanode.solvers._controller import AbstractStepSizeController
from pyanode.solvers._problem import SolveRequest
from pyanode.solvers._step import Stepper


@dataclass(frozen=True)
class Stop:
    """A time the steps must land on exactly.

    Arguments:
        t: the time.
        save: index into `saveat` when the state is wanted here, else -1.
        jump: whether the vector field jumps here (FSAL is not reused across it).
        t_end: where `f` is evaluated for the stages that land on `t`: `t`, or for a jump the
            nearest time before it (in the direction of integration) in the state's dtype.
        t_after: where the first stage after `t` is evaluated: `t`, or for a jump the nearest
            time after it; so `f` is never evaluated on a jump, and a field may pick its piece
            by `t >= tau` or `t > tau` alike.
    """

    t: float
    save: int
    jump: bool
    t_end: float
    t_after: float


@dataclass
class Counts:
    """Work done by one loop."""

    nfe: int = 0
    n_accepted: int = 0
    n_rejected: int = 0
    nfe_graph: int = 0  # evaluations of the accepted steps that the final state depends on


def float_toward(t: float, direction: float, dtype: torch.dtype) -> float:
    """The number of `dtype` next to `t` (rounded to `dtype`) in `direction` (+1 or -1)."""
    x = torch.tensor(t, dtype=dtype)
    return float(torch.nextafter(x, torch.tensor(direction * math.inf, dtype=dtype)))


def make_stops(
    t0: float,
    t1: float,
    save_ts: list[float],
    jump_ts: list[float],
    dtype: torch.dtype,
    step_ts: list[float] = (),
) -> list[Stop]:
    """The ordered stops after `t0` up to and including `t1`: `save_ts` (landed on), `jump_ts`
    and `step_ts` (times to land on where `f` is continuous but not smooth).

    Save times equal to `t0` are not stops (the caller saves `y0`); jumps at `t0` are dropped.
    """
    direction = 1.0 if t1 >= t0 else -1.0
    saves = {t: i for i, t in enumerate(save_ts)}
    jumps = set(jump_ts)
    times = sorted({t1, *saves, *jumps, *step_ts}, key=lambda t: direction * t)
    stops = []
    for t in times:
        if (t - t0) * direction <= 0:
            continue
        if t in jumps:
            before, after = float_toward(t, -direction, dtype), float_toward(t, direction, dtype)
            stops.append(Stop(t, saves.get(t, -1), True, before, after))
        else:
            stops.append(Stop(t, saves.get(t, -1), False, t, t))
    return stops


OnSave = Callable[[int, float, torch.Tensor], torch.Tensor]


def integrate(
    stepper: Stepper,
    controller: AbstractStepSizeController,
    y0: torch.Tensor,
    t0: float,
    t1: float,
    save_ts: list[float],
    jump_ts: list[float],
    on_save: OnSave | None = None,
    *,
    step_ts: list[float] = (),
    dense: bool = False,
) -> tuple[torch.Tensor, Counts]:
    """Integrate from `(t0, y0)` to `t1` (either direction) with `stepper`'s steps.

    `on_save(i, t, y)` is called with the state at `save_ts[i]` (not at `t0`). With `dense`,
    the steps do not land on the save times: the states there are interpolated after the step
    that passes them (a tensor of their own) and what `on_save` returns is ignored. Otherwise
    each is a step end, and `on_save` returns the state to continue from (a new tensor means
    the first stage is evaluated again).

    **Returns:** `(y1, counts)`, `y1` possibly a view of the stepper's buffers.

    **Raises:** `SolverError` when the step budget is spent, the step size falls below the
    minimum step, or the state becomes non-finite.
    """
    floor, dtmin = minimum_step(controller, y0, t0, t1)
    if not jump_ts and not step_ts and all(s in (t0, t1) for s in save_ts):
        whole = stepper.whole(controller, y0, t0, t1, floor, dtmin)  # no stop between
        if whole is not None:
            y, counts, failure = whole
            if failure is not None:
                raise failure_error(*failure)
            i = save_ts.index(t1) if on_save is not None and t1 in save_ts else -1
            if i >= 0:
                y_saved = on_save(i, t1, y)
                y = y if dense else y_saved
            return y, counts
    counts = Counts()
    dtype = y0.dtype
    direction = 1.0 if t1 >= t0 else -1.0
    landed = [] if dense or on_save is None else save_ts
    stops = make_stops(t0, t1, landed, jump_ts, dtype, step_ts)
    # dense saves: (index, time) after t0, in the order the steps pass them
    passing = [(i, s) for i, s in enumerate(save_ts) if (s - t0) * direction > 0]
    passing = passing if dense and on_save is not None else []
    n_new, fsal = stepper.n_new, stepper.fsal
    k0_time = float_toward(t0, direction, dtype) if t0 in jump_ts else t0
    k0 = None

    def first_stage() -> torch.Tensor:
        counts.nfe += 1
        counts.nfe_graph += 1
        return stepper.evaluate(k0_time, y0)

    def select() -> float:
        nonlocal k0
        k0 = first_stage()
        counts.nfe += 1
        return initial_step(stepper, y0, k0, t0, stops[0].t)

    dt, state = controller.init(t0, t1, [s.t for s in stops], floor, stepper.order, select)
    if k0 is None:
        k0 = first_stage()
    if dt < dtmin:
        raise SolverError("dt_underflow", t0, dt, counts.nfe)

    t, y = t0, y0
    i_stop, stop = 0, stops[0]
    k0_time = None  # where a refreshed first stage is evaluated, when not at t
    nonfinite = False
    n_steps = 0
    while True:
        if k0 is None:
            k0 = stepper.evaluate(t if k0_time is None else k0_time, y)
            counts.nfe += 1
            counts.nfe_graph += 1
            k0_time = None
        if n_steps >= controller.max_steps:
            raise SolverError("max_steps", t, dt * direction, counts.nfe)
        h, landing = controller.toward((stop.t - t) * direction, dt, floor)
        if landing:
            t_next, t_end = stop.t, stop.t_end
        else:
            t_next = t_end = t + h * direction
        y1, ratio, record = stepper.step(t, t_next, y, k0, t_end)
        counts.nfe += n_new
        n_steps += 1
        h = abs(t_next - t)
        if ratio is None and not _finite(y1):  # no error estimate: check the state itself
            raise SolverError("nonfinite", t, t_next - t, counts.nfe)
        accept, dt_next, state = controller.adapt(ratio, t_next, h, dt, state)
        if accept:
            stepper.accept(record)
            if passing and (passing[0][1] - t_next) * direction <= 0:
                passing = _interpolate_saves(stepper, record, y, t, t_next, y1, passing, on_save)
            t, y = t_next, y1
            counts.n_accepted += 1
            counts.nfe_graph += n_new
            nonfinite = False
            k0 = stepper.last_stage(record) if fsal else None
            if landing:
                refresh = stop.jump
                if stop.save >= 0 and on_save is not None:
                    y_saved = on_save(stop.save, t, y)
                    if y_saved is not y:
                        y, refresh = y_saved, True
                i_stop += 1
                if i_stop == len(stops):
                    if fsal:
                        counts.nfe_graph -= 1  # the last stage of the last step is unused
                    return y, counts
                if refresh:
                    if fsal:
                        counts.nfe_graph -= 1  # the last stage is not the next first stage
                    k0 = None
                    if stop.jump:
                        k0_time = stop.t_after
                stop = stops[i_stop]
        else:
            counts.n_rejected += 1
            if not math.isfinite(ratio):
                _check_finite(y, k0, t, h, counts.nfe)
                nonfinite = True
        if dt_next < dtmin:
            reason = "nonfinite" if nonfinite else "dt_underflow"
            raise SolverError(reason, t, dt_next, counts.nfe)
        dt = dt_next


def _interpolate_saves(stepper, record, y, t, t_next, y1, passing, on_save):
    """Hand `on_save` the states at the save times the accepted step `(t, y) -> (t_next, y1)`
    passed (`y1` itself at `t_next`); returns the save times still ahead."""
    direction = 1.0 if t_next >= t else -1.0
    n = 0
    while n < len(passing) and (passing[n][1] - t_next) * direction < 0:
        n += 1
    if n:
        ys = stepper.interpolate(record, y, t, t_next, [s for _, s in passing[:n]])
        for (i, s), y_s in zip(passing[:n], ys, strict=True):
            on_save(i, s, y_s)
    if n < len(passing) and passing[n][1] == t_next:
        on_save(passing[n][0], t_next, y1)
        n += 1
    return passing[n:]


def minimum_step(
    controller: AbstractStepSizeController, y0: torch.Tensor, t0: float, t1: float
) -> tuple[float, float]:
    """`(floor, dtmin)`: the precision floor `4 eps max(|t0|, |t1|, |t1 - t0|)` of the step
    size and the minimum step `max(floor, controller.dtmin)`."""
    floor = 4.0 * torch.finfo(y0.dtype).eps * max(abs(t0), abs(t1), abs(t1 - t0))
    return floor, max(floor, controller.dtmin or 0.0)


# The messages of the failures that name more than their reason (`SolverError`'s default)
FAILURE_MESSAGES = {
    "nonfinite_state": "the state became NaN or infinite",
    "nonfinite_field": "the vector field returned NaN or infinite values at a finite state: "
    "check the vector field and its weights",
    "nonfinite_start": "the vector field returned NaN or infinite values at the initial "
    "state: check the vector field and its weights",
}


def failure_error(kind: str, t: float, dt: float, nfe: int) -> SolverError:
    """The `SolverError` of a failure: a `SolverError` reason, or a key of `FAILURE_MESSAGES`
    (all three are `"nonfinite"`); also what `Stepper.whole` reports."""
    message = FAILURE_MESSAGES.get(kind)
    return SolverError("nonfinite" if message else kind, t, dt, nfe, message)


def _finite(x: torch.Tensor) -> bool:
    return bool(torch.isfinite(x).all())


def _check_finite(y: torch.Tensor, k0: torch.Tensor, t: float, dt: float, nfe: int) -> None:
    """Raise at once if the accepted state or `f` there is non-finite: smaller steps won't help."""
    if not _finite(y):
        raise failure_error("nonfinite_state", t, dt, nfe)
    if not _finite(k0):
        raise failure_error("nonfinite_field", t, dt, nfe)


def initial_step(
    stepper: Stepper,
    y0: torch.Tensor,
    f0: torch.Tensor,
    t0: float,
    t_stop: float,
) -> float:
    """The starting step of Hairer, Nørsett & Wanner, "Solving ODEs I", II.4 (one `f` call).

    The trial evaluation stays inside the first piece: at most half way to the first stop.
    """
    direction = 1.0 if t_stop >= t0 else -1.0
    d0 = stepper.scaled_norm(y0, y0)
    d1 = stepper.scaled_norm(f0, y0)
    if not math.isfinite(d1):
        raise failure_error("nonfinite_start", t0, 0.0, 1)
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    h0 = min(h0, 0.5 * abs(t_stop - t0))
    f1 = stepper.probe(t0, y0, f0, direction * h0)
    d2 = stepper.scaled_norm(f1 - f0, y0) / h0
    dmax = max(d1, d2)
    if not math.isfinite(dmax):
        return h0 * 1e-3
    h1 = max(1e-6, h0 * 1e-3) if dmax <= 1e-15 else (0.01 / dmax) ** (1.0 / stepper.order)
    return min(100.0 * h0, h1)


def forward(
    stepper: Stepper,
    request: SolveRequest,
    x0: torch.Tensor,
    on_save: Callable[[int], None] | None = None,
) -> tuple[torch.Tensor, Counts]:
    """Solve `request` from `x0` (the state in the stepper's layout) under `torch.no_grad()`.

    **Returns:** `(xs, counts)`: the saved states stacked on a new first axis (`x0` for save
    times at `t0`), or the final state, as tensors of their own; `on_save(i)` is called when
    the state at `save_ts[i]` is saved.
    """
    r = request
    saved = [x0] * len(r.save_ts)

    def save(i: int, t: float, y: torch.Tensor) -> torch.Tensor:
        saved[i] = stepper.keep(y)
        if on_save is not None:
            on_save(i)
        return y

    with torch.no_grad():
        x1, counts = integrate(
            stepper,
            r.controller,
            x0,
            r.t0,
            r.t1,
            r.save_ts,
            r.jump_ts,
            save if saved else None,
            step_ts=r.step_ts,
            dense=not r.land_saveat,
        )
        x1 = stepper.finish(x1)
        return (torch.stack(saved) if saved else x1), counts
