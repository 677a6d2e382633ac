"""pyanode.torch._depth_variant: the bases, the depth-variant layer and field, and the stacked
NODE (Chebyshev, Fourier and Stacked nets of "Overcoming Limitations of Neural ODEs")."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from numpy.polynomial import chebyshev as npcheb

from pyanode import SpecError
from pyanode.solvers import Dopri5, PIController, solve
from pyanode.specs import ModelSpec, SolverSpec
from pyanode.torch import (
    ChebyshevBasis,
    DepthVariantField,
    FourierBasis,
    GalerkinLinear,
    PiecewiseConstantBasis,
    basis_for,
    build_model,
    count_parameters,
)


# -- bases -------------------------------------------------------------------------------------
def test_chebyshev_basis_is_chebyshev_polynomials():
    basis = ChebyshevBasis(6, t1=2.0)
    assert basis.n_terms == 7
    t = np.linspace(0.0, 2.0, 41)
    s = 2.0 * t / 2.0 - 1.0
    np.testing.assert_allclose(basis(torch.tensor(t)).numpy(), npcheb.chebvander(s, 6), atol=1e-13)
    # T_k(cos a) = cos(k a); T_k(-1) = (-1)^k at t = 0 and T_k(1) = 1 at t = t1
    a = 0.7
    ta = (math.cos(a) + 1.0) * 2.0 / 2.0
    np.testing.assert_allclose(basis(ta).numpy(), [math.cos(k * a) for k in range(7)], atol=1e-13)
    np.testing.assert_allclose(basis(0.0).numpy(), [(-1) ** k for k in range(7)])
    np.testing.assert_allclose(basis(2.0).numpy(), np.ones(7))


def test_chebyshev_basis_is_orthogonal_under_its_weight():
    # Gauss-Chebyshev quadrature with N nodes is exact for polynomials of degree < 2N
    basis, n = ChebyshevBasis(5, t1=3.0), 16
    s = np.cos((2 * np.arange(1, n + 1) - 1) * np.pi / (2 * n))
    phi = basis(torch.tensor(3.0 * (s + 1.0) / 2.0)).numpy()
    gram = phi.T @ phi * np.pi / n
    np.testing.assert_allclose(gram, np.diag([np.pi] + [np.pi / 2] * 5), atol=1e-12)


def test_fourier_basis_has_integer_harmonics_and_is_orthogonal():
    basis = FourierBasis(3, t1=2.0)
    assert basis.n_terms == 7
    np.testing.assert_allclose(basis(0.0).numpy(), [1, 1, 0, 1, 0, 1, 0], atol=1e-15)
    q = 0.5  # t1 / 4: angles k pi / 2
    expected = [1.0] + [f(k * math.pi / 2) for k in (1, 2, 3) for f in (math.cos, math.sin)]
    np.testing.assert_allclose(basis(q).numpy(), expected, atol=1e-14)
    np.testing.assert_allclose(basis(2.0).numpy(), basis(0.0).numpy(), atol=1e-14)  # periodic
    # the rectangle rule with N > 2K points integrates trigonometric polynomials exactly
    n = 32
    t = torch.arange(n, dtype=torch.float64) * 2.0 / n
    phi = basis(t).numpy()
    gram = phi.T @ phi * (2.0 / n)
    np.testing.assert_allclose(gram, np.diag([2.0] + [1.0] * 6), atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_piecewise_constant_basis_pieces_and_break_points(dtype):
    basis = PiecewiseConstantBasis(10, t1=1.0)
    assert basis.n_terms == 10 and len(basis.jump_ts) == 9
    t = torch.linspace(0, 1, 101, dtype=dtype)
    phi = basis(t)
    np.testing.assert_array_equal(phi.sum(-1).numpy(), np.ones(101))  # a partition of unity
    np.testing.assert_array_equal(phi.argmax(-1).numpy()[[0, 5, 55, 99, 100]], [0, 0, 5, 9, 9])
    for k, b in enumerate(basis.jump_ts):  # a break belongs to the next piece, the float below
        at = torch.tensor(b, dtype=dtype)  # it (where the solver ends the step) to the previous
        below = torch.nextafter(at, torch.tensor(-math.inf, dtype=dtype))
        assert basis(at).argmax().item() == k + 1
        assert basis(below).argmax().item() == k
    assert PiecewiseConstantBasis(1).jump_ts is None


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: ChebyshevBasis(-1), "degree must be an integer >= 0, got -1"),
        (lambda: FourierBasis(2.5), "degree must be an integer >= 0, got 2.5"),
        (lambda: PiecewiseConstantBasis(0), "n_pieces must be an integer >= 1, got 0"),
        (lambda: ChebyshevBasis(2, t1=0.0), "t1 must be a finite number > 0, got 0.0"),
        (lambda: basis_for(ModelSpec(kind="node")), "kind='node' has no depth-variant basis"),
    ],
)
def test_basis_errors(make, match):
    with pytest.raises(SpecError, match=match):
        make()


def test_basis_for_reads_degree_and_n_pieces():
    assert basis_for(ModelSpec(kind="chebyshev", degree=3)).n_terms == 4
    assert basis_for(ModelSpec(kind="fourier", degree=2)).n_terms == 5
    stacked = basis_for(ModelSpec(kind="stacked", n_pieces=4), t1=2.0)
    assert stacked.n_terms == 4 and stacked.jump_ts == (0.5, 1.0, 1.5)


# -- the depth-variant layer and field ---------------------------------------------------------
def test_galerkin_linear_is_linear_with_weights_on_the_basis(float64):
    torch.manual_seed(0)
    layer = GalerkinLinear(3, 4, ChebyshevBasis(2, t1=1.0))
    h = torch.randn(5, 3)
    t = 0.3
    s = 2 * t - 1
    phi = [1.0, s, 2 * s * s - 1]
    w = sum(p * layer.weight[k] for k, p in enumerate(phi))
    b = sum(p * layer.bias[k] for k, p in enumerate(phi))
    torch.testing.assert_close(layer(torch.tensor(t), h), h @ w.T + b, rtol=1e-14, atol=1e-14)
    assert layer.weight.shape == (3, 4, 3) and layer.bias.shape == (3, 4)
    with pytest.raises(
        ValueError, match=r"one depth t for the whole batch, got t of shape \(5, 1\)"
    ):
        layer(torch.zeros(5, 1), h)


@pytest.mark.parametrize(
    ("kind", "terms"), [("chebyshev", 4), ("fourier", 5), ("stacked", 3), ("node", 1)]
)
def test_parameter_count_is_terms_times_the_mlp(kind, terms):
    # field [z, t] -> w -> w -> z on R^2 with `terms` coefficient copies, then Linear(2, 3)
    spec = ModelSpec(kind=kind, hidden=7, degree={"chebyshev": 3}.get(kind, 2), n_pieces=3)
    w = 7
    mlp = (3 * w + w) + (w * w + w) + (2 * w + 2)
    assert count_parameters(spec, 2, 3) == terms * mlp + 2 * 3 + 3


@pytest.mark.parametrize("kind", ["chebyshev", "fourier", "stacked"])
def test_gradients_reach_every_basis_coefficient(kind, float64):
    spec = ModelSpec(kind=kind, hidden=5, activation="tanh", degree=2, n_pieces=3)
    solver = SolverSpec(solver="rk4", dt=0.05)
    model = build_model(spec, 2, 2, solver, seed=1)
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(2))
    c = torch.randn(6, 2, generator=torch.Generator().manual_seed(3))

    def loss() -> torch.Tensor:
        return (model(x) * c).sum()

    loss().backward()
    layers = [m for m in model.modules() if isinstance(m, GalerkinLinear)]
    assert len(layers) == 3
    for layer in layers:
        for k in range(layer.basis.n_terms):
            assert layer.weight.grad[k].abs().max() > 1e-6, (kind, k)
            # d loss / d W_k[0, 0] by central differences
            with torch.no_grad():
                w = layer.weight
                w[k, 0, 0] += 1e-6
                up = loss().item()
                w[k, 0, 0] -= 2e-6
                down = loss().item()
                w[k, 0, 0] += 1e-6
            fd = (up - down) / 2e-6
            assert layer.weight.grad[k, 0, 0].item() == pytest.approx(fd, rel=1e-5, abs=1e-9)


def test_stacked_node_is_its_pieces_solved_one_after_the_other(float64):
    torch.manual_seed(0)
    basis = PiecewiseConstantBasis(3, t1=1.5)
    field = DepthVariantField(2, 6, basis, act="tanh", time_dependent=True)
    z0 = torch.randn(4, 2)
    kwargs = dict(solver=Dopri5(), controller=PIController(rtol=1e-10, atol=1e-10))
    whole = solve(field, z0, 0.0, 1.5, jump_ts=torch.tensor(basis.jump_ts), **kwargs).ys

    z = z0
    for k, (a, b) in enumerate([(0.0, 0.5), (0.5, 1.0), (1.0, 1.5)]):
        layers = [(m.weight[k], m.bias[k]) for m in field.layers]  # theta(t) = theta_k on piece k

        def piece(t, y, args, layers=layers):
            h = torch.cat([y, t.expand(y.shape[0], 1)], dim=1)
            for i, (w, bias) in enumerate(layers):
                h = h @ w.T + bias
                h = torch.tanh(h) if i < 2 else h
            return h

        z = solve(piece, z, a, b, **kwargs).ys
    torch.testing.assert_close(whole, z, rtol=1e-7, atol=1e-8)


def test_flat_parameters_of_a_galerkin_layer_are_coefficient_major(float64):
    # docs/architecture.md order: per layer W then b; here W_0..W_{K-1} (row-major), b_0..b_{K-1}
    from pyanode.torch import flat_parameters

    layer = GalerkinLinear(2, 3, FourierBasis(1))
    with torch.no_grad():
        layer.weight.copy_(torch.arange(18.0).reshape(3, 3, 2))
        layer.bias.copy_(100 + torch.arange(9.0).reshape(3, 3))
    flat = flat_parameters(layer)
    np.testing.assert_array_equal(flat[:6], [0, 1, 2, 3, 4, 5])  # W_0, row by row
    np.testing.assert_array_equal(flat[18:], 100 + np.arange(9))
