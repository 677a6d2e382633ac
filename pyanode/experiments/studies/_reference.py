"""Float64 reference solutions and gradients, and the checks that they are converged.

The reference of a problem is its float64 copy solved by our Dopri5 at `rtol = atol = 1e-12`.
It is accepted only when solving again at half the tolerance changes it by less than `converged`
(1e-10, relative); it is cross-checked against our Tsit5 at the same tolerance, against scipy's
DOP853 (when scipy is installed) and against the closed form where the problem has one. The
gradient reference is backprop through the same solve, checked the same way and against the
full-norm adjoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import torch

from pyanode.experiments.studies._measure import relative_error
from pyanode.experiments.studies._problems import StudyProblem
from pyanode.solvers import (
    AbstractGradientMethod,
    AbstractSolver,
    AbstractStepSizeController,
    Adjoint,
    Backprop,
    Dopri5,
    PIController,
    SolverStats,
    Tsit5,
)

REFERENCE_RTOL = 1e-12
CONVERGED = 1e-10  # the largest relative change of the reference when its tolerance is halved
AGREE = 1e-8  # the largest relative difference to an independent solver or the closed form
_MAX_STEPS = 1_000_000


class ReferenceNotConverged(RuntimeError):
    """The float64 reference changed more than allowed when its tolerance was halved, or
    disagreed with an independent solver: the study's errors would measure the reference."""


@dataclass(frozen=True)
class ForwardReference:
    """The reference end state and its checks.

    Arguments:
        y1: `y(t1)` in float64 on the CPU.
        rtol: the tolerance it was solved at (`atol = rtol`).
        nfe: its forward NFE.
        halving_change: relative change of `y1` when solved at `rtol / 2`.
        tsit5_change: relative difference to our Tsit5 at `rtol`.
        scipy_change: relative difference to scipy's DOP853 at `rtol` (NaN without scipy).
        exact_change: relative difference to the closed form (NaN without one).
    """

    y1: torch.Tensor
    rtol: float
    nfe: int
    halving_change: float
    tsit5_change: float
    scipy_change: float
    exact_change: float

    def checks(self) -> dict[str, Any]:
        """The plain numbers of the checks (for study.json)."""
        checks = _plain_numbers(self, "dp5 (float64)")
        checks["scipy_dop853_change"] = checks.pop("scipy_change")
        return checks


@dataclass(frozen=True)
class GradientReference:
    """The reference loss and parameter gradient and their checks.

    Arguments:
        loss: the loss at the reference solution.
        gradient: the flat parameter gradient in float64 on the CPU.
        rtol: the tolerance (`atol = rtol`) of the backprop-through-Dopri5 solve.
        nfe_forward, nfe_backward: its NFE.
        halving_change: relative change of the gradient at `rtol / 2`.
        adjoint_change: relative difference to the full-norm adjoint at `rtol`.
        exact_change: relative difference to the gradient of the closed form (NaN without one).
    """

    loss: float
    gradient: torch.Tensor
    rtol: float
    nfe_forward: int
    nfe_backward: int
    halving_change: float
    adjoint_change: float
    exact_change: float

    def checks(self) -> dict[str, Any]:
        """The plain numbers of the checks (for study.json)."""
        return _plain_numbers(self, "dp5 (float64), backprop")


def _plain_numbers(reference: ForwardReference | GradientReference, solver: str) -> dict[str, Any]:
    """The fields of `reference` that are numbers (its tensors left out), with the `solver` it
    was computed by and its `atol` (equal to `rtol`)."""
    numbers = {
        f.name: getattr(reference, f.name)
        for f in fields(reference)
        if not isinstance(getattr(reference, f.name), torch.Tensor)
    }
    return {"solver": solver, "atol": reference.rtol, **numbers}


def _tight(rtol: float) -> PIController:
    return PIController(rtol=rtol, atol=rtol, max_steps=_MAX_STEPS)


def end_state(
    problem: StudyProblem, solver: AbstractSolver, controller: AbstractStepSizeController
) -> tuple[torch.Tensor, SolverStats]:
    """`y(t1)` without a graph, and the solve's statistics."""
    with torch.no_grad():
        sol = problem.solve(solver, controller)
    return sol.ys, sol.stats


def loss_and_gradient(
    problem: StudyProblem,
    solver: AbstractSolver,
    controller: AbstractStepSizeController,
    gradient: AbstractGradientMethod,
) -> tuple[torch.Tensor, torch.Tensor, SolverStats]:
    """The loss, its flat gradient with respect to `problem.parameter_list()` and the stats.

    Parameters that the loss does not reach get zero gradient.
    """
    params = problem.parameter_list()
    with torch.enable_grad():
        sol = problem.solve(solver, controller, gradient)
        loss = problem.loss(sol.ys)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
    flat = torch.cat(
        [
            (torch.zeros_like(p) if g is None else g).reshape(-1)
            for g, p in zip(grads, params, strict=True)
        ]
    )
    return loss.detach(), flat, sol.stats


