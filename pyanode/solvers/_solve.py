"""`solve`, the one entry point of the torch backend's ODE solvers: its input checks, and the
names of the solvers and gradient methods at the spec and CLI boundary."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from pyanode._names import SOLVERS as SOLVER_NAMES
from pyanode._names import gradients_of, solver_name
from pyanode._validate import check_bool, check_choice, check_number
from pyanode.solvers._adjoint import Adjoint, InterpolatingAdjoint
from pyanode.solvers._backprop import Backprop
from pyanode.solvers._controller import AbstractStepSizeController, PIController
from pyanode.solvers._methods import RK4, RK38, Bosh3, Dopri5, Euler, Midpoint, Tsit5
from pyanode.solvers._problem import (
    AbstractGradientMethod,
    Solution,
    SolveRequest,
    SolverStats,
    VectorField,
    as_field,
)
from pyanode.solvers._tableau import AbstractSolver

# canonical name (pyanode._names) -> method class, e.g. SOLVERS["dp5"] is Dopri5; RK38 is only
# reached by torchdiffeq's name "rk4" in odeint
METHODS = {cls.__name__: cls for cls in (Euler, Midpoint, RK4, RK38, Bosh3, Dopri5, Tsit5)}
SOLVERS: dict[str, type[AbstractSolver]] = {
    name: METHODS[method] for name, (method, _) in SOLVER_NAMES.items()
}
_GRADIENT_METHODS = {
    "backprop": Backprop,
    "adjoint": Adjoint,
    "interpolating-adjoint": InterpolatingAdjoint,
}
GRADIENTS: dict[str, type[AbstractGradientMethod]] = {
    name: _GRADIENT_METHODS[name] for name in gradients_of("torch")
}


def solver_from_name(name: str) -> AbstractSolver:
    """The solver called `name` (or an alias of it), e.g. `solver_from_name("dopri5") ==
    Dopri5()`.

    **Raises:** `ValueError` naming the accepted names and aliases.
    """
    return SOLVERS[solver_name(name)]()


def gradient_from_name(name: str, *, seminorm: bool = True) -> AbstractGradientMethod:
    """The gradient method called `name`: `"backprop"`, `"adjoint"` or
    `"interpolating-adjoint"` (with `seminorm`, which `Backprop` ignores).

    **Raises:** `ValueError` naming the accepted names.
    """
    method = GRADIENTS[check_choice("gradient", name, GRADIENTS)]
    return method() if method is Backprop else method(seminorm=seminorm)


# The strategy objects are frozen dataclasses, so sharing the default instances is safe.
_DOPRI5 = Dopri5()
_PI = PIController(rtol=1e-3, atol=1e-3)
_BACKPROP = Backprop()


def solve(
    f: VectorField,
    y0: torch.Tensor,
    t0: float | torch.Tensor = 0.0,
    t1: float | torch.Tensor = 1.0,
    *,
    args: Any = None,
    solver: AbstractSolver = _DOPRI5,
    controller: AbstractStepSizeController = _PI,
    gradient: AbstractGradientMethod = _BACKPROP,
    saveat: torch.Tensor | None = None,
    jump_ts: torch.Tensor | None = None,
    step_ts: torch.Tensor | None = None,
    land_saveat: bool = False,
    norm: Callable[[torch.Tensor], Any] | None = None,
) -> Solution:
    """Solve `dy/dt = f(t, y, args)` from `y(t0) = y0` to `t1`.

    **Arguments:**

    - `f`: the vector field, called as `f(t, y, args)` with `t` a 0-d tensor and `y` a tensor
      of the shape, dtype and device of `y0`; returns `dy/dt` of the same shape. A field that
      takes `(t, y)` (torchdiffeq, torchdyn) or `(y)` (an `nn.Sequential`) is called that way,
      told apart once per field from its signature. Gradients reach the tensors of `args`,
      the parameters of an `nn.Module` and the leaf tensors a closure reaches (see `Backprop`).
    - `y0`: the initial state, a floating-point tensor of any shape (usually `(B, ...)`). All
      elements share the steps; the error norm is the RMS over all of them.
    - `t0`, `t1`: start and end time (floats or 0-d tensors, which may require grad); `t1 < t0`
      integrates backwards. The last step is clipped so that `f` is never evaluated beyond
      `t1`.
    - `args`: passed unchanged to `f` (a tensor, a tuple of tensors, or None).
    - `solver`: the Runge–Kutta method, e.g. `Dopri5()` or `solver_from_name("tsit5")`.
    - `controller`: `PIController(rtol, atol)` (adaptive) or `ConstantStepSize(dt)`.
    - `gradient`: `Backprop()`, `Adjoint()` or `InterpolatingAdjoint()`.
    - `saveat`: times (a 1-D tensor, which may require grad, or a sequence of floats) in
      `[t0, t1]`, strictly increasing from `t0` towards `t1`, where the state is returned.
      The states there come from the solver's continuous extension (dense output) of the step
      that passes them, so they do not change the steps; with `land_saveat` the steps land on
      them instead.
    - `jump_ts`: times in `[t0, t1]`, ordered likewise, where `f` changes discontinuously
      (a piecewise-constant `theta(t)`): the steps land on them, FSAL is not reused across
      them, and `f` is never evaluated on one: stages of the piece before a jump `tau` that
      fall on `tau` are evaluated at the nearest time before it in the state's dtype, and the
      first stage after it at the nearest time after it, so `f` may pick its piece by
      `t >= tau` or by `t > tau`.
    - `step_ts`: times, ordered likewise, where the steps land (a kink of `f`; FSAL is kept).
    - `land_saveat`: land the steps on the `saveat` times (each state there is a step end)
      instead of interpolating.
    - `norm`: the error norm of the scaled error estimate (a tensor shaped like `y0`) as a
      float or 0-d tensor, absolutely homogeneous (`norm(c x) = |c| norm(x)`); None for the
      root mean square.

    **Returns:**

    `Solution(ys, ts, stats)`: `ys` the states at `saveat` stacked on a new first axis, or
    `y(t1)` when `saveat` is None; `ts` the matching times; `stats` the NFE and step counts.
    Gradients with respect to the times are those of the exact solution: `dL/dsaveat_i =
    g_i . f(saveat_i, y_i)`, `dL/dt1 = g . f(t1, y(t1))`, `dL/dt0 = -a(t0) . f(t0, y0)` with
    `a(t0) = dL/dy0`.

    **Raises:**

    - `TypeError`: for an `f` that is not callable or of none of the shapes, a non-tensor or
      non-floating `y0`, or a `solver`/`controller`/`gradient` that is not an instance of the
      matching base class.
    - `ValueError`: for a non-finite `y0`, `t0` or `t1`, a `saveat`, `jump_ts` or `step_ts` out
      of `[t0, t1]` or not ordered, or a controller that cannot drive `solver`.
    - `SolverError`: when the solve fails (step budget, step-size underflow, NaN/inf state).
    """
    _check_instance(
        "controller", controller, AbstractStepSizeController, "PIController(rtol, atol)"
    )
    return run_solve(
        f,
        y0,
        t0,
        t1,
        args=args,
        solver=solver,
        controller=controller,
        gradient=gradient,
        saveat=saveat,
        jump_ts=jump_ts,
        step_ts=step_ts,
        land_saveat=land_saveat,
        norm=norm,
        tolerances=controller.tolerances,
    )


def run_solve(
    f: Any,
    y0: torch.Tensor,
    t0: Any,
    t1: Any,
    *,
    args: Any,
    solver: AbstractSolver,
    controller: AbstractStepSizeController,
    gradient: AbstractGradientMethod,
    saveat: Any,
    jump_ts: Any,
    step_ts: Any,
    land_saveat: bool,
    norm: Any,
    tolerances: tuple[Any, Any] | None,
) -> Solution:
    """`solve` with the error ratio's `tolerances` given apart from the controller's (`odeint`'s
    per-element tolerances: `atol` a tensor shaped like `y0`); checks its inputs as `solve`."""
    field = as_field(f)
    if not isinstance(y0, torch.Tensor) or not torch.is_floating_point(y0):
        what = y0.dtype if isinstance(y0, torch.Tensor) else type(y0).__name__
        raise TypeError(f"y0 must be a floating-point torch.Tensor, got {what}")
    _check_instance("solver", solver, AbstractSolver, "Dopri5() or solver_from_name('dp5')")
    _check_instance(
        "controller", controller, AbstractStepSizeController, "PIController(rtol, atol)"
    )
    _check_instance(
        "gradient",
        gradient,
        AbstractGradientMethod,
        "Backprop(), Adjoint() or gradient_from_name(name)",
    )
    check_bool("land_saveat", land_saveat)
    if norm is not None and not callable(norm):
        raise TypeError(f"norm must be a function of a tensor or None, got {norm!r}")
    controller.check_solver(solver)
    t0_, t1_ = _time("t0", t0), _time("t1", t1)
    with torch.no_grad():  # a finite sum has finite terms (one op); else look at each
        finite = math.isfinite(float(y0.sum())) or bool(torch.isfinite(y0).all())
    if not finite:
        raise ValueError("y0 contains NaN or infinite values; the initial state must be finite")
    save_ts = _times("saveat", saveat, t0_, t1_)
    jumps = _times("jump_ts", jump_ts, t0_, t1_)
    steps = _times("step_ts", step_ts, t0_, t1_)

    stats = SolverStats()
    if save_ts:
        ts = torch.tensor(save_ts, dtype=y0.dtype, device=y0.device)
    else:
        ts = torch.scalar_tensor(t1_, dtype=y0.dtype, device=y0.device)
    if t0_ == t1_:
        ys = torch.stack([y0] * len(save_ts)) if save_ts else y0
        return Solution(ys=ys, ts=ts, stats=stats)
    times = None
    if torch.is_grad_enabled():
        wanted = tuple(x if _requires_grad(x) else None for x in (t0, t1, saveat))
        if any(x is not None for x in wanted):
            times = wanted
            if saveat is not None and times[1] is not None:
                times = (times[0], None, times[2])  # y(saveat) does not depend on t1
    request = SolveRequest(
        field,
        y0,
        args,
        solver,
        controller,
        t0_,
        t1_,
        save_ts,
        jumps,
        stats,
        step_ts=steps,
        land_saveat=land_saveat,
        tolerances=tolerances,
        norm=norm,
        times=times,
    )
    return Solution(ys=gradient.run(request), ts=ts, stats=stats)


def _requires_grad(x: Any) -> bool:
    return isinstance(x, torch.Tensor) and x.requires_grad


def _check_instance(name: str, value: object, base: type, example: str) -> None:
    if not isinstance(value, base):
        raise TypeError(
            f"{name} must be an instance of {base.__name__} such as {example}, got {value!r}"
        )


def _time(name: str, value: Any) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"{name} must be a number or a 0-d tensor, got shape {tuple(value.shape)}"
            )
        value = value.item()
    return check_number(name, value)


def _times(name: str, value: Any, t0: float, t1: float) -> list[float]:
    """`saveat`/`jump_ts`/`step_ts` as a list of floats, checked to lie in [t0, t1], ordered
    t0 to t1."""
    if value is None:
        return []
    if isinstance(value, torch.Tensor):
        if value.ndim != 1 or value.numel() == 0:
            raise ValueError(
                f"{name} must be a non-empty 1-D tensor, got shape {tuple(value.shape)}"
            )
        if value.requires_grad and name != "saveat":
            raise ValueError(
                f"{name} must not require grad (the solution does not depend on where the "
                "steps land)"
            )
        ts = [float(x) for x in value.detach().cpu().tolist()]
    else:
        try:
            ts = [float(x) for x in value]
        except (TypeError, ValueError):
            raise ValueError(
                f"{name} must be a 1-D tensor or a sequence of floats, got {value!r}"
            ) from None
        if not ts:
            raise ValueError(f"{name} must not be empty")
    lo, hi = min(t0, t1), max(t0, t1)
    for t in ts:
        if not (lo <= t <= hi):
            raise ValueError(f"{name} must lie in [t0, t1] = [{t0!r}, {t1!r}], got {t!r} in {ts}")
    direction = 1.0 if t1 >= t0 else -1.0
    for a, b in zip(ts, ts[1:], strict=False):
        if (b - a) * direction <= 0:
            order = "increasing" if direction > 0 else "decreasing (t1 < t0)"
            raise ValueError(f"{name} must be strictly {order} from t0 to t1, got {ts}")
    return ts
