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
from pyanode._validate import check_int, check_keys, check_number
from pyanode.solvers._adjoint import Adjoint
from pyanode.solvers._backprop import Backprop
from pyanode.solvers._controller import AbstractStepSizeController, ConstantStepSize, PIController
from pyanode.solvers._problem import as_field
from pyanode.solvers._solve import METHODS, run_solve
from pyanode.solvers._step import mixed_rms_norm, rms_norm
from pyanode.solvers._tableau import AbstractSolver

_CALLBACKS = ("callback_step", "callback_accept_step", "callback_reject_step")
# the options of torchdiffeq that pyanode takes, by kind of method
_COMMON = ("max_num_steps", "jump_t", "step_t", "grid_points", "dtype", "norm")
ADAPTIVE_OPTIONS = ("first_step", "safety", "ifactor", "dfactor", "max_step", *_COMMON)
FIXED_OPTIONS = ("step_size", "grid_constructor", "perturb", *_COMMON)
# torchdiffeq's options that pyanode refuses, and why
REFUSED = {
    "min_step": "pyanode never accepts a step because it is small: a step size below the "
    "minimum raises SolverError instead (solve(..., controller=PIController(dtmin=...)))",
    "interp": "pyanode interpolates between steps with the method's own continuous extension "
    "(order 3 for rk4, 2 for midpoint, the line for euler), not a linear or cubic one",
    "eps": "the perturbation of torchdiffeq <= 0.2.0's grid_points: pyanode never evaluates "
    "f on a jump_t, so pass the times as jump_t",
    "max_order": "the Adams methods are not in pyanode",
    "max_iters": "the implicit methods are not in pyanode",
    "solver": "scipy_solver is not in pyanode",
}
NO_LIMIT = 2**31 - 1  # torchdiffeq's default max_num_steps


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


# -- torchdiffeq's inputs as pyanode's: a tuple state packed into one tensor, tolerances per
# element, and `options` turned into a controller, stops and an error norm


