"""The Bogacki–Shampine 3(2) method."""

from __future__ import annotations

from pyanode.solvers._tableau import AbstractSolver, ButcherTableau, hermite_dense

_B = (2 / 9, 1 / 3, 4 / 9, 0.0)
# b_hat = (7/24, 1/4, 1/3, 1/8), the embedded second-order weights.
_BOSH3 = ButcherTableau(
    c=(0.0, 1 / 2, 3 / 4, 1.0),
    a=((), (1 / 2,), (0.0, 3 / 4), _B[:3]),
    b=_B,
    b_err=(2 / 9 - 7 / 24, 1 / 3 - 1 / 4, 4 / 9 - 1 / 3, -1 / 8),
    order=3,
    b_dense=hermite_dense(_B),
    dense_order=3,
    fsal=True,
)


class Bosh3(AbstractSolver):
    """Bogacki–Shampine 3(2): 4 stages (3 new per step, FSAL), order 3, embedded order 2; the
    cubic Hermite interpolant between step ends (order 3, free thanks to FSAL).

    Reference: P. Bogacki and L. F. Shampine, "A 3(2) pair of Runge–Kutta formulas",
    Appl. Math. Lett. 2(4), 1989.
    """

    tableau = _BOSH3
