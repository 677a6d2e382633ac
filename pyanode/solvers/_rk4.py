"""The classical fourth-order Runge–Kutta method."""

from __future__ import annotations

from pyanode.solvers._tableau import AbstractSolver, ButcherTableau

_RK4 = ButcherTableau(
    c=(0.0, 0.5, 0.5, 1.0),
    a=((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)),
    b=(1 / 6, 1 / 3, 1 / 3, 1 / 6),
    b_err=None,
    order=4,
)


class RK4(AbstractSolver):
    """Classical Runge–Kutta ("the" RK4): 4 stages, order 4, no error estimate.

    Use it with `ConstantStepSize`.
    """

    tableau = _RK4
