"""The papers' networks and their parts: the augmentation layer of ANODE, the ODE block
z(t0) -> z(t1) (and torchdyn's `NeuralODE` as `NeuralODELayer`), `NeuralODE` (input map, ODE
block, output map) and its discrete baseline, a `ResNet` whose residual branch is the NODE's MLP
without time."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pyanode._errors import SpecError
from pyanode._names import gradient_name
from pyanode._validate import check_number
from pyanode.solvers import (
    ConstantStepSize,
    PIController,
    SolverStats,
    field_shape,
    gradient_from_name,
    solve,
    solver_from_name,
)
from pyanode.specs import SolverSpec
from pyanode.torch._fields import mlp


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
    """Solve dz/dt = f(t, z, args) from `t_span[0]` to `t_span[1]`; the features are z(t1).

    Arguments:
        field: the vector field, called as `field(t, z, args)`, `field(t, z)` (torchdiffeq,
            torchdyn) or `field(z)` (an `nn.Sequential`): told apart once, from its signature.
        solver: a `SolverSpec` (solver, tolerances, gradient method, `t1`), or a solver name
            (`"dp5"`, torchdiffeq's `"dopri5"`, ...) with the spec's other defaults.
        gradient: the gradient method's name, replacing the spec's: `backprop`, `adjoint`,
            `interpolating-adjoint` (torchdyn's `autograd`, `interpolated_adjoint` too).
        rtol, atol: tolerances replacing the spec's.
        t_span: the interval `(t0, t1)` (default `(0, solver.t1)`); `forward` can take another.
        control: pass the block's input x as `args` to the field (data-controlled NODE); the
            field must then take `(t, z, args)`.
        jump_ts: times where the field changes discontinuously (stacked NODE break points); the
            solver lands on them instead of stepping across.

    After each call `last_stats` holds the solve's NFE and step counts (backward NFE is filled in
    by `loss.backward()`).

    Raises:
        SpecError: for an unknown solver or gradient name or a bad tolerance.
        TypeError: for a field of no known shape, or a control field that takes no `args`.
        ValueError: for a `t_span` that is not two finite times.
    """

    def __init__(
        self,
        field: nn.Module,
        solver: SolverSpec | str | None = None,
        *,
        gradient: str | None = None,
        rtol: float | None = None,
        atol: float | None = None,
        t_span: tuple[float, float] | torch.Tensor | None = None,
        control: bool = False,
        jump_ts: tuple[float, ...] | None = None,
    ):
        super().__init__()
        spec = SolverSpec() if solver is None else solver
        if isinstance(spec, str):
            spec = SolverSpec(solver=spec)
        if gradient is not None:
            gradient = gradient_name(gradient, error=SpecError)
        changes = {"gradient": gradient, "rtol": rtol, "atol": atol}
        spec = spec.replace(**{k: v for k, v in changes.items() if v is not None})
        if control and field_shape(field) != "t, y, args":
            raise TypeError(
                f"a data-controlled field must take (t, z, args), but {type(field).__name__} "
                f"takes ({field_shape(field)})"
            )
        field_shape(field)  # a field of no known shape fails here, not at the first call
        self.field = field
        self.control = control
        self.jump_ts = None if jump_ts is None else torch.tensor(jump_ts, dtype=torch.float64)
        self.configure(spec)
        self.t_span = _span(t_span) if t_span is not None else None
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
        self,
        z0: torch.Tensor,
        x: torch.Tensor | None = None,
        saveat: torch.Tensor | None = None,
        *,
        t_span: tuple[float, float] | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """z(t1) from z(t0) = `z0`, or the states at `saveat` stacked on a first axis; `x` is
        the control input of a data-controlled field; `t_span` replaces the block's interval
        for this call."""
        if t_span is not None:
            t0, t1 = _span(t_span)
        else:
            t0, t1 = self.t_span or (0.0, self.spec.t1)
        sol = solve(
            self.field,
            z0,
            t0,
            t1,
            args=x if self.control else None,
            solver=self.solver,
            controller=self.controller,
            gradient=self.gradient,
            saveat=saveat,
            jump_ts=self.jump_ts,
        )
        self.last_stats = sol.stats
        return sol.ys


def _span(t_span: Any) -> tuple[float, float]:
    """`(t0, t1)` of a pair of numbers or of a 2-element tensor."""
    values = t_span.detach().reshape(-1).tolist() if isinstance(t_span, torch.Tensor) else t_span
    try:
        t0, t1 = (float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(
            f"t_span must be two times (t0, t1), got {t_span!r}; for the states at more times "
            "pass them as saveat"
        ) from None
    check_number("t_span t0", t0)
    check_number("t_span t1", t1)
    return t0, t1


def NeuralODELayer(  # noqa: N802 - named like the torchdyn class it stands for
    field: nn.Module,
    solver: str = "dopri5",
    sensitivity: str = "adjoint",
    *,
    rtol: float = 1e-3,
    atol: float = 1e-3,
    t_span: tuple[float, float] = (0.0, 1.0),
) -> ODEBlock:
    """torchdyn's `NeuralODE(field, solver=..., sensitivity=...)`: an `ODEBlock` with torchdyn's
    defaults (dopri5, the adjoint, rtol = atol = 1e-3).

    Named `NeuralODELayer`, not `NeuralODE`: in pyanode `NeuralODE` is the whole network of the
    papers (input map, ODE block, output map), while torchdyn's is the ODE layer alone. Unlike
    torchdyn's it returns z(t1), not `(t_eval, trajectory)`: pass `saveat` for a trajectory.
    `sensitivity` takes torchdyn's names (`autograd`, `adjoint`, `interpolated_adjoint`) and
    pyanode's.
    """
    return ODEBlock(field, solver, gradient=sensitivity, rtol=rtol, atol=atol, t_span=t_span)


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
        self.net = mlp(dim, hidden, dim, act)

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
