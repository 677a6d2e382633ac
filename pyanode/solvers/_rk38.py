"""Kutta's 3/8 rule, the fourth-order method torchdiffeq calls "rk4"."""

from __future__ import annotations

from pyanode.solvers._tableau import AbstractSolver, ButcherTableau

_RK38 = ButcherTableau(
    c=(0.0, 1 / 3, 2 / 3, 1.0),
    a=((), (1 / 3,), (-1 / 3, 1.0), (1.0, -1.0, 1.0)),
    b=(1 / 8, 3 / 8, 3 / 8, 1 / 8),
    b_err=None,
    order=4,
    # the unique b(theta) of the stages that satisfies the order-3 conditions (free extension)
    b_dense=((1.0, -15 / 8, 1.0), (0.0, 15 / 8, -3 / 2), (0.0, 3 / 8, 0.0), (0.0, -3 / 8, 1 / 2)),
    dense_order=3,
)


class RK38(AbstractSolver):
    """Kutta's 3/8 rule: 4 stages, order 4, no error estimate, a free continuous extension of
    order 3. Usually a little more accurate per step than classical `RK4`, for the same cost.

    torchdiffeq's `rk4` is this method (its `rk4_alt_step_func`), so `pyanode.odeint(...,
    method="rk4")` uses it and reproduces torchdiffeq's numbers; everywhere else in pyanode
    `rk4` is the classical method. Use it with `ConstantStepSize`.

    Reference: W. Kutta, "Beitrag zur näherungsweisen Integration totaler
    Differentialgleichungen", Z. Math. Phys. 46, 1901.
    """

    tableau = _RK38
