"""Test ODEs of the studies: a linear system with a closed form, Lotka–Volterra, Van der Pol."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from pyanode.experiments.studies._problem import StudyProblem, check_batch


# -- vector fields -------------------------------------------------------------------------------
class LinearField(nn.Module):
    """`dy/dt = A y` for every row y of the batch; `A` is a parameter."""

    def __init__(self, a: torch.Tensor):
        super().__init__()
        self.a = nn.Parameter(a.clone())

    def forward(self, t: torch.Tensor, y: torch.Tensor, args: Any = None) -> torch.Tensor:
        return y @ self.a.T


class LotkaVolterraField(nn.Module):
    """Predator and prey: `x' = alpha x - beta x y`, `y' = delta x y - gamma y`.

    The parameter `theta = (alpha, beta, delta, gamma)`.
    """

    def __init__(self, alpha: float, beta: float, delta: float, gamma: float):
        super().__init__()
        self.theta = nn.Parameter(torch.tensor([alpha, beta, delta, gamma]))

    def forward(self, t: torch.Tensor, y: torch.Tensor, args: Any = None) -> torch.Tensor:
        alpha, beta, delta, gamma = self.theta
        prey, predator = y[:, 0], y[:, 1]
        meet = prey * predator
        return torch.stack([alpha * prey - beta * meet, delta * meet - gamma * predator], dim=1)


class VanDerPolField(nn.Module):
    """The Van der Pol oscillator `x' = v`, `v' = mu (1 - x^2) v - x`; `mu` is a parameter."""

    def __init__(self, mu: float):
        super().__init__()
        self.mu = nn.Parameter(torch.tensor(mu))

    def forward(self, t: torch.Tensor, y: torch.Tensor, args: Any = None) -> torch.Tensor:
        x, v = y[:, 0], y[:, 1]
        return torch.stack([v, self.mu * (1 - x * x) * v - x], dim=1)


# -- the test ODEs -------------------------------------------------------------------------------
def _linear_exact(problem: StudyProblem) -> torch.Tensor:
    a = problem.field.a
    return problem.y0() @ torch.linalg.matrix_exp(a * problem.t1).T


def linear(*, batch: int = 8, t1: float = 2.0, damping: float = 0.1, omega: float = 2.0):
    """`dy/dt = A y`, `A = [[-damping, -omega], [omega, -damping]]`: a damped rotation with the
    closed form `y(t) = expm(A t) y(0)`, started from `batch` points on the unit circle.

    Raises:
        SpecError: if `batch` is not an int >= 1.
    """
    check_batch(batch)
    a = torch.tensor([[-damping, -omega], [omega, -damping]], dtype=torch.float64)
    angles = 2 * math.pi * torch.arange(batch, dtype=torch.float64) / batch
    y0 = torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    return StudyProblem(
        "linear",
        LinearField(a),
        y0,
        t1=t1,
        exact=_linear_exact,
        description=f"y' = A y, A = [[-{damping:g}, -{omega:g}], [{omega:g}, -{damping:g}]], "
        f"{batch} points on the unit circle, t1 = {t1:g} (closed form expm)",
    )


def lotka_volterra(
    *,
    batch: int = 8,
    t1: float = 5.0,
    alpha: float = 1.5,
    beta: float = 1.0,
    delta: float = 1.0,
    gamma: float = 3.0,
):
    """The Lotka–Volterra predator–prey system (scipy's `solve_ivp` example parameters), started
    from prey 1, 1.25, ... and predators 1; periodic orbits, no closed form.

    Raises:
        SpecError: if `batch` is not an int >= 1.
    """
    check_batch(batch)
    prey = 1.0 + 0.25 * torch.arange(batch, dtype=torch.float64)
    y0 = torch.stack([prey, torch.ones(batch, dtype=torch.float64)], dim=1)
    return StudyProblem(
        "lotka-volterra",
        LotkaVolterraField(alpha, beta, delta, gamma).double(),
        y0,
        t1=t1,
        description=f"Lotka-Volterra, (alpha, beta, delta, gamma) = ({alpha:g}, {beta:g}, "
        f"{delta:g}, {gamma:g}), {batch} initial states, t1 = {t1:g}",
    )


def van_der_pol(*, batch: int = 8, t1: float = 5.0, mu: float = 1.0):
    """The Van der Pol oscillator with damping `mu` (non-stiff for mu ~ 1), started from
    `batch` points on the circle of radius 2 (near the limit cycle).

    Raises:
        SpecError: if `batch` is not an int >= 1.
    """
    check_batch(batch)
    angles = 2 * math.pi * torch.arange(batch, dtype=torch.float64) / batch
    y0 = 2.0 * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    return StudyProblem(
        "van-der-pol",
        VanDerPolField(mu).double(),
        y0,
        t1=t1,
        description=f"Van der Pol, mu = {mu:g}, {batch} points on the circle of radius 2, "
        f"t1 = {t1:g}",
    )
