"""pyanode.torch._adaptive: the adaptive-depth NODE, each sample solved to its own end time
T(x) = g_omega(x), with gradients reaching omega."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pyanode import SpecError
from pyanode.specs import ModelSpec, SolverSpec
from pyanode.torch import AdaptiveDepthBlock, MLPField, build_model

TIGHT = SolverSpec(solver="dp5", rtol=1e-9, atol=1e-9)


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
