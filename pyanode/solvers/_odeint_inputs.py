"""torchdiffeq's inputs as pyanode's: a tuple state packed into one tensor, tolerances per
element, and `options` turned into a controller, stops and an error norm (for `odeint`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from pyanode._validate import check_int, check_keys, check_number
from pyanode.solvers._controller import ConstantStepSize, PIController
from pyanode.solvers._field import as_field
from pyanode.solvers._step import mixed_rms_norm, rms_norm

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
