"""The explicit midpoint method."""

from __future__ import annotations

from pyanode.solvers._tableau import AbstractSolver, ButcherTableau

# dense output: b_1(theta) = theta - theta^2, b_2(theta) = theta^2, the free extension of order 2
_MIDPOINT = ButcherTableau(
    c=(0.0, 0.5),
    a=((), (0.5,)),
    b=(0.0, 1.0),
    b_err=None,
    order=2,
    b_dense=((1.0, -1.0), (0.0, 1.0)),
    dense_order=2,
)


class Midpoint(AbstractSolver):
    """Explicit midpoint rule: 2 stages, order 2, no error estimate (use `ConstantStepSize`),
    a free continuous extension of order 2."""

    tableau = _MIDPOINT
