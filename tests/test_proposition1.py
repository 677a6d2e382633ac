"""Proposition 1 of "Overcoming Limitations of Neural ODEs" (Massaroli et al. 2020, Prop. 1).

A vanilla 1-D NODE is a homeomorphism of R that preserves order, so it cannot represent the
reflection phi(x) = -x: its best fit is the best constant. A data-controlled NODE can: the IVP
dz/dt = -theta (z + x), z(0) = x, has z(1) = x (2 exp(-theta) - 1) -> -x.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from pyanode.data import reflection_1d
from pyanode.specs import SolverSpec
from pyanode.torch import MLPField, NeuralODE, ODEBlock


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


def _fit(control: bool, steps: int = 250) -> tuple[NeuralODE, torch.Tensor, torch.Tensor, float]:
    """Train z(1) of a 1-D NODE (no output layer) on phi(x) = -x; return the model and its MSE."""
    data = reflection_1d(n=64, continuous=True, seed=0)
    x, y = torch.as_tensor(data.x), torch.as_tensor(data.y)
    torch.manual_seed(0)
    field = MLPField(1, 16, act="tanh", control_dim=1 if control else 0)
    block = ODEBlock(field, SolverSpec(solver="rk4", dt=0.1), control=control)
    model = NeuralODE(nn.Identity(), block, nn.Identity())
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
    with torch.no_grad():
        mse = float(nn.functional.mse_loss(model(x), y))
    return model, x, y, mse


def test_data_controlled_node_learns_the_reflection_and_vanilla_node_cannot():
    _, x, y, mse_control = _fit(control=True)
    vanilla, _, _, mse_vanilla = _fit(control=False)
    best_constant = float(((y - y.mean()) ** 2).mean())  # ~1/3 for x ~ U[-1, 1]
    assert 0.25 < best_constant < 0.42
    assert mse_control < 0.01 * best_constant, mse_control
    assert mse_vanilla > 0.8 * best_constant, (mse_vanilla, best_constant)
    # the vanilla flow preserves order (a homeomorphism of R), so it cannot reverse the line
    with torch.no_grad():
        order = torch.argsort(x[:, 0])
        z1 = vanilla(x)[order, 0]
    assert bool((z1[1:] >= z1[:-1]).all())