def forward_reference(
    problem: StudyProblem,
    *,
    rtol: float = REFERENCE_RTOL,
    converged: float = CONVERGED,
    agree: float = AGREE,
) -> ForwardReference:
    """The float64 reference `y(t1)` of `problem`, checked (see the module docstring).

    Raises:
        ReferenceNotConverged: if halving the tolerance changes `y(t1)` by more than `converged`,
            or Tsit5, scipy's DOP853 or the closed form differ from it by more than `agree`.
    """
    p64 = problem.converted(torch.float64)
    y1, stats = end_state(p64, Dopri5(), _tight(rtol))
    half, _ = end_state(p64, Dopri5(), _tight(rtol / 2))
    other, _ = end_state(p64, Tsit5(), _tight(rtol))
    ref = ForwardReference(
        y1=y1.cpu(),
        rtol=rtol,
        nfe=stats.nfe_forward,
        halving_change=relative_error(half, y1),
        tsit5_change=relative_error(other, y1),
        scipy_change=_scipy_change(p64, y1, rtol),
        exact_change=math.nan if p64.exact is None else _exact_change(p64, y1),
    )
    _check(problem.name, "y(t1)", ref.halving_change, converged, rtol)
    for what, change in (
        ("Tsit5", ref.tsit5_change),
        ("scipy DOP853", ref.scipy_change),
        ("the closed form", ref.exact_change),
    ):
        _check_agree(problem.name, what, change, agree)
    return ref


def gradient_reference(
    problem: StudyProblem,
    *,
    rtol: float = REFERENCE_RTOL,
    converged: float = CONVERGED,
    agree: float = AGREE,
) -> GradientReference:
    """The float64 reference loss gradient of `problem`, checked (see the module docstring).

    Raises:
        ReferenceNotConverged: if halving the tolerance changes the gradient by more than
            `converged`, or the adjoint or the closed form differ from it by more than `agree`.
    """
    p64 = problem.converted(torch.float64)
    loss, grad, stats = loss_and_gradient(p64, Dopri5(), _tight(rtol), Backprop())
    _, half, _ = loss_and_gradient(p64, Dopri5(), _tight(rtol / 2), Backprop())
    _, adjoint, _ = loss_and_gradient(p64, Dopri5(), _tight(rtol), Adjoint(seminorm=False))
    exact_change = math.nan
    if p64.exact is not None:
        params = p64.parameter_list()
        exact_loss = p64.loss(p64.exact(p64))
        exact = torch.cat([g.reshape(-1) for g in torch.autograd.grad(exact_loss, params)])
        exact_change = relative_error(grad, exact)
    ref = GradientReference(
        loss=loss.item(),
        gradient=grad.cpu(),
        rtol=rtol,
        nfe_forward=stats.nfe_forward,
        nfe_backward=stats.nfe_backward,
        halving_change=relative_error(half, grad),
        adjoint_change=relative_error(adjoint, grad),
        exact_change=exact_change,
    )
    _check(problem.name, "the gradient", ref.halving_change, converged, rtol)
    _check_agree(problem.name, "the full-norm adjoint", ref.adjoint_change, agree)
    _check_agree(problem.name, "the closed form's gradient", ref.exact_change, agree)
    return ref


def _check(name: str, what: str, change: float, converged: float, rtol: float) -> None:
    if not change <= converged:
        raise ReferenceNotConverged(
            f"the reference of problem {name!r} is not converged: halving rtol={rtol:g} changes "
            f"{what} by {change:.3g} (relative) > {converged:g}; lower the reference rtol, "
            "shorten t1 or check the problem for instability"
        )


def _check_agree(name: str, what: str, change: float, agree: float) -> None:
    if not math.isnan(change) and not change <= agree:
        raise ReferenceNotConverged(
            f"the reference of problem {name!r} differs from {what} by {change:.3g} (relative) "
            f"> {agree:g}; the problem may be too sensitive for a float64 reference"
        )


def _exact_change(p64: StudyProblem, y1: torch.Tensor) -> float:
    with torch.no_grad():
        return relative_error(p64.exact(p64), y1)


def _scipy_change(p64: StudyProblem, y1: torch.Tensor, rtol: float) -> float:
    """Relative difference between `y1` and scipy's DOP853 on the same problem (NaN without
    scipy). A field with jumps is integrated piece by piece, each piece's field evaluated just
    below its end (the convention of `solve`'s `jump_ts`)."""
    try:
        from scipy.integrate import solve_ivp
    except ImportError:
        return math.nan
    cpu = p64.converted(torch.float64, "cpu")
    with torch.no_grad():
        y0, args, field = cpu.y0(), cpu.args(), cpu.field
        shape = y0.shape
        breaks = [0.0, *[t for t in (cpu.jump_ts or ()) if 0.0 < t < cpu.t1], cpu.t1]
        y = y0.reshape(-1).numpy()
        for a, b in zip(breaks, breaks[1:], strict=False):
            below = math.nextafter(b, -math.inf) if b != cpu.t1 else b

            def f(t: float, yy, below=below):
                tt = torch.tensor(min(t, below), dtype=torch.float64)
                state = torch.from_numpy(yy).reshape(shape)
                return field(tt, state, args).reshape(-1).numpy()

            sol = solve_ivp(f, (a, b), y, method="DOP853", rtol=rtol, atol=rtol)
            if not sol.success:
                return math.nan
            y = sol.y[:, -1]
    return relative_error(torch.from_numpy(y).reshape(shape), y1)
