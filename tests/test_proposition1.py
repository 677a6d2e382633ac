"""Proposition 1 of "Overcoming Limitations of Neural ODEs" (Massaroli et al. 2020, Prop. 1).

A vanilla 1-D NODE is a homeomorphism of R that preserves order, so it cannot represent the
reflection phi(x) = -x: its best fit is the best constant. A data-controlled NODE can: the IVP
dz/dt = -theta (z + x), z(0) = x, has z(1) = x (2 exp(-theta) - 1) -> -x. So can an
adaptive-depth NODE (§3.2), which stops each sample at its own time.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from pyanode.data import reflection_1d
from pyanode.specs import SolverSpec
from pyanode.torch import AdaptiveDepthBlock, MLPField, NeuralODE, ODEBlock
from pyanode.torch._adaptive import depth_net


class _Proposition1Field(nn.Module):
    """dz/dt = -theta (z + x): the data-controlled field of the proof."""

    def __init__(self, theta: float):
        super().__init__()
        self.theta = theta

    def forward(self, t, z, x):
        return -self.theta * (z + x)


@pytest.mark.parametrize("eps", [1e-1, 1e-2, 1e-4])
def test_the_proofs_ivp_reaches_the_reflection_within_eps(eps, float64):
    theta = math.log(2.0 / eps) + 0.1  # |phi(x) - z(1)| = 2 |x| exp(-theta) < eps on [-1, 1]
    block = ODEBlock(_Proposition1Field(theta), SolverSpec(rtol=1e-10, atol=1e-10), control=True)
    x = torch.linspace(-1, 1, 21).reshape(-1, 1)
    z1 = block(x, x)
    torch.testing.assert_close(z1, x * (2 * math.exp(-theta) - 1), rtol=1e-8, atol=1e-9)
    assert float((z1 + x).abs().max()) < eps


def _fit(kind: str, steps: int = 100) -> tuple[NeuralODE, torch.Tensor, torch.Tensor, float]:
    """Train z(T) of a 1-D NODE with no output layer on phi(x) = -x; return it and its MSE.

    `kind`: "vanilla" (f(t, z)), "data-controlled" (f(t, z, x)) or "adaptive-depth" (f(t, z)
    solved to a learned T(x) per sample).
    """
    data = reflection_1d(n=64, continuous=True, seed=0)
    x, y = torch.as_tensor(data.x), torch.as_tensor(data.y)
    torch.manual_seed(0)
    solver = SolverSpec(solver="rk4", dt=0.1)
    if kind == "adaptive-depth":
        block = AdaptiveDepthBlock(depth_net(1, 16, "tanh"), MLPField(1, 16, act="tanh"), solver)
        lr = 3e-2
    else:
        control = kind == "data-controlled"
        field = MLPField(1, 16, act="tanh", control_dim=1 if control else 0)
        block, lr = ODEBlock(field, solver, control=control), 1e-2
    model = NeuralODE(nn.Identity(), block, nn.Identity())
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
    with torch.no_grad():
        mse = float(nn.functional.mse_loss(model(x), y))
    return model, x, y, mse


def test_data_controlled_node_learns_the_reflection_and_vanilla_node_cannot():
    _, x, y, mse_control = _fit("data-controlled")
    vanilla, _, _, mse_vanilla = _fit("vanilla")
    best_constant = float(((y - y.mean()) ** 2).mean())  # ~1/3 for x ~ U[-1, 1]
    assert 0.25 < best_constant < 0.42
    assert mse_control < 1e-3 * best_constant, mse_control
    assert mse_vanilla > 0.95 * best_constant, (mse_vanilla, best_constant)
    # the vanilla flow preserves order (a homeomorphism of R), so it cannot reverse the line
    with torch.no_grad():
        order = torch.argsort(x[:, 0])
        z1 = vanilla(x)[order, 0]
    assert bool((z1[1:] >= z1[:-1]).all())


def test_adaptive_depth_node_learns_the_reflection():
    # Sec. 3.2: with its own end time per sample, a 1-D flow reaches -x without crossing paths
    model, x, y, mse = _fit("adaptive-depth")
    best_constant = float(((y - y.mean()) ** 2).mean())
    assert mse < 0.02 * best_constant, mse
    with torch.no_grad():
        end = model.block.end_times(x)
    assert float(end.max() / end.min()) > 1.5  # the samples do use different depths
