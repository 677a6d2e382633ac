"""Butcher tableaux: validation, order conditions, the solver registry."""

from __future__ import annotations

from fractions import Fraction
from functools import cache

import numpy as np
import pytest
from problems import ALL_SOLVERS

from pyanode import _names as names
from pyanode.solvers import (
    RK4,
    RK38,
    SOLVERS,
    AbstractSolver,
    Bosh3,
    ButcherTableau,
    Dopri5,
    Euler,
    Midpoint,
    Tsit5,
    solver_from_name,
)

EXPECTED = {  # class: (order, stages, fsal, adaptive)
    Euler: (1, 1, False, False),
    Midpoint: (2, 2, False, False),
    RK4: (4, 4, False, False),
    Bosh3: (3, 4, True, True),
    Dopri5: (5, 7, True, True),
    Tsit5: (5, 7, True, True),
}


@cache
def rooted_trees(order: int) -> tuple:
    """All rooted trees with `order` nodes, each a sorted tuple of its subtrees."""
    if order == 1:
        return ((),)
    out = set()

    def forests(total: int, max_first: tuple | None):
        # Multisets of trees with `total` nodes, as non-increasing sequences (canonical order).
        if total == 0:
            yield ()
            return
        for k in range(1, total + 1):
            for t in rooted_trees(k):
                key = (k, t)
                if max_first is not None and key > max_first:
                    continue
                for rest in forests(total - k, key):
                    yield ((k, t), *rest)

    for forest in forests(order - 1, None):
        out.add(tuple(sorted(t for _, t in forest)))
    return tuple(sorted(out))


def _tree_order(tree: tuple) -> int:
    return 1 + sum(_tree_order(t) for t in tree)


def _gamma(tree: tuple) -> int:
    g = _tree_order(tree)
    for t in tree:
        g *= _gamma(t)
    return g


def _stage_weights(tree: tuple, a: np.ndarray) -> np.ndarray:
    g = np.ones(a.shape[0])
    for t in tree:
        g = g * (a @ _stage_weights(t, a))
    return g


def order_condition_residuals(weights, a: np.ndarray, order: int) -> list[float]:
    """`b . Phi(t) - 1/gamma(t)` for every rooted tree up to `order` nodes."""
    return [
        float(np.dot(weights, _stage_weights(tree, a)) - 1.0 / _gamma(tree))
        for k in range(1, order + 1)
        for tree in rooted_trees(k)
    ]


def _a_matrix(tableau: ButcherTableau) -> np.ndarray:
    s = tableau.stages
    a = np.zeros((s, s))
    for i, row in enumerate(tableau.a):
        a[i, :i] = row
    return a


def test_tree_counts():
    # 1, 1, 2, 4, 9, 20 rooted trees with 1..6 nodes (OEIS A000081).
    assert [len(rooted_trees(k)) for k in range(1, 7)] == [1, 1, 2, 4, 9, 20]


@pytest.mark.parametrize("solver", ALL_SOLVERS, ids=lambda s: type(s).__name__)
def test_order_conditions(solver: AbstractSolver):
    tableau = solver.tableau
    a = _a_matrix(tableau)
    b = np.array(tableau.b)
    residuals = order_condition_residuals(b, a, solver.order)
    # 1e-13: the published 17-digit decimals of Tsit5 leave ~1e-14 of round-off.
    assert max(abs(r) for r in residuals) < 1e-13
    # ... and not one order more: the stated order is the order.
    above = order_condition_residuals(b, a, solver.order + 1)[len(residuals) :]
    assert max(abs(r) for r in above) > 1e-6
    if tableau.b_err is not None:
        b_hat = b - np.array(tableau.b_err)
        embedded = order_condition_residuals(b_hat, a, solver.order - 1)
        assert max(abs(r) for r in embedded) < 1e-13
        # The error estimate is O(dt^order): b_hat fails some order condition of `order`.
        above = order_condition_residuals(b_hat, a, solver.order)[len(embedded) :]
        assert max(abs(r) for r in above) > 1e-6


@pytest.mark.parametrize("solver", ALL_SOLVERS, ids=lambda s: type(s).__name__)
def test_solver_properties(solver: AbstractSolver):
    order, stages, fsal, adaptive = EXPECTED[type(solver)]
    assert (solver.order, solver.tableau.stages, solver.fsal, solver.adaptive) == (
        order,
        stages,
        fsal,
        adaptive,
    )
    assert solver == type(solver)()
    assert repr(solver) == f"{type(solver).__name__}()"


def test_dopri5_exact_rationals():
    # The float tableau matches the published rationals (b_hat from Dormand & Prince 1980).
    t = Dopri5.tableau
    b_hat = [
        Fraction(5179, 57600),
        0,
        Fraction(7571, 16695),
        Fraction(393, 640),
        Fraction(-92097, 339200),
        Fraction(187, 2100),
        Fraction(1, 40),
    ]
    assert t.b[:6] == pytest.approx(
        [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84], abs=1e-17
    )
    for be, b, bh in zip(t.b_err, t.b, b_hat, strict=True):
        assert be == pytest.approx(b - float(bh), abs=1e-16)


def test_registry_names():
    # The registry holds exactly the solver names of pyanode._names, aliases resolved there.
    assert (
        set(SOLVERS) == set(names.SOLVERS) == {"euler", "midpoint", "rk4", "bosh3", "dp5", "tsit5"}
    )
    assert solver_from_name("dp5") == Dopri5()
    assert solver_from_name("dopri5") == Dopri5()  # torchdiffeq's name
    assert solver_from_name("tsit5") == Tsit5()
    assert isinstance(solver_from_name("euler"), Euler)
    for name, (method, adaptive) in names.SOLVERS.items():
        assert SOLVERS[name].__name__ == method and SOLVERS[name]().adaptive == adaptive


