"""The ODE block z(0) -> z(T) and the augmentation layer of ANODE."""

from __future__ import annotations

import torch
from torch import nn

from pyanode.solvers import (
    ConstantStepSize,
    PIController,
    SolverStats,
    gradient_from_name,
    solve,
    solver_from_name,
)
from pyanode.specs import SolverSpec


class Augment(nn.Module):
    """Append `augment_dim` zeros to the state: the ANODE map R^d -> R^(d+p) (Dupont et al. 2019).

    For images (B, C, H, W) the zeros are `augment_dim` extra channels.
    """

    def __init__(self, augment_dim: int):
        super().__init__()
        self.augment_dim = augment_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = x.new_zeros((x.shape[0], self.augment_dim, *x.shape[2:]))
        return torch.cat([x, pad], dim=1)


class ODEBlock(nn.Module):
    """Solve dz/dt = f(t, z, args) from t = 0 to `solver.t1`; the features are z(t1).

    Arguments:
        field: the vector field module, called as `field(t, z, args)`.
        solver: which solver, tolerances and gradient method to use.
        control: pass the block's input x as `args` to the field (data-controlled NODE).
        jump_ts: times where the field changes discontinuously (stacked NODE break points); the
            solver lands on them instead of stepping across.

    After each call `last_stats` holds the solve's NFE and step counts (backward NFE is filled in
    by `loss.backward()`).
    """

    def __init__(
        self,
        field: nn.Module,
        solver: SolverSpec,
        *,
        control: bool = False,
        jump_ts: tuple[float, ...] | None = None,
    ):
        super().__init__()
        self.field = field
        self.control = control
        self.jump_ts = None if jump_ts is None else torch.tensor(jump_ts, dtype=torch.float64)
        self.configure(solver)
        self.last_stats: SolverStats | None = None

    def configure(self, solver: SolverSpec) -> None:
        """Switch solver, tolerances or gradient method without touching the weights."""
        self.spec = solver
        self.solver = solver_from_name(solver.solver)
        if solver.adaptive:
            self.controller = PIController(
                rtol=solver.rtol, atol=solver.atol, dt0=solver.dt, max_steps=solver.max_steps
            )
        else:
            self.controller = ConstantStepSize(solver.dt, max_steps=solver.max_steps)
        self.gradient = gradient_from_name(solver.gradient, seminorm=solver.seminorm)

    def forward(
        self, z0: torch.Tensor, x: torch.Tensor | None = None, saveat: torch.Tensor | None = None
    ) -> torch.Tensor:
        sol = solve(
            self.field,
            z0,
            0.0,
            self.spec.t1,
            args=x if self.control else None,
            solver=self.solver,
            controller=self.controller,
            gradient=self.gradient,
            saveat=saveat,
            jump_ts=self.jump_ts,
        )
        self.last_stats = sol.stats
        return sol.ys
