"""The contenders: the same NODE/ANODE classifier in pyanode, torchdiffeq and torchdyn.

Every contender is built from one pyanode model, whose weights it copies, so that the three
libraries start from identical weights: the vector field `[z, t] -> Linear(d+1, h) -> ReLU ->
Linear(h, h) -> ReLU -> Linear(h, d)` (t appended as the last input column, as pyanode's
`MLPField` and torchdyn's `DepthCat(1)` do), the zero augmentation of ANODE and the linear output
map. All solve dopri5 on [0, 1] with the same rtol/atol and the RMS error norm; the adjoints use
the seminorm (error control on the state and its adjoint only) and the forward tolerances.

Differences that remain (they are the libraries' own choices, reported, not hidden):

- torchdiffeq steps past `t1` and interpolates back; pyanode and torchdyn clip the last step.
- the initial step: pyanode and torchdiffeq use Hairer's rule with exponent 1/5 for dopri5,
  torchdyn 1/6; torchdyn's step factor is clipped to [0.2, 10] only when the step is rejected.
- torchdyn's adjoint also integrates dL/dt (one extra scalar) and walks the vector field's
  modules at every evaluation (to hand `t` to `DepthCat`).
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from pyanode import ModelSpec, SolverSpec
from pyanode.torch import Augment, NeuralODE, build_model

LIBRARIES = ("pyanode", "torchdiffeq", "torchdyn")


@dataclass
class Contender:
    """One library's model of a configuration.

    Arguments:
        library: one of `LIBRARIES`.
        model: maps (B, in_dim) inputs to (B, classes) logits.
        counter: counts the vector-field evaluations of the forward pass and the VJPs of the
            backward pass (switched on only in the untimed counting pass).
    """

    library: str
    model: nn.Module
    counter: NFECounter


class NFECounter:
    """Counts forward evaluations of a vector field and the VJPs through them in backward.

    A VJP is counted when the gradient reaches an evaluation's output (a tensor hook), so
    evaluations of rejected steps, which get no gradient, are not counted; for adjoints the
    evaluations during backward are the backward NFE, as in `SolverStats`.
    """

    def __init__(self):
        self.enabled = False  # count VJPs too (tensor hooks: not while timing)
        self.in_backward = False
        self.forward = 0
        self.backward = 0

    def reset(self) -> None:
        self.forward = self.backward = 0

    def count(self, out: torch.Tensor) -> None:
        if self.in_backward:
            self.backward += 1  # an adjoint's evaluation during backward: one f and one VJP
            return
        self.forward += 1  # a Python int increment: cheap enough to leave on while timing
        if self.enabled and out.requires_grad:
            out.register_hook(self._vjp)

    def _vjp(self, grad: torch.Tensor) -> None:
        self.backward += 1


class _CountedField(nn.Module):
    """`f(t, z) = net([z, t])` for torchdiffeq, with an NFE counter."""

    def __init__(self, net: nn.Sequential, counter: NFECounter):
        super().__init__()
        self.net = net
        self.counter = counter

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        out = self.net(torch.cat([z, t.to(z.dtype).expand(z.shape[0], 1)], dim=1))
        self.counter.count(out)
        return out


class _CountedLast(nn.Module):
    """The last layer of the torchdyn field, counting evaluations."""

    def __init__(self, linear: nn.Linear, counter: NFECounter):
        super().__init__()
        self.linear = linear
        self.counter = counter

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        out = self.linear(h)
        self.counter.count(out)
        return out


class _TorchdiffeqBlock(nn.Module):
    def __init__(self, field: _CountedField, solver: SolverSpec):
        super().__init__()
        import torchdiffeq

        self.field = field
        self.register_buffer("t", torch.tensor([0.0, solver.t1]))
        kwargs = {"rtol": solver.rtol, "atol": solver.atol, "method": "dopri5"}
        if solver.solver == "rk4":
            kwargs = {"method": "rk4", "options": {"step_size": solver.dt}}
        if solver.gradient == "adjoint":
            self._odeint = torchdiffeq.odeint_adjoint
            kwargs["adjoint_params"] = tuple(field.parameters())
            options = dict(kwargs.get("options", {}))
            if solver.seminorm:
                options["norm"] = "seminorm"
            kwargs["adjoint_options"] = options
        else:
            self._odeint = torchdiffeq.odeint
        self._kwargs = kwargs

    def forward(self, z: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        return self._odeint(self.field, z, self.t.to(z.dtype), **self._kwargs)[-1]


class _TorchdynBlock(nn.Module):
    def __init__(self, net: nn.Sequential, counter: NFECounter, solver: SolverSpec):
        super().__init__()
        from torchdyn.core import NeuralODE as TorchdynNODE
        from torchdyn.nn import DepthCat

        layers = list(net)
        layers[-1] = _CountedLast(layers[-1], counter)
        field = nn.Sequential(DepthCat(1), *layers)
        with contextlib.redirect_stdout(io.StringIO()):  # it prints a note about the signature
            self.node = TorchdynNODE(
                field,
                solver="rk4" if solver.solver == "rk4" else "dopri5",
                sensitivity="adjoint" if solver.gradient == "adjoint" else "autograd",
                atol=solver.atol,
                rtol=solver.rtol,
                atol_adjoint=solver.atol,
                rtol_adjoint=solver.rtol,
                return_t_eval=False,
            )
        if solver.solver == "rk4":  # fixed steps: the grid is the time span
            steps = round(solver.t1 / solver.dt)
            self.register_buffer("t_span", torch.linspace(0.0, solver.t1, steps + 1))
        else:
            self.register_buffer("t_span", torch.tensor([0.0, solver.t1]))

    def forward(self, z: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        return self.node(z, self.t_span.to(z.dtype))[-1]


class _PyanodeCounted(nn.Module):
    """Reads NFE from pyanode's own `SolverStats` into the shared counter interface."""

    def __init__(self, model: NeuralODE, counter: NFECounter):
        super().__init__()
        self.inner = model
        self.counter = counter
        self._pending = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.inner(x)
        stats = self.inner.block.last_stats
        self.counter.forward += stats.nfe_forward
        if self._pending is not None:
            self.counter.backward += self._pending.nfe_backward
        self._pending = stats
        return out

    def flush(self) -> None:
        """Add the backward NFE of the last batch (filled in by its backward pass)."""
        if self._pending is not None:
            self.counter.backward += self._pending.nfe_backward
            self._pending = None


