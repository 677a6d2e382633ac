"""Bases of L2([0, t1]) on which depth-variant weights theta(t) are expanded.

Massaroli et al. 2020 ("Dissecting Neural ODEs", §3) make the weights a function of depth and
discretise theta(t) = sum_k theta_k phi_k(t) on a truncated basis: spectral (Chebyshev
polynomials, Fourier series) or piecewise constant (stacked nets). A basis here is a small object
that evaluates (phi_0(t), ..., phi_{K-1}(t)); `GalerkinLinear` holds the coefficients theta_k.
"""

from __future__ import annotations

import abc
import math

import torch

from pyanode._errors import SpecError


def _check_count(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_t1(t1: float) -> float:
    if isinstance(t1, bool) or not isinstance(t1, (int, float)) or not (0 < t1 < math.inf):
        raise SpecError(f"t1 must be a finite number > 0, got {t1!r}")
    return float(t1)


def _as_time(t: torch.Tensor | float) -> torch.Tensor:
    return torch.as_tensor(t, dtype=torch.float64)


class AbstractBasis(abc.ABC):
    """K functions phi_k on [0, t1]; `basis(t)` returns their values, shape t.shape + (K,).

    Attributes:
        n_terms: the number K of basis functions (coefficients per weight).
        t1: the end of the depth interval [0, t1].
        jump_ts: times where the functions jump (the solver must land on them), or None.
        n_active: how many phi_k are nonzero at a time t; the coefficients are initialised with
            scale 1 / sqrt(n_active) so theta(t) starts as large as a plain Linear's weight.
    """

    n_terms: int
    t1: float
    jump_ts: tuple[float, ...] | None
    n_active: int

    @abc.abstractmethod
    def __call__(self, t: torch.Tensor | float) -> torch.Tensor:
        """phi_k(t) for k < n_terms, in float64, shape t.shape + (n_terms,)."""


class ChebyshevBasis(AbstractBasis):
    """Chebyshev polynomials T_0 ... T_degree of the first kind, with [0, t1] mapped onto [-1, 1].

    T_k(cos a) = cos(k a); computed by T_{k+1}(s) = 2 s T_k(s) - T_{k-1}(s), s = 2 t / t1 - 1.
    They are orthogonal on [-1, 1] under the weight 1 / sqrt(1 - s^2).

    Arguments:
        degree: the highest polynomial degree (so `degree + 1` terms), >= 0.
        t1: the end of the depth interval.

    Raises:
        SpecError: for a negative degree or a non-positive t1.
    """

    def __init__(self, degree: int, t1: float = 1.0):
        self.degree = _check_count("degree", degree, 0)
        self.t1 = _check_t1(t1)
        self.n_terms = self.degree + 1
        self.n_active = self.n_terms
        self.jump_ts = None

    def __call__(self, t: torch.Tensor | float) -> torch.Tensor:
        s = 2.0 * _as_time(t) / self.t1 - 1.0
        values = [torch.ones_like(s), s][: self.n_terms]
        for _ in range(2, self.n_terms):
            values.append(2.0 * s * values[-1] - values[-2])
        return torch.stack(values, dim=-1)

    def __repr__(self) -> str:
        return f"ChebyshevBasis(degree={self.degree}, t1={self.t1})"


class FourierBasis(AbstractBasis):
    """Fourier series with integer harmonics on [0, t1]: 1, cos(2 pi k t / t1), sin(2 pi k t / t1).

    The order is [1, cos_1, sin_1, cos_2, sin_2, ...]; the functions are orthogonal on [0, t1]
    with squared norms t1 for the constant and t1 / 2 for the others.

    Arguments:
        degree: the highest harmonic k (so `2 degree + 1` terms), >= 0.
        t1: the period, the end of the depth interval.

    Raises:
        SpecError: for a negative degree or a non-positive t1.
    """

    def __init__(self, degree: int, t1: float = 1.0):
        self.degree = _check_count("degree", degree, 0)
        self.t1 = _check_t1(t1)
        self.n_terms = 2 * self.degree + 1
        self.n_active = self.n_terms
        self.jump_ts = None

    def __call__(self, t: torch.Tensor | float) -> torch.Tensor:
        t = _as_time(t)
        values = [torch.ones_like(t)]
        for k in range(1, self.degree + 1):
            angle = (2.0 * math.pi * k / self.t1) * t
            values += [torch.cos(angle), torch.sin(angle)]
        return torch.stack(values, dim=-1)

    def __repr__(self) -> str:
        return f"FourierBasis(degree={self.degree}, t1={self.t1})"


class PiecewiseConstantBasis(AbstractBasis):
    """Indicators of `n_pieces` equal pieces of [0, t1]: a stacked net of n_pieces NODE blocks.

    phi_k(t) = 1 on [k t1 / K, (k + 1) t1 / K) (the last piece also holds t1), else 0, so
    theta(t) = theta_k on piece k. Times before 0 or after t1 belong to the first or last piece.
    The interior break points are `jump_ts`, where an adaptive solver must stop and restart.

    Arguments:
        n_pieces: the number K of pieces, >= 1.
        t1: the end of the depth interval.

    Raises:
        SpecError: for n_pieces < 1 or a non-positive t1.
    """

    def __init__(self, n_pieces: int, t1: float = 1.0):
        self.n_pieces = _check_count("n_pieces", n_pieces, 1)
        self.t1 = _check_t1(t1)
        self.n_terms = self.n_pieces
        self.n_active = 1
        breaks = tuple(k * self.t1 / self.n_pieces for k in range(1, self.n_pieces))
        self.jump_ts = breaks or None

    def __call__(self, t: torch.Tensor | float) -> torch.Tensor:
        t = torch.as_tensor(t)
        if not t.is_floating_point():
            t = t.to(torch.float64)
        # compare with the break points the solver lands on, rounded to t's dtype as the solver
        # rounds them: t == break is the next piece, and the float just below it (where the
        # solver evaluates the stages before a jump) is the previous one
        breaks = torch.tensor(self.jump_ts or (), dtype=t.dtype)
        piece = torch.bucketize(t, breaks, right=True)
        return (piece.unsqueeze(-1) == torch.arange(self.n_pieces)).to(torch.float64)

    def __repr__(self) -> str:
        return f"PiecewiseConstantBasis(n_pieces={self.n_pieces}, t1={self.t1})"
