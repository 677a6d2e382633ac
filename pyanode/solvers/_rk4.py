"""The classical fourth-order Runge–Kutta method."""

from __future__ import annotations

from pyanode.solvers._tableau import AbstractSolver, ButcherTableau

_RK4 = ButcherTableau(
    c=(0.0, 0.5, 0.5, 1.0),
    a=((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)),
    b=(1 / 6, 1 / 3, 1 / 3, 1 / 6),
    b_err=None,
    order=4,
    # The free continuous extension of order 3 (Hairer, Nørsett & Wanner, "Solving ODEs I",
    # II.6): the unique b(theta) of the stages that satisfies the order-3 conditions.
    b_dense=((1.0, -3 / 2, 2 / 3), (0.0, 1.0, -2 / 3), (0.0, 1.0, -2 / 3), (0.0, -1 / 2, 2 / 3)),
    dense_order=3,
)


class RK4(AbstractSolver):
    """Classical Runge–Kutta ("the" RK4): 4 stages, order 4, no error estimate, a free
    continuous extension of order 3.

    Use it with `ConstantStepSize`. torchdiffeq's "rk4" is Kutta's 3/8 rule instead (`RK38`).
    """

    tableau = _RK4
