"""Euler's method."""

from __future__ import annotations

from pyanode.solvers._tableau import AbstractSolver, ButcherTableau

_EULER = ButcherTableau(
    c=(0.0,), a=((),), b=(1.0,), b_err=None, order=1, b_dense=((1.0,),), dense_order=1
)


class Euler(AbstractSolver):
    """Explicit Euler: 1 stage, order 1, no error estimate (use `ConstantStepSize`); between
    step ends the straight line (order 1)."""

    tableau = _EULER
