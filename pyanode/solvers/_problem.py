"""What one solve is: the validated request, the result and its statistics, and the interface
of the gradient methods that run it."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
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
    """A validated call of `solve`, handed to the gradient method (times as floats, `save_ts`
    and `jump_ts` ordered from `t0` to `t1`)."""

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


class AbstractGradientMethod(abc.ABC):
    """How `solve` is differentiated; a final subclass is a frozen dataclass of its options."""

    @abc.abstractmethod
    def run(self, request: SolveRequest) -> torch.Tensor:
        """Solve `request` and return `ys` (stacked saves, or the final state); fill its stats."""
