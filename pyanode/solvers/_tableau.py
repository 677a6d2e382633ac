"""The Butcher tableau of an explicit Runge–Kutta method, validated once at construction."""

from __future__ import annotations

import math
from dataclasses import dataclass

_TOL = 1e-12  # consistency conditions hold to round-off of the published decimal coefficients


@dataclass(frozen=True)
class ButcherTableau:
    """Coefficients of an explicit Runge–Kutta method with an optional embedded error estimate.

    Stage `i` is `k_i = f(t + c[i] dt, y + dt * sum_j a[i][j] k_j)`, the step is
    `y + dt * sum_i b[i] k_i` and the local error estimate is `dt * sum_i b_err[i] k_i`, where
    `b_err = b - b_hat` is the difference to the embedded lower-order weights.

    Arguments:
        c: stage times as fractions of the step, `c[0] == 0`.
        a: the strictly lower-triangular stage matrix as rows; row `i` has `i` entries (row 0 is
            empty).
        b: solution weights, summing to 1.
        b_err: `b - b_hat`, summing to 0; None for a method without an error estimate.
        order: the order of the solution `b`; the embedded method has order `order - 1`.
        fsal: "first same as last": the last stage is `f(t + dt, y_next)`, so an accepted step's
            last stage is the next step's first. Requires `a[-1] == b` and `c[-1] == 1`.

    Raises:
        ValueError: if the shapes disagree or a consistency condition fails: each row of `a`
            sums to `c`, `sum(b) == 1`, `sum(b_err) == 0`, `c[0] == 0`, and the FSAL structure.
    """

    c: tuple[float, ...]
    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    b_err: tuple[float, ...] | None
    order: int
    fsal: bool = False

    def __post_init__(self) -> None:
        s = len(self.c)
        if s == 0:
            raise ValueError("ButcherTableau needs at least one stage, got c=()")
        if len(self.a) != s or len(self.b) != s:
            raise ValueError(
                f"ButcherTableau shapes disagree: len(c)={s}, len(a)={len(self.a)}, "
                f"len(b)={len(self.b)}; all must equal the number of stages"
            )
        if self.b_err is not None and len(self.b_err) != s:
            raise ValueError(
                f"ButcherTableau b_err has {len(self.b_err)} entries, expected {s} (one per stage)"
            )
        for i, row in enumerate(self.a):
            if len(row) != i:
                raise ValueError(
                    f"ButcherTableau a must be strictly lower-triangular: row {i} has "
                    f"{len(row)} entries, expected {i}"
                )
            if not math.isclose(math.fsum(row), self.c[i], rel_tol=0.0, abs_tol=_TOL):
                raise ValueError(
                    f"ButcherTableau row {i} of a sums to {math.fsum(row)!r}, but c[{i}] = "
                    f"{self.c[i]!r}; each row of a must sum to c"
                )
        if not math.isclose(math.fsum(self.b), 1.0, rel_tol=0.0, abs_tol=_TOL):
            raise ValueError(f"ButcherTableau b must sum to 1, got sum(b) = {math.fsum(self.b)!r}")
        if self.b_err is not None and not math.isclose(
            math.fsum(self.b_err), 0.0, rel_tol=0.0, abs_tol=_TOL
        ):
            raise ValueError(
                f"ButcherTableau b_err = b - b_hat must sum to 0, got {math.fsum(self.b_err)!r}"
            )
        if not isinstance(self.order, int) or self.order < 1:
            raise ValueError(f"ButcherTableau order must be an int >= 1, got {self.order!r}")
        if self.fsal and (s < 2 or self.c[-1] != 1.0 or tuple(self.a[-1]) != tuple(self.b[:-1])):
            raise ValueError(
                "ButcherTableau fsal=True needs the last row of a to equal b (without its last "
                "entry) and c[-1] == 1"
            )
        if self.fsal and self.b[-1] != 0.0:
            raise ValueError(f"ButcherTableau fsal=True needs b[-1] == 0, got {self.b[-1]!r}")

    @property
    def stages(self) -> int:
        """The number of stages `s`."""
        return len(self.c)
