"""Depth-variant NODEs: weights theta(t) = sum_k theta_k phi_k(t) on a truncated basis.

The Galerkin (spectral) NODEs of Massaroli et al. 2020 ("Dissecting Neural ODEs", §3) make the
weights a function of depth and expand those of every layer on a truncated basis of L2([0, t1]):
Chebyshev polynomials or a Fourier series; a stacked NODE has piecewise-constant weights, i.e. K
NODE blocks one after the other, solved here in one pass with the break points given to the
solver as `jump_ts`. "Overcoming Limitations of Neural ODEs", §3.1 and Table 1 (Chebyshev,
Fourier, Stacked). A basis is a small object that evaluates (phi_0(t), ..., phi_{K-1}(t));
`GalerkinLinear` holds the coefficients theta_k.

Flat parameter order (docs/architecture.md): a `GalerkinLinear` holds `weight` (K, out, in) and
`bias` (K, out), flattened in that order, so its part of the vector is W_0, ..., W_{K-1} (each
(out, in) row-major), then b_0, ..., b_{K-1}.
"""

from __future__ import annotations

import abc
import math

import torch
from torch import nn

from pyanode._errors import SpecError
from pyanode._validate import check_int, check_number
from pyanode.specs import ModelSpec, SolverSpec
from pyanode.torch._fields import activation
from pyanode.torch._networks import Augment, NeuralODE, ODEBlock


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
        self.degree = check_int("degree", degree, low=0, error=SpecError)
        self.t1 = check_number("t1", t1, low=0.0, strict_low=True, error=SpecError)
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
        self.degree = check_int("degree", degree, low=0, error=SpecError)
        self.t1 = check_number("t1", t1, low=0.0, strict_low=True, error=SpecError)
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
        self.n_pieces = check_int("n_pieces", n_pieces, low=1, error=SpecError)
        self.t1 = check_number("t1", t1, low=0.0, strict_low=True, error=SpecError)
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


class GalerkinLinear(nn.Module):
    """An affine layer whose weights depend on depth: y = W(t) h + b(t), W(t) = sum_k phi_k(t) W_k.

    Arguments:
        in_features, out_features: the sizes of h and y.
        basis: the basis phi_0 ... phi_{K-1} (`ChebyshevBasis`, `FourierBasis`,
            `PiecewiseConstantBasis`).

    Parameters:
        weight: the coefficients W_k, shape (K, out_features, in_features).
        bias: the coefficients b_k, shape (K, out_features).

    Each coefficient starts uniform in +-1 / sqrt(in_features * basis.n_active), so that W(t)
    starts about as large as the weight of an `nn.Linear`.
    """

    def __init__(self, in_features: int, out_features: int, basis: AbstractBasis):
        super().__init__()
        self.in_features, self.out_features, self.basis = in_features, out_features, basis
        k = basis.n_terms
        self.weight = nn.Parameter(torch.empty(k, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(k, out_features))
        bound = 1.0 / math.sqrt(in_features * basis.n_active)
        with torch.no_grad():
            self.weight.uniform_(-bound, bound)
            self.bias.uniform_(-bound, bound)

    def basis_values(self, t: torch.Tensor | float) -> torch.Tensor:
        """phi_k(t), shape (K,), in the weights' dtype.

        Raises:
            ValueError: if t holds more than one time (per-sample depths are not supported).
        """
        t = torch.as_tensor(t)
        if t.numel() != 1:
            raise ValueError(
                f"GalerkinLinear needs one depth t for the whole batch, got t of shape "
                f"{tuple(t.shape)}"
            )
        return self.basis(t.reshape(())).to(self.weight.dtype)

    def expand(self, phi: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """W h + b with W = sum_k phi_k W_k and b = sum_k phi_k b_k for given basis values."""
        return nn.functional.linear(h, torch.tensordot(phi, self.weight, dims=1), phi @ self.bias)

    def forward(self, t: torch.Tensor | float, h: torch.Tensor) -> torch.Tensor:
        return self.expand(self.basis_values(t), h)

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.out_features}, basis={self.basis!r}"


class DepthVariantField(nn.Module):
    """The MLP field of Dupont et al. (App. E) with depth-variant weights: f_theta(t)(t, z).

    `[z, t] -> hidden -> act -> hidden -> act -> dim`, every affine map a `GalerkinLinear` on the
    same basis; t is part of the input only when `time_dependent`. Called as `f(t, z, args)`
    (args ignored) with one time t for the batch.
    """

    def __init__(
        self,
        dim: int,
        hidden: int,
        basis: AbstractBasis,
        *,
        act: str = "tanh",
        time_dependent: bool = True,
    ):
        super().__init__()
        self.dim, self.time_dependent, self.basis = dim, time_dependent, basis
        n_in = dim + int(time_dependent)
        self.layers = nn.ModuleList(
            [
                GalerkinLinear(n_in, hidden, basis),
                GalerkinLinear(hidden, hidden, basis),
                GalerkinLinear(hidden, dim, basis),
            ]
        )
        self.act = activation(act)

    def forward(self, t: torch.Tensor, z: torch.Tensor, args=None) -> torch.Tensor:
        h = z
        if self.time_dependent:
            h = torch.cat([z, torch.as_tensor(t).to(z).expand(z.shape[0], 1)], dim=1)
        first, middle, last = self.layers
        phi = first.basis_values(t)  # one basis evaluation for the three layers
        h = self.act(first.expand(phi, h))
        h = self.act(middle.expand(phi, h))
        return last.expand(phi, h)


# ModelSpec kind -> the basis it expands theta(t) on (spec, t1 -> basis)
BASES = {
    "chebyshev": lambda spec, t1: ChebyshevBasis(spec.degree, t1),
    "fourier": lambda spec, t1: FourierBasis(spec.degree, t1),
    "stacked": lambda spec, t1: PiecewiseConstantBasis(spec.n_pieces, t1),
}


def basis_for(spec: ModelSpec, t1: float = 1.0) -> AbstractBasis:
    """The basis of a depth-variant spec: `degree` is the highest Chebyshev degree (degree + 1
    terms) or Fourier harmonic (2 degree + 1 terms); `n_pieces` the pieces of `stacked`.

    Raises:
        SpecError: for a kind that is not depth-variant.
    """
    if spec.kind not in BASES:
        raise SpecError(
            f"model.kind={spec.kind!r} has no depth-variant basis; accepted: {', '.join(BASES)}"
        )
    return BASES[spec.kind](spec, t1)


def depth_variant(spec: ModelSpec, solver: SolverSpec, in_dim: int, out_dim: int) -> nn.Module:
    basis = basis_for(spec, solver.t1)
    dim = in_dim + spec.augment_dim
    field = DepthVariantField(
        dim, spec.hidden, basis, act=spec.activation, time_dependent=spec.time_dependent
    )
    input_map = Augment(spec.augment_dim) if spec.augment_dim else nn.Identity()
    block = ODEBlock(field, solver, jump_ts=basis.jump_ts)
    return NeuralODE(input_map, block, nn.Linear(dim, out_dim))
