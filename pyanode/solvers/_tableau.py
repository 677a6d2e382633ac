"""An explicit Runge–Kutta method: its Butcher tableau and continuous extension, validated once,
and its coefficients as the tensors a buffered step multiplies with."""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

_TOL = 1e-12  # consistency conditions hold to round-off of the published decimal coefficients


@dataclass(frozen=True)
class ButcherTableau:
    """Coefficients of an explicit Runge–Kutta method with an optional embedded error estimate.

    Stage `i` is `k_i = f(t + c[i] dt, y + dt * sum_j a[i][j] k_j)`, the step is
    `y + dt * sum_i b[i] k_i` and the local error estimate is `dt * sum_i b_err[i] k_i`, where
    `b_err = b - b_hat` is the difference to the embedded lower-order weights. The continuous
    extension ("dense output") is `y(t0 + theta h) = y0 + h sum_i b_i(theta) k_i` for `theta` in
    `[0, 1]`, with polynomial weights `b_i(theta) = sum_p b_dense[i][p] theta^(p+1)`, so that
    `b_i(1) = b_i`: a solution between step ends for the price of a matrix product.

    Arguments:
        c: stage times as fractions of the step, `c[0] == 0`.
        a: the strictly lower-triangular stage matrix as rows; row `i` has `i` entries (row 0 is
            empty).
        b: solution weights, summing to 1.
        b_err: `b - b_hat`, summing to 0; None for a method without an error estimate.
        order: the order of the solution `b`; the embedded method has order `order - 1`.
        fsal: "first same as last": the last stage is `f(t + dt, y_next)`, so an accepted step's
            last stage is the next step's first. Requires `a[-1] == b` and `c[-1] == 1`.
        b_dense: the coefficients of `b_i(theta)`, one row per stage, in powers
            `theta, theta^2, ...` (every row the same length).
        dense_order: the order of the continuous extension (its error is `O(h^(dense_order+1))`
            per step).

    Raises:
        ValueError: if the shapes disagree or a consistency condition fails: each row of `a`
            sums to `c`, `sum(b) == 1`, `sum(b_err) == 0`, `c[0] == 0`, the FSAL structure,
            `sum_i b_i(theta) == theta` and `b_i(1) == b_i`.
    """

    c: tuple[float, ...]
    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    b_err: tuple[float, ...] | None
    order: int
    b_dense: tuple[tuple[float, ...], ...]
    dense_order: int
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
        self._check_dense()

    def _check_dense(self) -> None:
        rows, s = self.b_dense, len(self.c)
        if len(rows) != s or not rows or len({len(r) for r in rows}) != 1 or not rows[0]:
            raise ValueError(
                f"ButcherTableau b_dense needs {s} rows (one per stage) of one length >= 1, "
                f"got row lengths {[len(r) for r in rows]}"
            )
        for p in range(len(rows[0])):  # sum_i b_i(theta) = theta
            total = math.fsum(r[p] for r in rows)
            if not math.isclose(total, 1.0 if p == 0 else 0.0, rel_tol=0.0, abs_tol=_TOL):
                raise ValueError(
                    f"ButcherTableau b_dense: the weights of theta^{p + 1} sum to {total!r}, "
                    f"expected {1.0 if p == 0 else 0.0}; sum_i b_i(theta) must equal theta"
                )
        for i, (row, b_i) in enumerate(zip(rows, self.b, strict=True)):
            if not math.isclose(math.fsum(row), b_i, rel_tol=0.0, abs_tol=_TOL):
                raise ValueError(
                    f"ButcherTableau b_dense row {i} gives b_{i}(1) = {math.fsum(row)!r}, but "
                    f"b[{i}] = {b_i!r}; the continuous extension must end on the step"
                )
        if not isinstance(self.dense_order, int) or not 1 <= self.dense_order <= self.order:
            raise ValueError(
                f"ButcherTableau dense_order must be an int in [1, order={self.order}], "
                f"got {self.dense_order!r}"
            )

    @property
    def stages(self) -> int:
        """The number of stages `s`."""
        return len(self.c)