class State:
    """`y0` as one tensor: itself, or a tuple packed flat (and the field adapted to it)."""

    def __init__(self, y0: Any):
        self.shapes = None
        if isinstance(y0, tuple):
            if not y0 or not all(isinstance(y, torch.Tensor) for y in y0):
                raise TypeError("y0 must be a tensor or a non-empty tuple of tensors")
            dtypes = {y.dtype for y in y0}
            if len(dtypes) != 1:
                raise TypeError(f"the tensors of a tuple y0 must share one dtype, got {dtypes}")
            self.shapes = [y.shape for y in y0]
            y0 = torch.cat([y.reshape(-1) for y in y0])
        elif not isinstance(y0, torch.Tensor):
            raise TypeError(f"y0 must be a tensor or a tuple of tensors, got {type(y0).__name__}")
        self.y0 = y0
        self.sizes = None if self.shapes is None else [s.numel() for s in self.shapes]

    def split(self, flat: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The components of a flat state (or of states stacked on leading axes)."""
        lead = flat.shape[:-1]
        parts = flat.split(self.sizes, dim=-1)
        return tuple(p.reshape(*lead, *s) for p, s in zip(parts, self.shapes, strict=True))

    def field(self, func: Callable) -> Any:
        f = as_field(func)
        return f if self.shapes is None else _TupleField(f, self)

    def unpack(self, ys: torch.Tensor) -> Any:
        return ys if self.shapes is None else self.split(ys)


class _TupleField(nn.Module):
    """A field on a tuple state, called on the flat state: unpack, call, pack."""

    def __init__(self, field: Any, state: State):
        super().__init__()
        self.field, self.state = field, state

    def __call__(self, t, y, args):
        out = self.field(t, self.state.split(y), args)
        return torch.cat([o.reshape(-1) for o in out])


class Tolerances:
    """`rtol`/`atol` as the error ratio takes them: scalars, or per element (`pair` is then
    `(1, atol / rtol)` and `weight` = 1 / rtol scales the error before the norm, which gives
    `norm(e / (atol + rtol max(|y0|, |y1|)))` through the stepper's scalar formula)."""

    def __init__(self, rtol: Any, atol: Any, state: State):
        r, a = self._values("rtol", rtol, state), self._values("atol", atol, state)
        self.scalar = not isinstance(r, torch.Tensor) and not isinstance(a, torch.Tensor)
        if self.scalar:
            self.rtol, self.atol = check_number("rtol", r, low=0, strict_low=True), a
            self.pair, self.weight = (self.rtol, self.atol), None
            return
        like = state.y0
        r = torch.as_tensor(r, dtype=like.dtype, device=like.device).expand_as(like)
        a = torch.as_tensor(a, dtype=like.dtype, device=like.device).expand_as(like)
        if not bool((r > 0).all()) or not bool((a >= 0).all()) or not bool(a.isfinite().all()):
            raise ValueError("rtol must be > 0 and atol >= 0 (finite) for every element")
        self.rtol, self.atol = float(r.min()), float(a.min())  # the adjoint's defaults
        self.pair, self.weight = (1.0, a / r), 1.0 / r

    @staticmethod
    def _values(name: str, value: Any, state: State) -> Any:
        """A float, or a tensor shaped like the (flat) state."""
        if state.shapes is not None and isinstance(value, (tuple, list)):
            if len(value) != len(state.shapes):
                raise ValueError(
                    f"{name} has {len(value)} entries, but y0 is a tuple of {len(state.shapes)}"
                    "; give one per component or a single number"
                )
            parts = [
                torch.as_tensor(v, dtype=state.y0.dtype).expand(shape).reshape(-1)
                for v, shape in zip(value, state.shapes, strict=True)
            ]
            return torch.cat(parts)
        if isinstance(value, torch.Tensor):
            if value.requires_grad:
                raise ValueError(f"{name} must not require grad")
            if value.numel() == 1:
                return check_number(name, number(value), low=0)
            if state.shapes is not None and value.ndim == 1:  # one per component
                return Tolerances._values(name, list(value.detach()), state)
            try:
                return value.detach().expand_as(state.y0) if state.shapes is None else None
            except RuntimeError:
                pass
            raise ValueError(
                f"{name} of shape {tuple(value.shape)} does not broadcast to y0's shape; give "
                "a number, a tensor broadcastable to y0, or one per component of a tuple y0"
            )
        return check_number(name, value, low=0)


class Plan:
    """The controller, stops and norm of one solve from torchdiffeq's `options`."""

    def __init__(self, name, solver, options, ts, tolerances, state, func):
        options = options_dict("options", options)
        self.adaptive = solver.adaptive
        allowed = ADAPTIVE_OPTIONS if self.adaptive else FIXED_OPTIONS
        check_options("options", options, allowed, name)
        t0, t1 = ts[0], ts[-1]
        max_steps = check_int("options max_num_steps", options.get("max_num_steps", NO_LIMIT),
                              low=1)  # fmt: skip
        if "dtype" in options:
            _check_dtype(options["dtype"])
        jumps = _inside("jump_t", options.get("jump_t"), t0, t1)
        steps = _inside("step_t", options.get("step_t"), t0, t1)
        steps += _inside("grid_points", options.get("grid_points"), t0, t1)
        self.land = False
        if self.adaptive:
            # per-element tolerances reach the stepper apart: the controller's are unused
            rtol, atol = (tolerances.rtol, tolerances.atol) if tolerances.scalar else (1.0, 0.0)
            self.controller = pi_controller(options, rtol, atol, max_steps)
        else:
            grid = None
            if "grid_constructor" in options:
                if "step_size" in options:
                    raise ValueError(
                        "options step_size and grid_constructor exclude each other; give one"
                    )
                grid = _grid(options["grid_constructor"], func, state.y0, ts)
                steps += grid[1:-1]
            self.controller, self.land, grid = fixed_controller(options, ts, max_steps, grid)
            if options.get("perturb", False) is True:
                jumps += grid
            elif options.get("perturb", False) is not False:
                raise ValueError(
                    f"options perturb must be True or False, got {options['perturb']!r}"
                )
        direction = 1.0 if t1 >= t0 else -1.0
        self.jump_ts = sorted(set(jumps), key=lambda x: direction * x)
        self.step_ts = sorted(set(steps) - set(jumps), key=lambda x: direction * x)
        self.norm = _norm(options.get("norm"), tolerances, state) if self.adaptive else None


def options_dict(name: str, options: Any) -> dict[str, Any]:
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise ValueError(f"{name} must be a dict of solver options, got {options!r}")
    return options


def check_options(name: str, options: dict, allowed: tuple[str, ...], method: str) -> None:
    for key in options:
        if key in REFUSED:
            raise ValueError(f"{name} {key!r} is not supported by pyanode.odeint: {REFUSED[key]}")
    kind = "adaptive" if allowed is ADAPTIVE_OPTIONS else "fixed-step"
    check_keys(f"{name} of the {kind} method {method!r}", options, allowed)


def _check_dtype(dtype: Any) -> None:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"options dtype must be a floating torch.dtype, got {dtype!r}")
    # pyanode keeps times as Python floats (float64) and hands f times of y0's dtype, which is
    # torchdiffeq's behaviour with its default dtype=torch.float64: nothing to change


def _inside(name: str, value: Any, t0: float, t1: float) -> list[float]:
    """The times of `value` strictly between `t0` and `t1` (torchdiffeq ignores the others)."""
    if value is None:
        return []
    if isinstance(value, torch.Tensor):
        if value.ndim > 1:
            raise ValueError(f"options {name} must be 1-D, got shape {tuple(value.shape)}")
        values = value.detach().reshape(-1).cpu().tolist()
    else:
        try:
            values = [float(x) for x in value]
        except (TypeError, ValueError):
            raise ValueError(
                f"options {name} must be a 1-D tensor of times, got {value!r}"
            ) from None
    lo, hi = min(t0, t1), max(t0, t1)
    return [float(x) for x in values if lo < x < hi]


def pi_controller(options: dict, rtol: float, atol: float, max_steps: int) -> PIController:
    return PIController(
        rtol=rtol,
        atol=atol,
        dt0=_positive("first_step", options.get("first_step")),
        dtmax=_positive("max_step", options.get("max_step")),
        safety=options.get("safety", 0.9),
        factormax=options.get("ifactor", 10.0),
        factormin=options.get("dfactor", 0.2),
        max_steps=max_steps,
    )


def _positive(name: str, value: Any) -> float | None:
    if value is None:
        return None
    return check_number(f"options {name}", number(value), low=0, strict_low=True)


def number(value: Any) -> Any:
    """A one-element tensor as a number (torchdiffeq takes tensors for numbers)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    return value


def _grid(constructor: Any, func: Callable, y0: torch.Tensor, ts: list[float]) -> list[float]:
    if not callable(constructor):
        raise ValueError(f"options grid_constructor must be callable, got {constructor!r}")
    grid = constructor(func, y0, torch.tensor(ts, dtype=torch.float64))
    grid = [float(x) for x in torch.as_tensor(grid).reshape(-1).tolist()]
    if len(grid) < 2 or grid[0] != ts[0] or grid[-1] != ts[-1]:
        raise ValueError(
            f"options grid_constructor must return a grid from t[0] = {ts[0]!r} to t[-1] = "
            f"{ts[-1]!r}, got {grid[:3]}...{grid[-3:]}"
        )
    return grid


def fixed_controller(
    options: dict, ts: list[float], max_steps: int, grid: list[float] | None
) -> tuple[ConstantStepSize, bool, list[float]]:
    """`(controller, land on the output times, the grid)`: steps of `step_size`, or from one
    grid point (`grid_constructor`) or output time (neither) to the next."""
    t0, t1 = ts[0], ts[-1]
    span = max(abs(t1 - t0), 1e-300)
    if "step_size" in options:
        dt = _positive("step_size", options["step_size"])
        n = math.ceil(abs(t1 - t0) / dt)
        direction = 1.0 if t1 >= t0 else -1.0
        grid = [t0 + direction * k * dt for k in range(n)] + [t1]
        return ConstantStepSize(dt, max_steps=max_steps), False, grid
    if grid is not None:
        return ConstantStepSize(span, max_steps=max_steps), False, grid
    return ConstantStepSize(span, max_steps=max_steps), True, list(ts)


def _norm(user: Any, tolerances: Tolerances, state: State) -> Callable | None:
    """The error norm on the (flat) state: torchdiffeq's (RMS; for a tuple the largest RMS
    over the components) or the user's, after the per-element weight of the tolerances."""
    if user is not None and not callable(user):
        raise ValueError(f"options norm must be a function of the state, got {user!r}")
    n = state.y0.numel()
    if user is None and state.shapes is None:
        base = rms_norm(n)
    elif user is None:
        ends = [sum(state.sizes[: i + 1]) for i in range(len(state.sizes))]
        base = mixed_rms_norm([(a, b) for a, b in zip([0, *ends], ends, strict=False) if b > a])
    elif state.shapes is None:
        base = user
    else:

        def base(e: torch.Tensor) -> Any:
            return user(state.split(e))

    weight = tolerances.weight
    if weight is None:
        return None if user is None and state.shapes is None else base
    return lambda e: base(e * weight)
