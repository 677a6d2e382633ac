"""The Dormand–Prince 5(4) method."""

from __future__ import annotations

from pyanode.solvers._tableau import AbstractSolver, ButcherTableau

_B = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
# b_hat = (5179/57600, 0, 7571/16695, 393/640, -92097/339200, 187/2100, 1/40).
_DOPRI5 = ButcherTableau(
    c=(0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0),
    a=(
        (),
        (1 / 5,),
        (3 / 40, 9 / 40),
        (44 / 45, -56 / 15, 32 / 9),
        (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
        (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
        _B[:6],
    ),
    b=_B,
    b_err=(
        71 / 57600,
        0.0,
        -71 / 16695,
        71 / 1920,
        -17253 / 339200,
        22 / 525,
        -1 / 40,
    ),
    order=5,
    fsal=True,
)


class Dopri5(AbstractSolver):
    """Dormand–Prince 5(4): 7 stages (6 new per step, FSAL), order 5, embedded order 4.

    The default solver of torchdiffeq ("dopri5") and MATLAB's ode45; registry name "dp5".

    Reference: J. R. Dormand and P. J. Prince, "A family of embedded Runge–Kutta formulae",
    J. Comput. Appl. Math. 6(1), 1980.
    """

    tableau = _DOPRI5