def contenders(
    kind: str,
    augment_dim: int,
    hidden: int,
    in_dim: int,
    classes: int,
    solver: SolverSpec,
    seed: int,
    libraries: tuple[str, ...] = LIBRARIES,
) -> list[Contender]:
    """The configuration's model in each of `libraries`, all with the weights of seed `seed`.

    **Arguments:**

    - `kind`: `"node"` or `"anode"`.
    - `augment_dim`: zeros appended by ANODE (0 for NODE).
    - `hidden`: width of the vector field.
    - `in_dim`, `classes`: input features and output classes.
    - `solver`: `SolverSpec` with solver `"dp5"` (tolerances and gradient are shared), or
      `"rk4"` with a fixed step `dt` that divides `t1` (torchdiffeq's rk4 is the 3/8 rule).
    - `seed`: seed of pyanode's weight initialisation, copied into the peers.
    - `libraries`: which contenders to build.

    **Raises:**

    `ValueError`: for a solver other than dp5/rk4 or an unknown library name.
    """
    if solver.solver not in ("dp5", "rk4"):
        raise ValueError(f"the peers are compared on dp5 and rk4, got solver={solver.solver!r}")
    unknown = sorted(set(libraries) - set(LIBRARIES))
    if unknown:
        raise ValueError(f"unknown libraries {unknown}; accepted: {', '.join(LIBRARIES)}")
    spec = ModelSpec(kind=kind, hidden=hidden, augment_dim=augment_dim)
    reference = build_model(spec, in_dim, classes, solver, seed=seed)
    out: list[Contender] = []
    for library in libraries:
        counter = NFECounter()
        model = copy.deepcopy(reference)
        if library == "pyanode":
            out.append(Contender(library, _PyanodeCounted(model, counter), counter))
            continue
        net = model.block.field.net
        block = _block(library, net, counter, solver)
        input_map = Augment(augment_dim) if augment_dim else nn.Identity()
        out.append(Contender(library, NeuralODE(input_map, block, model.output_map), counter))
    return out


def _block(library: str, net: nn.Sequential, counter: NFECounter, solver: SolverSpec):
    builders: dict[str, Callable[[], nn.Module]] = {
        "torchdiffeq": lambda: _TorchdiffeqBlock(_CountedField(net, counter), solver),
        "torchdyn": lambda: _TorchdynBlock(net, counter, solver),
    }
    return builders[library]()
