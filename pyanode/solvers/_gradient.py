"""How gradients flow through a solve: backpropagation through the steps, or the adjoint."""

from __future__ import annotations

import abc
from dataclasses import dataclass

import torch

from pyanode.solvers._adjoint import adjoint_solve
from pyanode.solvers._fused import AbstractFusedKernel, fused_kernel_of
from pyanode.solvers._fused_backprop import fused_backprop, fused_forward
from pyanode.solvers._problem import SolveRequest, default_stepper, integrate_forward
from pyanode.solvers._solution import SolverStats


class AbstractGradientMethod(abc.ABC):
    """How `solve` is differentiated; a final subclass is a frozen dataclass of its options."""

    @abc.abstractmethod
    def run(self, request: SolveRequest) -> torch.Tensor:
        """Solve `request` and return `ys` (stacked saves, or the final state), fill its stats."""


@dataclass(frozen=True)
class Backprop(AbstractGradientMethod):
    """Differentiate through the operations of the solver ("discretise-then-optimise").

    Exact gradients of the computed solution, at the memory cost of keeping every accepted
    step's stages; the step-size decisions are not differentiated (they are detached). Rejected
    steps and the initial step selection are not in the graph.
    `SolverStats.nfe_backward` counts the vector-Jacobian products through `f` when backward runs.

    A field with a fused kernel (`AbstractFusedField`, e.g. `MLPField`) is not recorded op by
    op: the solve is one autograd node whose backward runs the steps' VJP by hand (stage by
    stage, in reverse) with the kernel's VJPs, the same gradients to round-off at a fraction of
    the cost; higher-order gradients then raise (pass the field as a plain function for them).
    """

    def run(self, request: SolveRequest) -> torch.Tensor:
        r = request
        kernel = fused_kernel_of(r.f, r.y0, r.args)
        if kernel is not None:
            if _needs_grad(r.y0, kernel):
                ys, counts = fused_backprop(r, kernel)
            else:
                ys, counts = fused_forward(r, kernel)
        else:
            stepper = default_stepper(r.f, r.y0, r.args, r.solver)
            y1, saved, counts = integrate_forward(
                stepper, r.y0, r.solver, r.controller, r.t0, r.t1, r.save_ts, r.jump_ts
            )
            ys = torch.stack(saved) if r.save_ts else y1
        stats = r.stats
        stats.nfe_forward = counts.nfe
        stats.n_accepted = counts.n_accepted
        stats.n_rejected = counts.n_rejected
        if ys.requires_grad:
            ys.register_hook(_CountBackward(stats, counts.nfe_graph))
        return ys


def _needs_grad(y0: torch.Tensor, kernel: AbstractFusedKernel) -> bool:
    if not torch.is_grad_enabled():
        return False
    tensors = (y0, *kernel.arg_tensors, *kernel.params)
    return any(t.requires_grad for t in tensors)


class _CountBackward:
    """A tensor hook adding the graph's vector-field evaluations to `nfe_backward`."""

    def __init__(self, stats: SolverStats, nfe: int):
        self.stats, self.nfe = stats, nfe

    def __call__(self, grad: torch.Tensor) -> None:
        self.stats.nfe_backward += self.nfe


@dataclass(frozen=True)
class Adjoint(AbstractGradientMethod):
    """The backsolve adjoint of Chen et al. (2018), "Neural Ordinary Differential Equations".

    The forward solve keeps no graph. Backward integrates `[y, a, a_theta, a_args]` from `t1`
    to `t0` with the same solver and controller: `dy/dt = f`, `da/dt = -a df/dy`,
    `da_theta/dt = -a df/dtheta`, `da_args/dt = -a df/dargs`, one vector-Jacobian product per
    evaluation. At each `saveat` time the state is reset to the saved forward value and that
    time's incoming gradient is added to `a`. Gradients reach `y0`, the tensors in `args` (a
    tensor, or the tensors of a tuple/list) that require grad, and, when `f` is an
    `nn.Module`, its parameters that require grad; tensors captured by `f` in any other way get
    no gradient. Higher-order gradients are not supported.

    With the seminorm and a fused field (`AbstractFusedField`), the parameter and `args`
    integrals do not steer the steps, so only `[y, a]` is integrated and `a_theta`, `a_args`
    are the accepted stages' VJPs summed with the step's weights `h b_i`, which is what the
    Runge–Kutta method computes for them.

    The backward solve recomputes `y` backwards in time, so for a vector field that is unstable
    backwards the gradients lose accuracy (a known weakness of the backsolve adjoint); use
    `Backprop` when in doubt.

    Arguments:
        seminorm: measure the backward error on `y` and `a` only, not on the parameter- and
            args-gradient integrals (Kidger, Chen & Lyons 2021, "Hey, that's not an ODE");
            usually fewer backward steps at the same gradient accuracy. False uses the largest
            RMS norm over all four parts.

    Raises:
        TypeError: if `seminorm` is not a bool.
    """

    seminorm: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.seminorm, bool):
            raise TypeError(f"Adjoint seminorm must be True or False, got {self.seminorm!r}")

    def run(self, request: SolveRequest) -> torch.Tensor:
        return adjoint_solve(request, self.seminorm)


GRADIENTS: dict[str, type[AbstractGradientMethod]] = {"backprop": Backprop, "adjoint": Adjoint}


def gradient_from_name(name: str, *, seminorm: bool = True) -> AbstractGradientMethod:
    """The gradient method registered as `name` in `GRADIENTS`.

    **Arguments:**

    - `name`: `"backprop"` or `"adjoint"`.
    - `seminorm`: passed to `Adjoint`; ignored by `Backprop`.

    **Raises:**

    `ValueError`: if `name` is not a key of `GRADIENTS`.
    """
    if name == "adjoint":
        return Adjoint(seminorm=seminorm)
    if name == "backprop":
        return Backprop()
    raise ValueError(
        f"unknown gradient method {name!r}; accepted names: {', '.join(map(repr, GRADIENTS))}"
    )
