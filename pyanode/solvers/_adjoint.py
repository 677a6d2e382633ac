"""The backsolve adjoint as a `torch.autograd.Function` (Chen et al. 2018; Kidger et al. 2021)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from pyanode.solvers._fused import (
    AbstractFusedKernel,
    AbstractStageKernel,
    GradientSum,
    fused_kernel_of,
)
from pyanode.solvers._problem import (
    Problem,
    SolveRequest,
    default_stepper,
    float_below,
    integrate_forward,
    make_stops,
    mixed_rms_norm,
    time_factory,
)
from pyanode.solvers._stepper import BufferStepper, FusedStep, PlainKernel


def adjoint_solve(request: SolveRequest, seminorm: bool) -> torch.Tensor:
    """Solve `request` without a graph; its backward pass is the adjoint solve."""
    f = request.f
    # With the seminorm the parameter integrals do not steer the steps, so a fused field's
    # adjoint integrates [y, a] only and sums the parameter gradients over the accepted stages.
    kernel = fused_kernel_of(f, request.y0, request.args) if seminorm else None
    if kernel is not None:
        grad_args, params = kernel.arg_tensors, kernel.params
    else:
        grad_args = tuple(a for a in _tensors_of(request.args) if a.requires_grad)
        params = ()
        if isinstance(f, nn.Module):
            params = tuple(p for p in f.parameters() if p.requires_grad)
    state = _AdjointState(request, seminorm, grad_args, params, kernel)
    return _AdjointFunction.apply(state, request.y0, *grad_args, *params)


def _tensors_of(args: Any) -> tuple[torch.Tensor, ...]:
    if isinstance(args, torch.Tensor):
        return (args,)
    if isinstance(args, (tuple, list)):
        return tuple(a for a in args if isinstance(a, torch.Tensor))
    return ()


def _replace_tensors(args: Any, old: tuple[torch.Tensor, ...], new: list[torch.Tensor]) -> Any:
    """`args` with each tensor of `old` (by identity) replaced by the matching one of `new`."""
    swap = {id(o): n for o, n in zip(old, new, strict=True)}
    if isinstance(args, torch.Tensor):
        return swap.get(id(args), args)
    if isinstance(args, (tuple, list)):
        items = [swap.get(id(a), a) if isinstance(a, torch.Tensor) else a for a in args]
        if type(args) in (tuple, list):
            return type(args)(items)
        return type(args)(*items)  # a namedtuple
    return args


class _AdjointState:
    """What the autograd Function keeps between forward and backward (no tensors of the graph)."""

    def __init__(
        self,
        request: SolveRequest,
        seminorm: bool,
        grad_args: tuple[torch.Tensor, ...],
        params: tuple[torch.Tensor, ...],
        kernel: AbstractFusedKernel | None,
    ):
        self.request = request
        self.seminorm = seminorm
        self.grad_args = grad_args
        self.params = params
        self.kernel = kernel


class _AdjointFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, state: _AdjointState, y0: torch.Tensor, *tensors: torch.Tensor):
        r = state.request
        kernel = state.kernel
        if kernel is not None:
            x0 = kernel.to_state(y0)
            stepper = BufferStepper(kernel, r.solver, x0)
        else:
            x0 = y0
            stepper = default_stepper(r.f, y0, r.args, r.solver)
        y1, saved, counts = integrate_forward(
            stepper, x0, r.solver, r.controller, r.t0, r.t1, r.save_ts, r.jump_ts
        )
        r.stats.nfe_forward = counts.nfe
        r.stats.n_accepted = counts.n_accepted
        r.stats.n_rejected = counts.n_rejected
        ys = torch.stack(saved) if r.save_ts else y1
        if kernel is not None:
            ys = kernel.from_state(ys).contiguous()
        ctx.state = state
        ctx.save_for_backward(ys)
        return ys

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_ys: torch.Tensor):
        state: _AdjointState = ctx.state
        (ys,) = ctx.saved_tensors
        if state.kernel is not None:
            grads = _fused_adjoint_backward(state, ys, grad_ys)
        else:
            grads = _adjoint_backward(state, ys, grad_ys)
        return (None, *grads)


def _adjoint_backward(
    state: _AdjointState, ys: torch.Tensor, grad_ys: torch.Tensor
) -> list[torch.Tensor | None]:
    """Integrate the adjoint system from the last output time to `t0`.

    Returns the gradients for `(y0, *grad_args, *params)`.
    """
    r = state.request
    f = r.f
    shape = r.y0.shape
    dtype, device = ys.dtype, ys.device
    n = r.y0.numel()
    params = state.params
    leaves = [a.detach().requires_grad_() for a in state.grad_args]
    args = _replace_tensors(r.args, state.grad_args, leaves)
    wrt = (*params, *leaves)
    sizes = [w.numel() for w in wrt]
    n_theta = sum(sizes[: len(params)])
    n_total = 2 * n + sum(sizes)

    if r.save_ts:
        t_start = r.save_ts[-1]
        y_start, a_start = ys[-1], grad_ys[-1]
    else:
        t_start = r.t1
        y_start, a_start = ys, grad_ys
    z0 = torch.cat(
        [
            y_start.reshape(-1),
            a_start.reshape(-1),
            torch.zeros(n_total - 2 * n, dtype=dtype, device=device),
        ]
    )
    if t_start != r.t0:
        segments = [(0, n), (n, 2 * n)]
        if not state.seminorm:
            segments += [(2 * n, 2 * n + n_theta), (2 * n + n_theta, n_total)]
            segments = [(a, b) for a, b in segments if b > a]

        def on_save(i: int, t: float, z: torch.Tensor) -> torch.Tensor:
            z = z.clone()
            z[:n] = ys[i].reshape(-1)
            z[n : 2 * n] += grad_ys[i].reshape(-1)
            return z

        make_t = time_factory(dtype, device)
        field = _AugmentedField(f, shape, n, wrt)
        problem = Problem(
            stepper=BufferStepper(PlainKernel(field, args, make_t), r.solver, z0),
            solver=r.solver,
            t0=t_start,
            t1=r.t0,
            stops=make_stops(t_start, r.t0, r.save_ts, r.jump_ts, dtype),
            norm=mixed_rms_norm(segments),
            on_save=on_save if r.save_ts else None,
            t0_below=float_below(t_start, dtype) if t_start in r.jump_ts else t_start,
        )
        with torch.no_grad():
            z = problem.stepper.finish(r.controller.integrate(problem, z0))
        r.stats.nfe_backward += problem.counts.nfe
    else:
        z = z0  # saveat == [t0]: nothing to integrate

    grads: list[torch.Tensor | None] = [z[n : 2 * n].reshape(shape)]
    offset = 2 * n
    for w, size in zip(wrt, sizes, strict=True):
        grads.append(z[offset : offset + size].view_as(w))
        offset += size
    # The Function's inputs are (y0, *grad_args, *params); wrt is (*params, *leaves).
    n_params = len(params)
    return [grads[0], *grads[1 + n_params :], *grads[1 : 1 + n_params]]


def _fused_adjoint_backward(
    state: _AdjointState, ys: torch.Tensor, grad_ys: torch.Tensor
) -> list[torch.Tensor | None]:
    """The seminorm adjoint of a fused field: integrate `[y, a]` from the last output time to
    `t0`; `a_theta` and `a_args` are the stages' VJPs summed with the steps' weights `-h b_i`.

    Returns the gradients for `(y0, *kernel.arg_tensors, *kernel.params)`.
    """
    r = state.request
    kernel = state.kernel
    n = r.y0.numel()
    dtype = ys.dtype
    t_start = r.save_ts[-1] if r.save_ts else r.t1
    # the state [y, a] stacked on a new first axis, in the kernel's layout
    ys, grad_ys = kernel.to_state(ys), kernel.to_state(grad_ys)
    y_start, a_start = (ys[-1], grad_ys[-1]) if r.save_ts else (ys, grad_ys)
    z = torch.stack([y_start, a_start])
    if t_start == r.t0:  # saveat == [t0]: nothing to integrate
        params, args = kernel.gradients([], None)
        return [kernel.from_state(z[1]), *args, *params]

    def on_save(i: int, t: float, z: torch.Tensor) -> torch.Tensor:
        z = z.clone()
        z[0] = ys[i]
        z[1] += grad_ys[i]
        return z

    # a_theta and a_args: each accepted step adds its stages' VJPs with the weights -h b_i;
    # summed in chunks (the steps' buffers are recycled after), so memory stays flat
    sums = GradientSum(kernel)
    b = r.solver._plan.coefficients(z).b_floats

    def on_accept(step: FusedStep) -> None:
        folded = False
        for i, b_i in enumerate(b):
            if b_i != 0.0:
                folded |= sums.add(step.saved[i], -step.h * b_i)
        if folded:  # pending records are the last step's; a FSAL next step reads its last
            stepper.release(keep_last=True)

    stepper = BufferStepper(_AdjointKernel(kernel), r.solver, z, record=True, on_accept=on_accept)
    scale = 1.0 / math.sqrt(n)

    def norm(e: torch.Tensor) -> float:  # the seminorm: the larger RMS of the y and a parts
        return torch.linalg.vector_norm(e.view(2, -1), dim=1).max().item() * scale

    problem = Problem(
        stepper=stepper,
        solver=r.solver,
        t0=t_start,
        t1=r.t0,
        stops=make_stops(t_start, r.t0, r.save_ts, r.jump_ts, dtype),
        norm=norm,
        on_save=on_save if r.save_ts else None,
        t0_below=float_below(t_start, dtype) if t_start in r.jump_ts else t_start,
    )
    z = stepper.finish(r.controller.integrate(problem, z))
    r.stats.nfe_backward += problem.counts.nfe
    params, args = sums.result()
    stepper.release()
    return [kernel.from_state(z[1]), *args, *params]


class _AdjointKernel(AbstractStageKernel):
    """`[f(t, y), -a df/dy]` on the state `[y, a]` (stacked on the first axis) through a fused
    kernel; saves the VJP record, from which `kernel.gradients` forms the parameter and `args`
    integrands `-a df/dtheta` and `-a df/dargs`."""

    def __init__(self, kernel: AbstractFusedKernel):
        self.kernel = kernel

    def evaluate(self, t, z, out, save):
        if out is None:
            out = torch.empty_like(z)
        y, a = z.unbind(0)
        f_out, a_out = out.unbind(0)
        _, saved = self.kernel.evaluate(t, y, f_out, True)
        _, record = self.kernel.vjp(saved, a, a_out, negate=True)
        return out, (record if save else None)


class _AugmentedField:
    """`[f, -a df/dy, -a df/dtheta, -a df/dargs]` on the flat state `[y, a, a_theta, a_args]`."""

    def __init__(self, f, shape: torch.Size, n: int, wrt: tuple[torch.Tensor, ...]):
        self.f, self.shape, self.n, self.wrt = f, shape, n, wrt

    def __call__(self, t: torch.Tensor, z: torch.Tensor, args: Any) -> torch.Tensor:
        n, shape = self.n, self.shape
        with torch.enable_grad():
            y = z[:n].detach().view(shape).requires_grad_()
            fy = self.f(t, y, args)
            inputs = (y, *self.wrt)
            if fy.requires_grad:
                vjps = torch.autograd.grad(
                    fy, inputs, grad_outputs=-z[n : 2 * n].view(shape), allow_unused=True
                )
            else:
                vjps = (None,) * len(inputs)
        parts = [fy.detach().reshape(-1)]
        for g, x in zip(vjps, inputs, strict=True):
            if g is None:
                g = torch.zeros(x.numel(), dtype=z.dtype, device=z.device)
            parts.append(g.reshape(-1))
        return torch.cat(parts)
