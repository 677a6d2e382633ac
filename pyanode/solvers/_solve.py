"""`solve`, the one entry point of the torch backend's ODE solvers: its input checks, and the
names of the solvers and gradient methods at the spec and CLI boundary."""

from __future__ import annotations

from typing import Any

import torch

from pyanode._names import SOLVERS as SOLVER_NAMES
from pyanode._names import gradients_of, solver_name
from pyanode._validate import check_choice, check_number
from pyanode.solvers._adjoint import Adjoint
from pyanode.solvers._backprop import Backprop
from pyanode.solvers._bosh3 import Bosh3
from pyanode.solvers._controller import AbstractStepSizeController, PIController
from pyanode.solvers._dopri5 import Dopri5
from pyanode.solvers._euler import Euler
from pyanode.solvers._midpoint import Midpoint
from pyanode.solvers._problem import (
    AbstractGradientMethod,
    Solution,
    SolveRequest,
    SolverStats,
    VectorField,
)
from pyanode.solvers._rk4 import RK4
from pyanode.solvers._tableau import AbstractSolver
from pyanode.solvers._tsit5 import Tsit5

# canonical name (pyanode._names) -> method class, e.g. SOLVERS["dp5"] is Dopri5
_METHODS = {cls.__name__: cls for cls in (Euler, Midpoint, RK4, Bosh3, Dopri5, Tsit5)}
SOLVERS: dict[str, type[AbstractSolver]] = {
    name: _METHODS[method] for name, (method, _) in SOLVER_NAMES.items()
}
GRADIENTS: dict[str, type[AbstractGradientMethod]] = {
    name: {"backprop": Backprop, "adjoint": Adjoint}[name] for name in gradients_of("torch")
}


def solver_from_name(name: str) -> AbstractSolver:
    """The solver called `name` (or an alias of it), e.g. `solver_from_name("dopri5") ==
    Dopri5()`.

    **Raises:** `ValueError` naming the accepted names and aliases.
    """
    return SOLVERS[solver_name(name)]()


def gradient_from_name(name: str, *, seminorm: bool = True) -> AbstractGradientMethod:
    """The gradient method called `name`: `"backprop"` or `"adjoint"` (with `seminorm`, which
    `Backprop` ignores).

    **Raises:** `ValueError` naming the accepted names.
    """
    method = GRADIENTS[check_choice("gradient", name, GRADIENTS)]
    return Adjoint(seminorm=seminorm) if method is Adjoint else method()


# The strategy objects are frozen dataclasses, so sharing the default instances is safe.
_DOPRI5 = Dopri5()
_PI = PIController(rtol=1e-3, atol=1e-3)
_BACKPROP = Backprop()


