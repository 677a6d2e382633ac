"""Adaptive depth: each sample flows for its own learned time T(x) = softplus(g_omega(x)) + t_min.

"Overcoming Limitations of Neural ODEs", §3.2 (after Massaroli et al. 2020): the output is
h_y(h_x(x) + int_0^{g_omega(x)} f(tau, x, z(tau)) dtau). To solve a batch with one solver call
and let gradients reach omega, time is rescaled per sample: with t = s T(x),

    dz/ds = T(x) f(s T(x), z, x),    s in [0, 1],

so z(s = 1) = z(t = T(x)) and T(x) enters the vector field as an argument the solver
differentiates (by backprop or by the adjoint's gradient with respect to `args`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pyanode._errors import SpecError
from pyanode.specs import ModelSpec, SolverSpec
from pyanode.torch._fields import MLPField, activation
from pyanode.torch._networks import Augment, NeuralODE, ODEBlock


class RescaledField(nn.Module):
    """dz/ds = T f(s T, z, x): the field of `AdaptiveDepthBlock` on s in [0, 1].

    Called as `f(s, z, args)` with `args = (T,)` or `(T, x)`, T of shape (B, 1); the wrapped field
    receives the per-sample times t = s T as a (B, 1) tensor and x (or None) as its args.
    """

    def __init__(self, field: nn.Module):
        super().__init__()
        self.field = field

    def forward(self, s: torch.Tensor, z: torch.Tensor, args: tuple[torch.Tensor, ...]):
        end_time, *control = args
        t = s.to(end_time) * end_time
        dz = self.field(t, z, control[0] if control else None)
        return end_time.reshape(-1, *([1] * (z.ndim - 1))) * dz


class AdaptiveDepthBlock(nn.Module):
    """z(0) -> z(T(x)) with a learned end time per sample: T(x) = softplus(g_omega(x)) + t_min.

    Arguments:
        depth_net: g_omega, mapping the raw input x (B, n_x) to (B, 1).
        field: the vector field f(t, z, args); it receives per-sample times t of shape (B, 1).
        solver: solver, tolerances and gradient method; the solve runs on s in [0, 1] whatever
            `solver.t1`, which only sets the initial end time: the last bias of g_omega starts
            at softplus^-1(t1 - t_min), so T(x) starts near t1.
        t_min: floor of T(x) (> 0), so that no sample's flow vanishes.
        control: also pass x to the field (a data-controlled field with adaptive depth).

    `forward(z0, x, saveat)` returns z(T(x)), or with `saveat` (times s in [0, 1], fractions of each
    sample's own T) the states z(s T(x)). The solve's statistics are in `block.last_stats`.

    Raises:
        SpecError: for t_min <= 0 or solver.t1 <= t_min.
    """

    def __init__(
        self,
        depth_net: nn.Module,
        field: nn.Module,
        solver: SolverSpec,
        *,
        t_min: float = 1e-2,
        control: bool = False,
    ):
        super().__init__()
        if not (isinstance(t_min, (int, float)) and 0 < t_min < solver.t1):
            raise SpecError(
                f"t_min must be a number in (0, solver.t1 = {solver.t1}), got {t_min!r}"
            )
        self.depth_net = depth_net
        self.t_min, self.control = float(t_min), control
        self.block = ODEBlock(RescaledField(field), solver.replace(t1=1.0), control=True)
        last = [m for m in depth_net.modules() if isinstance(m, nn.Linear)][-1:]
        if last and last[0].bias is not None:
            with torch.no_grad():
                last[0].bias.fill_(math.log(math.expm1(solver.t1 - self.t_min)))

    def end_times(self, x: torch.Tensor) -> torch.Tensor:
        """T(x) = softplus(g_omega(x)) + t_min, shape (B, 1)."""
        return nn.functional.softplus(self.depth_net(x)).reshape(x.shape[0], 1) + self.t_min

    def forward(
        self, z0: torch.Tensor, x: torch.Tensor, saveat: torch.Tensor | None = None
    ) -> torch.Tensor:
        end_time = self.end_times(x)
        args = (end_time, x) if self.control else (end_time,)
        return self.block(z0, args, saveat=saveat)


def depth_net(in_dim: int, hidden: int, act: str) -> nn.Sequential:
    """g_omega: in_dim -> hidden -> act -> 1."""
    return nn.Sequential(nn.Linear(in_dim, hidden), activation(act), nn.Linear(hidden, 1))


def adaptive_depth(spec: ModelSpec, solver: SolverSpec, in_dim: int, out_dim: int) -> nn.Module:
    dim = in_dim + spec.augment_dim
    field = MLPField(dim, spec.hidden, act=spec.activation, time_dependent=spec.time_dependent)
    block = AdaptiveDepthBlock(depth_net(in_dim, spec.hidden, spec.activation), field, solver)
    input_map = Augment(spec.augment_dim) if spec.augment_dim else nn.Identity()
    return NeuralODE(input_map, block, nn.Linear(dim, out_dim))