@pytest.mark.parametrize("name", ["DP5", "", "rk45", None])
def test_unknown_solver_name(name):
    with pytest.raises(
        ValueError,
        match=r"solver=.* is not known; accepted: euler, midpoint, rk4, bosh3, dp5, tsit5 "
        r"\(aliases: dopri5 = dp5\)",
    ):
        solver_from_name(name)


def _good(**changes):
    kwargs = dict(
        c=(0.0, 0.5, 1.0),
        a=((), (0.5,), (-1.0, 2.0)),
        b=(1 / 6, 2 / 3, 1 / 6),
        b_err=(1 / 6 - 0.0, 2 / 3 - 1.0, 1 / 6 - 0.0),
        order=3,
        b_dense=((1.0, -5 / 6), (0.0, 2 / 3), (0.0, 1 / 6)),
        dense_order=2,
    )
    kwargs.update(changes)
    return ButcherTableau(**kwargs)


def test_valid_custom_tableau():
    assert _good().stages == 3


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(a=((), (0.4,), (-1.0, 2.0))), r"row 1 of a sums to 0\.4.*c\[1\] = 0\.5"),
        (dict(b=(0.2, 0.6, 0.1)), r"b must sum to 1, got sum\(b\) = 0\.9"),
        (dict(b_err=(0.1, 0.0, 0.0)), r"b_err = b - b_hat must sum to 0, got 0\.1"),
        (dict(c=(0.0, 0.5)), r"shapes disagree: len\(c\)=2, len\(a\)=3, len\(b\)=3"),
        (dict(b_err=(0.0, 0.0)), r"b_err has 2 entries, expected 3"),
        (dict(a=((), (0.5,), (1.0,))), r"strictly lower-triangular: row 2 has 1 entries"),
        (dict(order=0), r"order must be an int >= 1, got 0"),
        (dict(fsal=True), r"fsal=True needs the last row of a to equal b"),
        (dict(c=(), a=(), b=(), b_err=None), r"at least one stage"),
        (dict(b_dense=((1.0,), (0.0,))), r"b_dense needs 3 rows \(one per stage\)"),
        (
            dict(b_dense=((1.0, -5 / 6), (0.1, 2 / 3), (0.0, 1 / 6))),
            r"weights of theta\^1 sum to 1\.1, expected 1\.0",
        ),
        (
            dict(b_dense=((1.0, -5 / 6), (0.0, 1 / 6), (0.0, 2 / 3))),
            r"b_dense row 1 gives b_1\(1\) = 0\.166.*b\[1\] = 0\.666",
        ),
        (dict(dense_order=4), r"dense_order must be an int in \[1, order=3\], got 4"),
    ],
)
def test_bad_tableau(changes, message):
    with pytest.raises(ValueError, match=message):
        _good(**changes)


def dense_residuals(tableau: ButcherTableau, theta: float, order: int) -> list[float]:
    """`sum_i b_i(theta) Phi_i(t) - theta^|t| / gamma(t)` for every rooted tree up to `order`
    nodes: the order conditions of a continuous extension at `theta`."""
    a = _a_matrix(tableau)
    powers = np.array([theta ** (p + 1) for p in range(len(tableau.b_dense[0]))])
    weights = np.array(tableau.b_dense) @ powers
    return [
        float(np.dot(weights, _stage_weights(tree, a)) - theta**k / _gamma(tree))
        for k in range(1, order + 1)
        for tree in rooted_trees(k)
    ]


@pytest.mark.parametrize("solver", (*ALL_SOLVERS, RK38()), ids=lambda s: type(s).__name__)
def test_continuous_extension_order(solver: AbstractSolver):
    # b_i(theta) meets the order conditions up to dense_order at every theta, not one more:
    # the stated order is the order (dp5 and tsit5: 4, bosh3 Hermite and the RK4s: 3).
    tableau, q = solver.tableau, solver.dense_order
    for theta in (0.1, 0.37, 0.5, 0.81):
        assert max(abs(r) for r in dense_residuals(tableau, theta, q)) < 1e-12
        above = dense_residuals(tableau, theta, q + 1)[len(dense_residuals(tableau, theta, q)) :]
        assert max(abs(r) for r in above) > 1e-6
    assert max(abs(r) for r in dense_residuals(tableau, 1.0, solver.order)) < 1e-13  # b(1) = b


def test_dopri5_dense_output_is_shampines():
    # The same polynomial as scipy's RK45 (Shampine's continuous extension).
    from scipy.integrate._ivp.rk import RK45

    np.testing.assert_allclose(np.array(Dopri5.tableau.b_dense), RK45.P, rtol=0, atol=1e-15)


def test_rk38_is_torchdiffeqs_rk4():
    # torchdiffeq's "rk4" step is Kutta's 3/8 rule: k2 at 1/3, k3 at 2/3, weights 1/8, 3/8.
    t = RK38.tableau
    assert t.c == (0.0, 1 / 3, 2 / 3, 1.0) and t.b == (1 / 8, 3 / 8, 3 / 8, 1 / 8)
    assert t.a[2] == (-1 / 3, 1.0) and t.a[3] == (1.0, -1.0, 1.0)
    assert RK38().order == 4 and not RK38().adaptive and "rk38" not in SOLVERS
