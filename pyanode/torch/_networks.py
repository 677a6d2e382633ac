"""The two shapes of the papers' networks: `NeuralODE` (input map, ODE block, output map) and its
discrete baseline, a `ResNet` whose residual branch is the NODE's MLP without time."""

from __future__ import annotations

import torch
from torch import nn

from pyanode.torch._blocks import Augment
from pyanode.torch._fields import activation


class NeuralODE(nn.Module):
    """x -> output_map(ODEBlock(input_map(x), x)): the generalised IVP of Massaroli et al. 2020.

    NODE: input_map = identity; ANODE: input_map = Augment; IL-NODE: input_map = Linear. The block
    receives the raw input x as well, which a data-controlled field uses and others ignore.
    """

    def __init__(self, input_map: nn.Module, block: nn.Module, output_map: nn.Module):
        super().__init__()
        self.input_map = input_map
        self.block = block
        self.output_map = output_map

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The flow's end state z(T) (the ANODE paper's features)."""
        return self.block(self.input_map(x), x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_map(self.features(x))

    def trajectories(self, x: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
        """States z(t) at the times `ts` (in [0, t1]), shape (len(ts), B, state dim)."""
        return self.block(self.input_map(x), x, saveat=ts)


class ResidualBlock(nn.Module):
    """h <- h + f(h) with f = Linear -> act -> Linear -> act -> Linear (Euler step of a NODE)."""

    def __init__(self, dim: int, hidden: int, act: str):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden),
            activation(act),
            nn.Linear(hidden, hidden),
            activation(act),
            nn.Linear(hidden, dim),
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.net(h)


class ResNet(nn.Module):
    """`depth` residual blocks in R^(d + augment_dim) followed by a linear head."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int, depth: int, act: str, augment_dim=0):
        super().__init__()
        dim = in_dim + augment_dim
        self.input_map = Augment(augment_dim) if augment_dim else nn.Identity()
        self.blocks = nn.Sequential(*(ResidualBlock(dim, hidden, act) for _ in range(depth)))
        self.output_map = nn.Linear(dim, out_dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.input_map(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_map(self.features(x))
