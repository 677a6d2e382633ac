"""The explicit Runge–Kutta methods: each a Butcher tableau (with its continuous extension) and
the solver class that names it. Euler, the midpoint method, RK4 and Kutta's 3/8 rule have no
error estimate (use them with `ConstantStepSize`); Bogacki–Shampine 3(2), Dormand–Prince 5(4)
and Tsitouras 5(4) are adaptive. The tableaux are checked against their order conditions in
tests/test_solvers_tableaux.py."""

from __future__ import annotations

from pyanode.solvers._tableau import AbstractSolver, ButcherTableau, hermite_dense

_EULER = ButcherTableau(
    c=(0.0,), a=((),), b=(1.0,), b_err=None, order=1, b_dense=((1.0,),), dense_order=1
)


class Euler(AbstractSolver):
    """Explicit Euler: 1 stage, order 1, no error estimate (use `ConstantStepSize`); between
    step ends the straight line (order 1)."""

    tableau = _EULER


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


_BOSH3_B = (2 / 9, 1 / 3, 4 / 9, 0.0)
# b_hat = (7/24, 1/4, 1/3, 1/8), the embedded second-order weights.
_BOSH3 = ButcherTableau(
    c=(0.0, 1 / 2, 3 / 4, 1.0),
    a=((), (1 / 2,), (0.0, 3 / 4), _BOSH3_B[:3]),
    b=_BOSH3_B,
    b_err=(2 / 9 - 7 / 24, 1 / 3 - 1 / 4, 4 / 9 - 1 / 3, -1 / 8),
    order=3,
    b_dense=hermite_dense(_BOSH3_B),
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


_DOPRI5_B = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
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
        _DOPRI5_B[:6],
    ),
    b=_DOPRI5_B,
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
    # Shampine's continuous extension of order 4 ("Some practical Runge-Kutta formulas",
    # Math. Comp. 46(173), 1986), the dense output of Hairer's DOPRI5 and scipy's RK45.
    b_dense=(
        (1.0, -8048581381 / 2820520608, 8663915743 / 2820520608, -12715105075 / 11282082432),
        (0.0, 0.0, 0.0, 0.0),
        (0.0, 131558114200 / 32700410799, -68118460800 / 10900136933, 87487479700 / 32700410799),
        (0.0, -1754552775 / 470086768, 14199869525 / 1410260304, -10690763975 / 1880347072),
        (
            0.0,
            127303824393 / 49829197408,
            -318862633887 / 49829197408,
            701980252875 / 199316789632,
        ),
        (0.0, -282668133 / 205662961, 2019193451 / 616988883, -1453857185 / 822651844),
        (0.0, 40617522 / 29380423, -110615467 / 29380423, 69997945 / 29380423),
    ),
    dense_order=4,
    fsal=True,
)


class Dopri5(AbstractSolver):
    """Dormand–Prince 5(4): 7 stages (6 new per step, FSAL), order 5, embedded order 4, with
    Shampine's free continuous extension of order 4.

    The default solver of torchdiffeq ("dopri5") and MATLAB's ode45; registry name "dp5".

    Reference: J. R. Dormand and P. J. Prince, "A family of embedded Runge–Kutta formulae",
    J. Comput. Appl. Math. 6(1), 1980.
    """

    tableau = _DOPRI5


# Coefficients as published (17 significant digits), as in OrdinaryDiffEq.jl's Tsit5; the order
# conditions are checked numerically in tests/test_solvers_tableaux.py.
_TSIT5_B = (
    0.09646076681806523,
    0.01,
    0.4798896504144996,
    1.379008574103742,
    -3.290069515436081,
    2.324710524099774,
    0.0,
)
_TSIT5 = ButcherTableau(
    c=(0.0, 0.161, 0.327, 0.9, 0.9800255409045097, 1.0, 1.0),
    a=(
        (),
        (0.161,),
        (-0.008480655492356989, 0.335480655492357),
        (2.8971530571054935, -6.359448489975075, 4.3622954328695815),
        (5.325864828439257, -11.748883564062828, 7.4955393428898365, -0.09249506636175525),
        (
            5.86145544294642,
            -12.92096931784711,
            8.159367898576159,
            -0.071584973281401,
            -0.028269050394068383,
        ),
        _TSIT5_B[:6],
    ),
    b=_TSIT5_B,
    b_err=(
        -0.00178001105222577714,
        -0.0008164344596567469,
        0.007880878010261995,
        -0.1447110071732629,
        0.5823571654525552,
        -0.45808210592918697,
        1 / 66,
    ),
    order=5,
    # The continuous extension of order 4 from the same paper, as published expanded in
    # OrdinaryDiffEq.jl (Tsit5Interp): b_i(theta) = r_i1 theta + ... + r_i4 theta^4.
    b_dense=(
        (1.0, -2.763706197274826, 2.9132554618219126, -1.0530884977290216),
        (0.0, 0.13169999999999998, -0.2234, 0.1017),
        (0.0, 3.9302962368947516, -5.941033872131505, 2.490627285651253),
        (0.0, -12.411077166933676, 30.33818863028232, -16.548102889244902),
        (0.0, 37.50931341651104, -88.1789048947664, 47.37952196281928),
        (0.0, -27.896526289197286, 65.09189467479366, -34.87065786149661),
        (0.0, 1.5, -4.0, 2.5),
    ),
    dense_order=4,
    fsal=True,
)


class Tsit5(AbstractSolver):
    """Tsitouras 5(4): 7 stages (6 new per step, FSAL), order 5, embedded order 4, with a free
    continuous extension of order 4.

    Usually a little more accurate per step than Dopri5; the default of DifferentialEquations.jl.

    Reference: Ch. Tsitouras, "Runge–Kutta pairs of order 5(4) satisfying only the first column
    simplifying assumption", Comput. Math. Appl. 62(2), 2011.
    """

    tableau = _TSIT5
