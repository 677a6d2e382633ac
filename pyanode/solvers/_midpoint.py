"""The explicit midpoint method."""

from __future__ import annotations

from pyanode.solvers._tableau import AbstractSolver, ButcherTableau

_MIDPOINT = ButcherTableau(c=(0.0, 0.5), a=((), (0.5,)), b=(0.0, 1.0), b_err=None, order=2)


class Midpoint(AbstractSolver):
    """Explicit midpoint rule: 2 stages, order 2, no error estimate (use `ConstantStepSize`)."""

    tableau = _MIDPOINT
