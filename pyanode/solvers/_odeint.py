"""`odeint` and `odeint_adjoint`: torchdiffeq's interface on pyanode's solvers.

A call is translated once into what `solve` takes: torchdiffeq's method names into solvers
(`pyanode._names.TORCHDIFFEQ_METHODS`), its `options` into a controller and stops, a tuple state
into one flat tensor (a field adapter packs and unpacks it), per-component tolerances into an
error ratio per element, `t` into `t0`, `t1` and `saveat`. Then it is `solve`: the same steps,
loop and gradients. Differences from torchdiffeq by design are listed in docs/torchdiffeq.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from pyanode._names import TORCHDIFFEQ_METHODS, TORCHDIFFEQ_MISSING
from pyanode._validate import check_int, check_number
from pyanode.solvers._adjoint import Adjoint
from pyanode.solvers._backprop import Backprop
from pyanode.solvers._controller import AbstractStepSizeController
from pyanode.solvers._odeint_inputs import (
    ADAPTIVE_OPTIONS,
    FIXED_OPTIONS,
    NO_LIMIT,
    Plan,
    State,
    Tolerances,
    check_options,
    fixed_controller,
    number,
    options_dict,
    pi_controller,
)
from pyanode.solvers._solve import METHODS, run_solve
from pyanode.solvers._tableau import AbstractSolver

_CALLBACKS = ("callback_step", "callback_accept_step", "callback_reject_step")


def odeint(
    func: Callable,
    y0: torch.Tensor | tuple[torch.Tensor, ...],
    t: torch.Tensor,
    *,
    rtol: Any = 1e-7,
    atol: Any = 1e-9,
    method: str | None = None,
    options: dict[str, Any] | None = None,
    event_fn: Callable | None = None,
) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """Solve `dy/dt = func(t, y)`, `y(t[0]) = y0`, and return `y` at the times `t`, as
    torchdiffeq's `odeint` does; gradients by differentiating the solver's steps (`Backprop`).

    **Arguments:**

    - `func`: the vector field `func(t, y)` (also `func(y)` or pyanode's `func(t, y, args)`,
      called with `args=None`); for a tuple `y0` it takes and returns tuples.
    - `y0`: the initial state, a floating-point tensor of any shape or a tuple of them.
    - `t`: a 1-D floating-point tensor of output times, strictly increasing or decreasing;
      `t[0]` is the initial time. May require grad.
    - `rtol`, `atol`: relative and absolute tolerances (adaptive methods): numbers, tensors
      broadcastable to `y0` (per element), or for a tuple `y0` one per component.
    - `method`: one of torchdiffeq's names that pyanode has: `dopri5` (default), `tsit5`,
      `bosh3` (adaptive), `rk4` (Kutta's 3/8 rule, as torchdiffeq's), `euler`, `midpoint`.
    - `options`: adaptive methods: `first_step`, `max_num_steps`, `step_t`, `jump_t`,
      `grid_points` (torchdiffeq <= 0.2.0's `step_t`), `safety`, `ifactor`, `dfactor`,
      `max_step`, `dtype`, `norm`; fixed-step methods: `step_size` (or `grid_constructor`,
      else the steps go from one output time to the next), `perturb`, `max_num_steps`,
      `jump_t`, `step_t`, `grid_points`, `dtype`. Any other key raises.
    - `event_fn`: not supported (raises).

    **Returns:** a tensor `(len(t), *y0.shape)`, or a tuple of them for a tuple `y0`.

    **Raises:** `ValueError` for an unknown or unsupported method or option, bad times or
    tolerances; `TypeError` for a field of no known shape or a non-tensor `y0`/`t`;
    `SolverError` when the solve fails.
    """
    return _odeint(func, y0, t, rtol, atol, method, options, event_fn, None)


def odeint_adjoint(
    func: Callable,
    y0: torch.Tensor | tuple[torch.Tensor, ...],
    t: torch.Tensor,
    *,
    rtol: Any = 1e-7,
    atol: Any = 1e-9,
    method: str | None = None,
    options: dict[str, Any] | None = None,
    event_fn: Callable | None = None,
    adjoint_rtol: float | None = None,
    adjoint_atol: float | None = None,
    adjoint_method: str | None = None,
    adjoint_options: dict[str, Any] | None = None,
    adjoint_params: Sequence[torch.Tensor] | None = None,
) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """`odeint` with gradients by the backsolve adjoint (`Adjoint`), as torchdiffeq's
    `odeint_adjoint`.

    **Arguments** (besides those of `odeint`):

    - `adjoint_rtol`, `adjoint_atol`, `adjoint_method`, `adjoint_options`: the backward solve's
      (default: the forward's; with per-component forward tolerances the smallest of each).
      `adjoint_options={"norm": "seminorm"}` measures the backward error on `y` and its adjoint
      only (Kidger et al. 2021); the default norm includes the parameters' integrals, as
      torchdiffeq's. The backward solve always lands on the forward's `jump_t`, `step_t` and
      output times.
    - `adjoint_params`: the tensors to differentiate (default: the parameters of `func`, an
      `nn.Module`). Unlike torchdiffeq, a plain callable needs none: the tensors it reaches
      are found from its graph and differentiated, so nothing is lost without them; tensors
      listed here are differentiated even where `func` uses them only later in time.

    **Raises:** as `odeint`; `ValueError` for `adjoint_method != method` with `options` but no
    `adjoint_options` (as torchdiffeq), or an `adjoint_options` norm other than `"seminorm"`.
    """
    params = None if adjoint_params is None else _adjoint_params(adjoint_params)
    adjoint = _AdjointSettings(adjoint_rtol, adjoint_atol, adjoint_method, adjoint_options, params)
    return _odeint(func, y0, t, rtol, atol, method, options, event_fn, adjoint)


@dataclass(frozen=True)
class _AdjointSettings:
    rtol: Any
    atol: Any
    method: str | None
    options: dict[str, Any] | None
    params: tuple[torch.Tensor, ...] | None


def _odeint(func, y0, t, rtol, atol, method, options, event_fn, adjoint):
    if event_fn is not None:
        raise ValueError(
            "event_fn is not supported by pyanode.odeint (no event handling); solve to a fixed "
            "end time, or use torchdiffeq.odeint_event"
        )
    for name in _CALLBACKS:
        if any(hasattr(func, name + end) for end in ("", "_adjoint")):
            raise ValueError(
                f"func has {name}: pyanode.odeint calls no callbacks (torchdiffeq does); remove "
                "them, or count and inspect inside func itself"
            )
    ts = _output_times(t)
    state = State(y0)
    name = "dopri5" if method is None else method
    solver = _solver(name)
    tolerances = Tolerances(rtol, atol, state)
    plan = Plan(name, solver, options, ts, tolerances, state, func)
    gradient = Backprop()
    f = state.field(func)
    args = None
    if adjoint is not None:
        gradient = _adjoint_gradient(adjoint, name, solver, options, ts, tolerances, state, func)
        declared = adjoint.params
        if declared is None and not isinstance(func, nn.Module):
            declared = ()
        if declared and not _within(declared, func):
            # differentiated even where f first uses them after t0: handed in as args
            f, args = _IgnoreArgs(f), declared
    sol = run_solve(
        f,
        state.y0,
        t[0],
        t[-1],
        args=args,
        solver=solver,
        controller=plan.controller,
        gradient=gradient,
        saveat=t,
        jump_ts=plan.jump_ts or None,
        step_ts=plan.step_ts or None,
        land_saveat=plan.land,
        norm=plan.norm,
        tolerances=tolerances.pair if plan.adaptive else None,
    )
    return state.unpack(sol.ys)


def _output_times(t: Any) -> list[float]:
    if not isinstance(t, torch.Tensor) or not torch.is_floating_point(t) or t.ndim != 1:
        what = f"shape {tuple(t.shape)} {t.dtype}" if isinstance(t, torch.Tensor) else repr(t)
        raise TypeError(f"t must be a 1-D floating-point torch.Tensor of output times, got {what}")
    if t.numel() == 0:
        raise ValueError("t must hold at least one time (the initial time t[0])")
    ts = [float(x) for x in t.detach().cpu().tolist()]
    if not all(math.isfinite(x) for x in ts):
        raise ValueError(f"t must be finite, got {ts}")
    steps = [b - a for a, b in zip(ts, ts[1:], strict=False)]
    if not (all(d > 0 for d in steps) or all(d < 0 for d in steps)):
        raise ValueError(f"t must be strictly increasing or strictly decreasing, got {ts}")
    return ts


def _solver(name: Any) -> AbstractSolver:
    if isinstance(name, str) and name in TORCHDIFFEQ_METHODS:
        return METHODS[TORCHDIFFEQ_METHODS[name][0]]()
    supported = ", ".join(TORCHDIFFEQ_METHODS)
    if name in TORCHDIFFEQ_MISSING:
        raise ValueError(
            f"method={name!r} is torchdiffeq's but not in pyanode; supported: {supported}"
        )
    raise ValueError(f"method={name!r} is not known; supported: {supported}")


class _IgnoreArgs(nn.Module):
    """`f(t, y, args)` with `args` (the adjoint's declared tensors) not handed on."""

    def __init__(self, field: Any):
        super().__init__()
        self.field = field

    def __call__(self, t, y, args):
        return self.field(t, y, None)


def _adjoint_params(params: Any) -> tuple[torch.Tensor, ...]:
    try:
        params = tuple(params)
    except TypeError:
        raise ValueError(f"adjoint_params must be a sequence of tensors, got {params!r}") from None
    for p in params:
        if not isinstance(p, torch.Tensor):
            raise ValueError(f"adjoint_params must hold tensors, got {type(p).__name__}")
    return tuple(p for p in params if p.requires_grad)


def _within(declared: tuple[torch.Tensor, ...], func: Any) -> bool:
    """Whether every declared tensor is a parameter of `func` (then `func` declares them)."""
    own = {id(p) for p in func.parameters()} if isinstance(func, nn.Module) else set()
    return all(id(p) in own for p in declared)


def _adjoint_gradient(adjoint, name, solver, options, ts, tolerances, state, func) -> Adjoint:
    """The `Adjoint` of torchdiffeq's adjoint arguments: its backward solver and controller."""
    method = name if adjoint.method is None else adjoint.method
    if adjoint.method not in (None, name) and options is not None and adjoint.options is None:
        raise ValueError(
            "adjoint_method differs from method and options are given, so the adjoint's "
            "options cannot be inferred: pass adjoint_options too (as torchdiffeq asks)"
        )
    if adjoint.options is None:
        adj_options = {k: v for k, v in options_dict("options", options).items() if k != "norm"}
    else:
        adj_options = dict(options_dict("adjoint_options", adjoint.options))
    norm = adj_options.pop("norm", None)
    if norm not in (None, "seminorm"):
        raise ValueError(
            f"adjoint_options norm must be 'seminorm' or absent, got {norm!r}: pyanode's "
            "backward solve uses the largest RMS norm over the state, its adjoint and (unless "
            "'seminorm') the parameters' integrals"
        )
    # the backward solve lands on the forward's stops: these say nothing new
    for key in ("jump_t", "step_t", "grid_points", "perturb", "grid_constructor"):
        adj_options.pop(key, None)
    adj_solver = _solver(method)
    rtol = tolerances.rtol if adjoint.rtol is None else adjoint.rtol
    atol = tolerances.atol if adjoint.atol is None else adjoint.atol
    rtol = check_number("adjoint_rtol", number(rtol), low=0, strict_low=True)
    atol = check_number("adjoint_atol", number(atol), low=0)
    allowed = ADAPTIVE_OPTIONS if adj_solver.adaptive else FIXED_OPTIONS
    check_options("adjoint_options", adj_options, allowed, method)
    max_steps = check_int(
        "adjoint_options max_num_steps", adj_options.get("max_num_steps", NO_LIMIT), low=1
    )
    controller: AbstractStepSizeController
    if adj_solver.adaptive:
        controller = pi_controller(adj_options, rtol, atol, max_steps)
    else:
        controller = fixed_controller(adj_options, ts, max_steps, None)[0]
    return Adjoint(seminorm=norm == "seminorm", solver=adj_solver, controller=controller)
