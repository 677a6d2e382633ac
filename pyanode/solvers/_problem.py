"""What one solve is: the validated request, the result and its statistics, and the interface
of the gradient methods that run it."""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from pyanode.solvers._tableau import AbstractSolver

VectorField = Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor]


@dataclass
class SolverStats:
    """Work done by one solve; mutable because the backward pass fills in `nfe_backward`.

    Arguments:
        nfe_forward: vector-field evaluations of the forward solve, including the one of the
            initial step selection and those of rejected steps.
        nfe_backward: vector-field evaluations of the backward pass, counted when it runs
            (after `loss.backward()`; it adds up if backward runs twice). `Adjoint`: evaluations
            of the augmented field, each one `f` and one vector-Jacobian product. `Backprop`:
            the vector-Jacobian products through `f`, one per stage evaluation of the accepted
            steps that the final state depends on (rejected steps and the step-size selection
            are not differentiated).
        n_accepted: accepted steps of the forward solve.
        n_rejected: rejected steps of the forward solve.
    """

    nfe_forward: int = 0
    nfe_backward: int = 0
    n_accepted: int = 0
    n_rejected: int = 0


@dataclass(frozen=True)
class Solution:
    """The result of `solve`.

    Arguments:
        ys: the states at `saveat`, shape `(len(saveat), *y0.shape)`, or `y(t1)` (the shape of
            `y0`) when `saveat` is None.
        ts: the times of `ys`: `saveat`, or the 0-d tensor `t1`.
        stats: `SolverStats` of this solve.
    """

    ys: torch.Tensor
    ts: torch.Tensor
    stats: SolverStats


@dataclass(eq=False)
class SolveRequest:
    """A validated call of `solve`, handed to the gradient method (times as floats, `save_ts`,
    `jump_ts` and `step_ts` ordered from `t0` to `t1`).

    `tolerances` are the error ratio's `(rtol, atol)` (the controller's, or per element: `atol`
    a tensor shaped like the state), `norm` the error norm (None: RMS), `land_saveat` whether
    the steps land on the save times (else they are interpolated), and `times` the tensors
    `(t0, t1, saveat)` that require grad (None for the others, or None for none).
    """

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
    step_ts: list[float] = field(default_factory=list)
    land_saveat: bool = False
    tolerances: tuple[Any, Any] | None = None
    norm: Callable[[torch.Tensor], float] | None = None
    times: tuple[torch.Tensor | None, ...] | None = None

    def stepper(self, kernel: Any, like: torch.Tensor, **options: Any) -> Any:
        """The forward stepper of this solve for `kernel` on states `like` (in its layout):
        per-element tolerances and a user norm are moved to that layout."""
        tolerances, norm = self.tolerances, self.norm
        if tolerances is not None and isinstance(tolerances[1], torch.Tensor):
            tolerances = (tolerances[0], kernel.to_state(tolerances[1].expand_as(self.y0)))
        if norm is not None:
            user, from_state = norm, kernel.from_state

            def norm(e: torch.Tensor) -> float:
                return float(user(from_state(e)))

        return kernel.stepper(self.solver, like, tolerances=tolerances, norm=norm, **options)

    def time_gradients(
        self, kernel: Any, xs: torch.Tensor, grads: torch.Tensor, grad_x0: torch.Tensor
    ) -> list[torch.Tensor | None]:
        """The gradients for the tensors of `times`, those of the exact solution:
        `dL/dsaveat_i = g_i . f(saveat_i, y_i)`, `dL/dt1 = g . f(t1, y(t1))` and `dL/dt0 =
        -dL/dy0 . f(t0, y0)` (moving `t0` shifts the whole solution), from the forward's result
        `xs`, its gradient `grads` and `grad_x0` = dL/dy0, all in the kernel's layout. Each
        costs evaluations of `f`, counted in `stats.nfe_backward`.
        """
        if self.times is None:
            return [None, None, None]
        t0, t1, saveat = self.times

        def f_dot(t: float, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
            if t in self.jump_ts:  # on a jump: the piece the solve arrives from
                t = math.nextafter(t, self.t0)
            self.stats.nfe_backward += 1
            return (kernel.evaluate(t, x, None, False)[0] * g).sum()

        out: list[torch.Tensor | None] = [None, None, None]
        x0 = kernel.to_state(self.y0)
        if t0 is not None:
            t = math.nextafter(self.t0, self.t1) if self.t0 in self.jump_ts else self.t0
            self.stats.nfe_backward += 1
            out[0] = -(kernel.evaluate(t, x0, None, False)[0] * grad_x0).sum().view_as(t0)
        if t1 is not None:
            out[1] = f_dot(self.t1, xs, grads).view_as(t1)
        if saveat is not None:
            parts = [f_dot(s, x, g) for s, x, g in zip(self.save_ts, xs, grads, strict=True)]
            out[2] = torch.stack(parts).to(saveat.dtype)
        return [None if g is None else g.to(x) for g, x in zip(out, self.times, strict=True)]


class AbstractGradientMethod(abc.ABC):
    """How `solve` is differentiated; a final subclass is a frozen dataclass of its options."""

    @abc.abstractmethod
    def run(self, request: SolveRequest) -> torch.Tensor:
        """Solve `request` and return `ys` (stacked saves, or the final state); fill its stats."""
