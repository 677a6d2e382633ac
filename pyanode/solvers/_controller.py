"""`AbstractStepSizeController`: chooses the steps of a solve and runs the step loop."""

from __future__ import annotations

import abc

import torch

from pyanode.solvers._problem import Problem
from pyanode.solvers._solver import AbstractSolver


class AbstractStepSizeController(abc.ABC):
    """Chooses the steps of a solve and runs the step loop.

    A final subclass is a frozen dataclass of its settings (among them `max_steps`) that
    implements `check_solver` and `integrate`.
    """

    max_steps: int

    @abc.abstractmethod
    def check_solver(self, solver: AbstractSolver) -> None:
        """Raise `ValueError` if `solver` cannot be used with this controller."""

    @abc.abstractmethod
    def integrate(self, problem: Problem, y0: torch.Tensor) -> torch.Tensor:
        """Integrate `problem` from `y0` and return the state at `problem.t1`.

        Writes the work done into `problem.counts`; calls `problem.on_save` at the save stops.

        **Raises:**

        `SolverError`: when the step budget is spent, the step size underflows or the state
        becomes non-finite.
        """


def check_positive_int(owner: str, name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner} {name} must be an int >= 1, got {value!r}")


def check_number(owner: str, name: str, value: object, *, low: float, strict: bool) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = value == value and value != float("inf") and (value > low if strict else value >= low)
    if not ok:
        bound = f"> {low:g}" if strict else f">= {low:g}"
        raise ValueError(f"{owner} {name} must be a finite number {bound}, got {value!r}")
    return value
