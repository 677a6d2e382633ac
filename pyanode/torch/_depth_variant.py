"""Depth-variant NODEs: weights theta(t) = sum_k theta_k phi_k(t) on a truncated basis.

The Galerkin (spectral) NODEs of Massaroli et al. 2020 ("Dissecting Neural ODEs", §3) expand the
weights of every layer on Chebyshev polynomials or a Fourier series; a stacked NODE has
piecewise-constant weights, i.e. K NODE blocks one after the other, solved here in one pass with
the break points given to the solver as `jump_ts`. "Overcoming Limitations of Neural ODEs", §3.1
and Table 1 (Chebyshev, Fourier, Stacked).

Flat parameter order (docs/architecture.md): a `GalerkinLinear` holds `weight` (K, out, in) and
`bias` (K, out), flattened in that order, so its part of the vector is W_0, ..., W_{K-1} (each
(out, in) row-major), then b_0, ..., b_{K-1}.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pyanode._errors import SpecError
from pyanode.specs import ModelSpec, SolverSpec
from pyanode.torch._bases import (
    AbstractBasis,
    ChebyshevBasis,
    FourierBasis,
    PiecewiseConstantBasis,
)
from pyanode.torch._blocks import Augment, ODEBlock
from pyanode.torch._fields import activation
from pyanode.torch._networks import NeuralODE


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
