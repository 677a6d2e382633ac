"""The nets of the survey beyond NODE/ANODE: bases, depth-variant layers, adaptive depth, every kind
forward and backward with both gradient methods, and parameter matching."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from numpy.polynomial import chebyshev as npcheb
from torch import nn

from pyanode import SpecError
from pyanode.solvers import Dopri5, PIController, solve
from pyanode.specs import MODEL_KINDS, ModelSpec, SolverSpec
from pyanode.torch import (
    MODELS,
    AdaptiveDepthBlock,
    ChebyshevBasis,
    DepthVariantField,
    FourierBasis,
    GalerkinLinear,
    MLPField,
    PiecewiseConstantBasis,
    basis_for,
    build_model,
    count_parameters,
    match_width,
)

TIGHT = SolverSpec(solver="dp5", rtol=1e-9, atol=1e-9)


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


# -- adaptive depth ----------------------------------------------------------------------------
class _Cos(nn.Module):
    """dz/dt = cos(t): z(T) = z(0) + sin(T); t arrives per sample, shape (B, 1)."""

    def forward(self, t, z, args):
        return torch.cos(t).expand_as(z)


class _Decay(nn.Module):
    """dz/dt = -z: z(T) = z(0) exp(-T)."""

    def forward(self, t, z, args):
        return -z


def _linear_depth(weight: float, bias: float) -> nn.Linear:
    g = nn.Linear(1, 1)
    with torch.no_grad():
        g.weight.fill_(weight)
        g.bias.fill_(bias)
    return g


@pytest.mark.parametrize(
    ("field", "exact"),
    [(_Cos(), lambda z0, T: z0 + torch.sin(T)), (_Decay(), lambda z0, T: z0 * torch.exp(-T))],
)
def test_adaptive_depth_honours_each_samples_end_time(field, exact, float64):
    block = AdaptiveDepthBlock(nn.Linear(1, 1), field, TIGHT)
    block.depth_net = _linear_depth(2.0, 0.5)  # T(x) = softplus(2 x + 0.5) + 0.01
    x = torch.linspace(-1.5, 1.5, 7).reshape(7, 1)
    z0 = torch.randn(7, 2, generator=torch.Generator().manual_seed(0))
    end = nn.functional.softplus(2.0 * x + 0.5) + 0.01
    assert float(end.min()) < 0.2 and float(end.max()) > 3.0  # very different depths
    torch.testing.assert_close(block.end_times(x), end)
    torch.testing.assert_close(block(z0, x), exact(z0, end), rtol=1e-7, atol=1e-8)
    s = torch.tensor([0.0, 0.25, 1.0])
    path = block(z0, x, saveat=s)  # saveat is in s: fractions of each sample's own T
    for i, si in enumerate(s):
        torch.testing.assert_close(path[i], exact(z0, si * end), rtol=1e-7, atol=1e-8)


def test_adaptive_depth_starts_near_t1_and_checks_t_min():
    model = build_model(ModelSpec(kind="adaptive-depth", hidden=4), 2, 3, SolverSpec(t1=2.0))
    block = model.block
    with torch.no_grad():
        block.depth_net[-1].weight.zero_()  # leaves g_omega(x) = its last bias
    torch.testing.assert_close(block.end_times(torch.randn(3, 2)), torch.full((3, 1), 2.0))
    with pytest.raises(SpecError, match=r"t_min must be a number in \(0, solver.t1 = 1.0\), got 0"):
        AdaptiveDepthBlock(nn.Linear(1, 1), _Decay(), SolverSpec(), t_min=0)


@pytest.mark.parametrize(
    ("gradient", "solver", "rel"),
    [
        ("backprop", SolverSpec(solver="rk4", dt=0.02), 1e-6),
        ("adjoint", SolverSpec(solver="dp5", rtol=1e-10, atol=1e-10), 1e-5),
    ],
)
def test_adaptive_depth_gradients_reach_omega(gradient, solver, rel, float64):
    torch.manual_seed(0)
    field = MLPField(2, 6, act="tanh")
    block = AdaptiveDepthBlock(
        nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1)),
        field,
        solver.replace(gradient=gradient),
    )
    x = torch.randn(5, 2)
    c = torch.randn(5, 2)

    def loss() -> torch.Tensor:
        return (block(x, x) * c).sum()

    loss().backward()
    omega = list(block.depth_net.parameters())
    assert all(p.grad is not None for p in omega)
    for p in omega:
        flat, grad = p.data.view(-1), p.grad.view(-1)
        for i in range(flat.numel()):
            with torch.no_grad():
                flat[i] += 1e-6
                up = loss().item()
                flat[i] -= 2e-6
                down = loss().item()
                flat[i] += 1e-6
            fd = (up - down) / 2e-6
            assert grad[i].item() == pytest.approx(fd, rel=rel, abs=1e-8)
    assert any(p.grad.abs().max() > 1e-3 for p in omega)


# -- every kind, both gradient methods ---------------------------------------------------------
def test_every_model_kind_has_a_builder():
    assert set(MODEL_KINDS) <= set(MODELS)


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_every_kind_runs_forward_and_backward_with_both_gradient_methods(kind, float64):
    # tanh: through ReLU's kinks the backsolve adjoint converges only slowly with the tolerance
    augment = 1 if kind == "anode" else 0
    spec = ModelSpec(kind=kind, hidden=6, activation="tanh", augment_dim=augment, n_pieces=2)
    x = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
    y = torch.arange(8) % 3
    grads = {}
    for gradient in ("backprop", "adjoint"):
        model = build_model(spec, 2, 3, TIGHT.replace(gradient=gradient), seed=0)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        grads[gradient] = [p.grad for p in model.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads[gradient])
        assert sum(float(g.abs().sum()) for g in grads[gradient]) > 0
    for a, b in zip(grads["backprop"], grads["adjoint"], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_data_controlled_gradient_flows_through_the_control_input(float64):
    # tanh: with ReLU's kinks the adaptive steps make z(1) only piecewise smooth at 1e-6 scale
    spec = ModelSpec(kind="data-controlled", hidden=6, activation="tanh")
    model = build_model(spec, 2, 3, TIGHT, seed=0)
    x = torch.randn(4, 2, requires_grad=True)
    c = torch.randn(4, 3)
    (model(x) * c).sum().backward()
    # the part that enters through the control path alone: x fixed in z(0), moved in the field
    block, head = model.block, model.output_map
    x0 = x.detach()

    def through_control(u: torch.Tensor) -> float:
        with torch.no_grad():
            return float((head(block(x0, u)) * c).sum())

    direction = torch.randn(4, 2)
    fd = (through_control(x0 + 1e-6 * direction) - through_control(x0 - 1e-6 * direction)) / 2e-6
    u = x0.clone().requires_grad_(True)
    (head(block(x0, u)) * c).sum().backward()
    assert float((u.grad * direction).sum()) == pytest.approx(fd, rel=1e-5)
    assert u.grad.abs().max() > 1e-4


# -- parameter matching ------------------------------------------------------------------------
def test_match_width_finds_the_closest_count(float64):
    spec = ModelSpec(kind="node")
    width, n = match_width(spec, 2, 3, 1300)
    counts = {w: w * w + 7 * w + 11 for w in range(1, 80)}  # NODE on R^2, 3 classes, by hand
    best = min(counts, key=lambda w: abs(counts[w] - 1300))
    assert (width, n) == (best, counts[best]) == (33, 1331)
    assert count_parameters(spec.replace(hidden=width), 2, 3) == n
    assert match_width(ModelSpec(kind="resnet"), 2, 3, 1300) == (33, 1298)  # Table 1: 33, 1.3k


def test_match_width_errors():
    with pytest.raises(SpecError, match=r"width 32 gives 1259 \(-3.2%\), width 33 gives 1331"):
        match_width(ModelSpec(kind="node"), 2, 3, 1300, tolerance=0.01)
    with pytest.raises(SpecError, match="budget must be an integer > 0, got 0"):
        match_width(ModelSpec(kind="node"), 2, 3, 0)
    with pytest.raises(SpecError, match=r"tolerance must be a number in \(0, 1\), got 1.5"):
        match_width(ModelSpec(kind="node"), 2, 3, 1300, tolerance=1.5)


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
