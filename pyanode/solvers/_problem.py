"""What a step-size controller's loop needs to know about one solve, prepared once by `solve`."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch

from pyanode.solvers._solution import SolverStats
from pyanode.solvers._solver import AbstractSolver, VectorField
from pyanode.solvers._stepper import AbstractStepper, BufferStepper, GraphStepper, PlainKernel


@dataclass(frozen=True)
class Stop:
    """A time the steps must land on exactly.

    Arguments:
        t: the time.
        save: index into `saveat` when the state is wanted here, else -1.
        jump: whether the vector field jumps here (FSAL is not reused across it).
        t_below: for a jump, the largest time below `t` in the state's dtype: where `f` is
            evaluated for the stages that belong to the piece before the jump.
    """

    t: float
    save: int
    jump: bool
    t_below: float


@dataclass
class Counts:
    """Work done by one controller loop."""

    nfe: int = 0
    n_accepted: int = 0
    n_rejected: int = 0
    nfe_graph: int = 0  # evaluations of the accepted steps that the final state depends on


def rms_norm(n: int) -> Callable[[torch.Tensor], float]:
    """The root-mean-square norm of a tensor of `n` elements, as a Python float (one host sync)."""
    inv_sqrt_n = 1.0 / math.sqrt(max(n, 1))

    def norm(e: torch.Tensor) -> float:
        return torch.linalg.vector_norm(e).item() * inv_sqrt_n

    return norm


def mixed_rms_norm(segments: list[tuple[int, int]]) -> Callable[[torch.Tensor], float]:
    """The largest RMS norm over the slices `e[a:b]` of a flat tensor, as a Python float.

    Slices outside `segments` are ignored: with only the state and adjoint slices listed this is
    the seminorm of Kidger et al. (2021), "Hey, that's not an ODE".
    """
    scales = [1.0 / math.sqrt(max(b - a, 1)) for a, b in segments]
    size = segments[0][1] - segments[0][0] if segments else 0
    if size > 0 and all(a == i * size and b == a + size for i, (a, b) in enumerate(segments)):
        # consecutive blocks of one size: one norm over the rows of a (blocks, size) view
        blocks, end, scale = len(segments), len(segments) * size, scales[0]

        def block_norm(e: torch.Tensor) -> float:
            rows = e[:end].reshape(blocks, size)
            return torch.linalg.vector_norm(rows, dim=1).max().item() * scale

        return block_norm

    def norm(e: torch.Tensor) -> float:
        pairs = zip(segments, scales, strict=True)
        parts = [torch.linalg.vector_norm(e[a:b]) * s for (a, b), s in pairs]
        return torch.stack(parts).max().item()

    return norm


@dataclass(eq=False)
class Problem:
    """One integration from `t0` to `t1` (either direction), as the controller loops see it.

    Arguments:
        stepper: evaluates the vector field and takes the Runge–Kutta steps.
        solver: the Runge–Kutta method (its order and number of stages).
        t0, t1: start and end time.
        stops: times after `t0` to land on, ordered from `t0` to `t1`, the last one `t1`.
        norm: the error norm of a scaled error tensor, returning a float; absolutely
            homogeneous (`norm(c e) = |c| norm(e)`).
        on_save: called at each stop with `save >= 0` as `on_save(save, t, y)`; returns the state
            to continue from (a new tensor means the first stage is re-evaluated).
        t0_below: when the solve runs backwards and starts on a jump, the time just below `t0`
            where `f` is first evaluated (see `Stop.t_below`); else `t0`.
    """

    stepper: AbstractStepper
    solver: AbstractSolver
    t0: float
    t1: float
    stops: list[Stop]
    norm: Callable[[torch.Tensor], float]
    on_save: Callable[[int, float, torch.Tensor], torch.Tensor] | None
    t0_below: float
    counts: Counts = field(default_factory=Counts)

    @property
    def direction(self) -> float:
        return 1.0 if self.t1 >= self.t0 else -1.0


def time_factory(dtype: torch.dtype, device: torch.device) -> Callable[[float], torch.Tensor]:
    """Makes the 0-d time tensors handed to `f`, in the state's dtype and device."""
    return partial(torch.scalar_tensor, dtype=dtype, device=device)


def float_below(t: float, dtype: torch.dtype) -> float:
    """The largest number of `dtype` that is smaller than `t` rounded to `dtype`."""
    x = torch.tensor(t, dtype=dtype)
    return float(torch.nextafter(x, torch.tensor(-math.inf, dtype=dtype)))


def make_stops(
    t0: float,
    t1: float,
    save_ts: list[float],
    jump_ts: list[float],
    dtype: torch.dtype,
) -> list[Stop]:
    """The ordered stops after `t0` up to and including `t1`.

    Save times equal to `t0` are not stops (the caller saves `y0`); jumps at `t0` are dropped.
    """
    direction = 1.0 if t1 >= t0 else -1.0
    saves = {t: i for i, t in enumerate(save_ts)}
    jumps = set(jump_ts)
    times = sorted({t1, *saves, *jumps}, key=lambda t: direction * t)
    return [
        Stop(t, saves.get(t, -1), t in jumps, float_below(t, dtype) if t in jumps else t)
        for t in times
        if (t - t0) * direction > 0
    ]


def default_stepper(
    f: VectorField, y0: torch.Tensor, args: Any, solver: AbstractSolver
) -> AbstractStepper:
    """The stepper of a plain vector field: a graph for autograd when grad is enabled."""
    make_t = time_factory(y0.dtype, y0.device)
    if torch.is_grad_enabled():
        return GraphStepper(f, args, solver, make_t)
    return BufferStepper(PlainKernel(f, args, make_t), solver, y0)


def integrate_forward(
    stepper: AbstractStepper,
    y0: torch.Tensor,
    solver: AbstractSolver,
    controller: Any,
    t0: float,
    t1: float,
    save_ts: list[float],
    jump_ts: list[float],
    on_save: Callable[[int, float, torch.Tensor], None] | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor], Counts]:
    """Integrate `dy/dt = f(t, y, args)` from `(t0, y0)` to `t1` with `stepper`.

    Returns `(y1, saved, counts)` with `saved[i]` the state at `save_ts[i]`; `on_save(i, t, y)`
    is called at every save stop after `t0`.
    """
    dtype = y0.dtype
    saved: list[torch.Tensor] = [y0] * len(save_ts)  # entries at t0 keep y0

    def save(i: int, t: float, y: torch.Tensor) -> torch.Tensor:
        saved[i] = stepper.keep(y)
        if on_save is not None:
            on_save(i, t, y)
        return y

    backward_from_jump = t1 < t0 and t0 in jump_ts
    problem = Problem(
        stepper=stepper,
        solver=solver,
        t0=t0,
        t1=t1,
        stops=make_stops(t0, t1, save_ts, jump_ts, dtype),
        norm=rms_norm(y0.numel()),
        on_save=save if save_ts else None,
        t0_below=float_below(t0, dtype) if backward_from_jump else t0,
    )
    y1 = stepper.finish(controller.integrate(problem, y0))
    return y1, saved, problem.counts


@dataclass(eq=False)
class SolveRequest:
    """A validated call of `solve`, handed to the gradient method."""

    f: VectorField
    y0: torch.Tensor
    args: Any
    solver: AbstractSolver
    controller: Any
    t0: float
    t1: float
    save_ts: list[float]
    jump_ts: list[float]
    stats: SolverStats