def hermite_dense(b: tuple[float, ...]) -> tuple[tuple[float, ...], ...]:
    """`b_dense` of the cubic Hermite interpolant of an FSAL method: it matches `y0`, `f(y0) = k_0`,
    `y1` and `f(y1) = k_{s-1}` at both ends of the step, for no extra evaluation.

    With `y1 - y0 = h sum_i b_i k_i`, the Hermite cubic `h00 y0 + h10 h k_0 + h01 y1 +
    h11 h k_{s-1}` is `y0 + h sum_i (h01(theta) b_i + [i = 0] h10(theta) + [i = s-1] h11(theta))
    k_i`, with
    `h01 = 3 theta^2 - 2 theta^3`, `h10 = theta - 2 theta^2 + theta^3`, `h11 = theta^3 - theta^2`.
    """
    s = len(b)
    rows = []
    for i, b_i in enumerate(b):
        row = [0.0, 3.0 * b_i, -2.0 * b_i]
        if i == 0:
            row = [row[0] + 1.0, row[1] - 2.0, row[2] + 1.0]
        if i == s - 1:
            row = [row[0], row[1] - 1.0, row[2] + 1.0]
        rows.append(tuple(row))
    return tuple(rows)


class StageCoefficients:
    """A tableau as row tensors of one dtype and device, so that a stage sum is one matrix product.

    `rows[i]` (1, i) holds `a[i]` (stage `i`'s combination of the earlier stages), `b` and
    `b_err` (1, s) the solution and error weights, `cols[j]` (1, s - 1 - j) the column
    `a[j+1:, j]` (how stage `j` feeds the later ones, for the step's VJP), `ones` (1, s - 1);
    `c`, `b_floats`, `feeds[j]` (whether stage `j` feeds a later stage) and `dense_used[j]`
    (whether it enters the continuous extension) are Python values; `dense` (s, P) holds
    `b_dense` (see `dense_weights`).
    """

    def __init__(self, tableau: ButcherTableau, like: torch.Tensor):
        s = tableau.stages

        def tensor(values):
            return torch.tensor([list(values)], dtype=like.dtype, device=like.device)

        self.c = tuple(float(x) for x in tableau.c)
        self.b_floats = tuple(float(x) for x in tableau.b)
        self.rows = (None, *(tensor(tableau.a[i]) for i in range(1, s)))
        self.b = tensor(tableau.b)
        self.b_err = None if tableau.b_err is None else tensor(tableau.b_err)
        self.cols = tuple(tensor(tableau.a[i][j] for i in range(j + 1, s)) for j in range(s - 1))
        self.feeds = tuple(any(tableau.a[i][j] != 0.0 for i in range(j + 1, s)) for j in range(s))
        self.dense_used = tuple(any(x != 0.0 for x in row) for row in tableau.b_dense)
        self.ones = torch.ones((1, max(s - 1, 1)), dtype=like.dtype, device=like.device)
        self.dense = torch.tensor(tableau.b_dense, dtype=like.dtype, device=like.device)

    def dense_weights(self, thetas: list[float]) -> torch.Tensor:
        """`W[n, i] = b_i(thetas[n])`, an `(n, s)` matrix: `y0 + h W @ stages` interpolates."""
        p = self.dense.shape[1]
        powers = [[th ** (q + 1) for q in range(p)] for th in thetas]
        theta = torch.tensor(powers, dtype=self.dense.dtype, device=self.dense.device)
        return theta @ self.dense.T


class AbstractSolver(abc.ABC):
    """An explicit Runge–Kutta method; a final subclass sets only the class attribute `tableau`.

    The tableau is the whole method: every solver takes its steps through the one step of
    `pyanode.solvers._step`. Instances are immutable and equal when their classes are.
    """

    tableau: ClassVar[ButcherTableau]
    _coefficients: ClassVar[dict[tuple[torch.dtype, torch.device], StageCoefficients]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "tableau" in cls.__dict__:
            cls._coefficients = {}

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; cannot set {name!r}")

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    @property
    def order(self) -> int:
        """The order of the method (the embedded error estimate has order `order - 1`)."""
        return self.tableau.order

    @property
    def adaptive(self) -> bool:
        """Whether the tableau has an embedded error estimate (needed by `PIController`)."""
        return self.tableau.b_err is not None

    @property
    def dense_order(self) -> int:
        """The order of the continuous extension that interpolates between step ends."""
        return self.tableau.dense_order

    @property
    def fsal(self) -> bool:
        """Whether the last stage of a step is the first stage of the next."""
        return self.tableau.fsal

    def coefficients(self, like: torch.Tensor) -> StageCoefficients:
        """The tableau as tensors of `like`'s dtype and device (built once per dtype/device)."""
        key = (like.dtype, like.device)
        found = self._coefficients.get(key)
        if found is None:
            found = self._coefficients[key] = StageCoefficients(self.tableau, like)
        return found