def solve(
    f: VectorField,
    y0: torch.Tensor,
    t0: float = 0.0,
    t1: float = 1.0,
    *,
    args: Any = None,
    solver: AbstractSolver = _DOPRI5,
    controller: AbstractStepSizeController = _PI,
    gradient: AbstractGradientMethod = _BACKPROP,
    saveat: torch.Tensor | None = None,
    jump_ts: torch.Tensor | None = None,
) -> Solution:
    """Solve `dy/dt = f(t, y, args)` from `y(t0) = y0` to `t1`.

    **Arguments:**

    - `f`: the vector field, called as `f(t, y, args)` with `t` a 0-d tensor and `y` a tensor
      of the shape, dtype and device of `y0`; returns `dy/dt` of the same shape. Gradients
      reach the tensors of `args`, the parameters of an `nn.Module` and the leaf tensors a
      closure reaches (see `Backprop`).
    - `y0`: the initial state, a floating-point tensor of any shape (usually `(B, ...)`). All
      elements share the steps; the error norm is the RMS over all of them.
    - `t0`, `t1`: start and end time; `t1 < t0` integrates backwards. The last step is clipped
      so that `f` is never evaluated beyond `t1`.
    - `args`: passed unchanged to `f` (a tensor, a tuple of tensors, or None).
    - `solver`: the Runge–Kutta method, e.g. `Dopri5()` or `solver_from_name("tsit5")`.
    - `controller`: `PIController(rtol, atol)` (adaptive) or `ConstantStepSize(dt)`.
    - `gradient`: `Backprop()` or `Adjoint()`.
    - `saveat`: times (a 1-D tensor or a sequence of floats) in `[t0, t1]`, strictly increasing
      from `t0` towards `t1`, where the state is returned; the steps land on them exactly.
    - `jump_ts`: times in `[t0, t1]`, ordered likewise, where `f` changes discontinuously
      (a piecewise-constant `theta(t)`): the steps land on them, FSAL is not reused across
      them, and no step evaluates `f` on both sides. Convention: the pieces are
      `[tau_k, tau_{k+1})`; stages of the piece below a jump `tau` that fall on `tau` are
      evaluated at the largest time below `tau` in the state's dtype, so `f` may pick its piece
      by `t >= tau`.

    **Returns:**

    `Solution(ys, ts, stats)`: `ys` the states at `saveat` stacked on a new first axis, or
    `y(t1)` when `saveat` is None; `ts` the matching times; `stats` the NFE and step counts.

    **Raises:**

    - `TypeError`: for an `f` that is not callable, a non-tensor or non-floating `y0`, or a
      `solver`/`controller`/`gradient` that is not an instance of the matching base class.
    - `ValueError`: for a non-finite `y0`, `t0` or `t1`, times that require grad, a `saveat` or
      `jump_ts` out of `[t0, t1]` or not ordered, or a controller that cannot drive `solver`.
    - `SolverError`: when the solve fails (step budget, step-size underflow, NaN/inf state).
    """
    if not callable(f):
        raise TypeError(f"f must be callable as f(t, y, args), got {type(f).__name__}")
    if not isinstance(y0, torch.Tensor) or not torch.is_floating_point(y0):
        what = y0.dtype if isinstance(y0, torch.Tensor) else type(y0).__name__
        raise TypeError(f"y0 must be a floating-point torch.Tensor, got {what}")
    _check_instance("solver", solver, AbstractSolver, "Dopri5() or solver_from_name('dp5')")
    _check_instance(
        "controller", controller, AbstractStepSizeController, "PIController(rtol, atol)"
    )
    _check_instance(
        "gradient", gradient, AbstractGradientMethod, "Backprop() or gradient_from_name(name)"
    )
    controller.check_solver(solver)
    t0_, t1_ = _time("t0", t0), _time("t1", t1)
    with torch.no_grad():
        finite = bool(torch.isfinite(y0).all())
    if not finite:
        raise ValueError("y0 contains NaN or infinite values; the initial state must be finite")
    save_ts = _times("saveat", saveat, t0_, t1_)
    jumps = _times("jump_ts", jump_ts, t0_, t1_)

    stats = SolverStats()
    if save_ts:
        ts = torch.tensor(save_ts, dtype=y0.dtype, device=y0.device)
    else:
        ts = torch.scalar_tensor(t1_, dtype=y0.dtype, device=y0.device)
    if t0_ == t1_:
        ys = torch.stack([y0] * len(save_ts)) if save_ts else y0
        return Solution(ys=ys, ts=ts, stats=stats)
    request = SolveRequest(f, y0, args, solver, controller, t0_, t1_, save_ts, jumps, stats)
    return Solution(ys=gradient.run(request), ts=ts, stats=stats)


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
        if value.requires_grad:
            raise ValueError(
                f"{name} requires grad, but gradients with respect to t0/t1 are not supported; "
                "pass a float, or scale time inside f through args"
            )
        value = value.item()
    return check_number(name, value)


def _times(name: str, value: Any, t0: float, t1: float) -> list[float]:
    """`saveat`/`jump_ts` as a list of floats, checked to lie in [t0, t1], ordered t0 to t1."""
    if value is None:
        return []
    if isinstance(value, torch.Tensor):
        if value.ndim != 1 or value.numel() == 0:
            raise ValueError(
                f"{name} must be a non-empty 1-D tensor, got shape {tuple(value.shape)}"
            )
        if value.requires_grad:
            raise ValueError(
                f"{name} must not require grad (gradients w.r.t. times are not supported)"
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
