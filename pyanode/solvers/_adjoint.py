"""`Adjoint`: the backsolve adjoint (Chen et al. 2018; Kidger, Chen & Lyons 2021).

The forward solve keeps nothing. Backward integrates, from the last output time to `t0`, with
the same solver, controller and loop as the forward,

    dy/dt = f,   da/dt = -a df/dy,   da_x/dt = -a df/dx for each input x (args, parameters),

through one stage kernel: each evaluation is one `f` and one VJP of the field's kernel (fused or
autograd). With the seminorm the `a_x` do not steer the steps, so only `[y, a]` is integrated
and `a_x` is the accepted stages' VJP records summed with the steps' weights `-h b_i` (what the
Runge–Kutta method computes for a quadrature); with the full norm `a_x` is part of the state.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.autograd.function import once_differentiable

from pyanode.solvers._kernel import AbstractStageKernel, GradientSum, stage_kernel
from pyanode.solvers._loop import forward, integrate
from pyanode.solvers._problem import AbstractGradientMethod, SolveRequest
from pyanode.solvers._step import Step, Stepper, mixed_rms_norm


@dataclass(frozen=True)
class Adjoint(AbstractGradientMethod):
    """The backsolve adjoint of Chen et al. (2018), "Neural Ordinary Differential Equations".

    The forward solve keeps no graph. Backward integrates `[y, a, a_x]` from `t1` to `t0` with
    the same solver and controller: `dy/dt = f`, `da/dt = -a df/dy`, `da_x/dt = -a df/dx`, one
    vector-Jacobian product per evaluation. At each `saveat` time the state is reset to the
    saved forward value and that time's incoming gradient is added to `a`. Gradients reach `y0`
    and the tensors `x` that `Backprop` differentiates: the tensors of `args` that require
    grad, the parameters of `f` (an `nn.Module`) and the leaf tensors a closure `f` reaches.
    Higher-order gradients are not supported.

    The backward solve recomputes `y` backwards in time, so for a vector field that is unstable
    backwards the gradients lose accuracy (a known weakness of the backsolve adjoint); use
    `Backprop` when in doubt.

    Arguments:
        seminorm: measure the backward error on `y` and `a` only, not on the `a_x` integrals
            (Kidger, Chen & Lyons 2021, "Hey, that's not an ODE"); usually fewer backward steps
            at the same gradient accuracy. False uses the largest RMS norm over `y`, `a`, the
            `args` integrals and the parameter integrals.

    Raises:
        TypeError: if `seminorm` is not a bool.
    """

    seminorm: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.seminorm, bool):
            raise TypeError(f"Adjoint seminorm must be True or False, got {self.seminorm!r}")

    def run(self, request: SolveRequest) -> torch.Tensor:
        r = request
        kernel = stage_kernel(r.f, r.y0, r.args, keeps_inputs=False)
        x0 = kernel.to_state(r.y0)
        stepper = kernel.stepper(r.solver, x0, tolerances=r.controller.tolerances)
        xs, counts = forward(stepper, r, x0)
        r.stats.nfe_forward = counts.nfe
        r.stats.n_accepted = counts.n_accepted
        r.stats.n_rejected = counts.n_rejected
        ys = kernel.from_state(xs)
        inputs = kernel.inputs
        if not torch.is_grad_enabled() or not any(x.requires_grad for x in (r.y0, *inputs)):
            return ys
        backward = _Backward(r, kernel, self.seminorm, ys)
        return _AdjointFunction.apply(backward, r.y0, *inputs)


class _AdjointFunction(torch.autograd.Function):
    """The forward solve as one autograd node (its result computed already); backward is the
    adjoint solve."""

    @staticmethod
    def forward(ctx, backward: _Backward, y0: torch.Tensor, *inputs: torch.Tensor):
        ctx.backward = backward
        ys, backward.ys = backward.ys, None  # the node's output (saved, not kept in a cycle)
        ctx.save_for_backward(ys)
        return ys

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_ys: torch.Tensor):
        (ys,) = ctx.saved_tensors
        with torch.no_grad():
            return (None, *ctx.backward(ys, grad_ys))


class _Backward:
    """The adjoint solve that differentiates one forward solve."""

    def __init__(self, request: SolveRequest, kernel: AbstractStageKernel, seminorm: bool, ys):
        self.request, self.kernel, self.seminorm = request, kernel, seminorm
        self.ys: torch.Tensor | None = ys  # the forward's result, until the node takes it

    def __call__(self, ys: torch.Tensor, grad_ys: torch.Tensor) -> list[torch.Tensor | None]:
        """The gradients for `(y0, *kernel.inputs)` from the forward's result `ys`."""
        r, kernel = self.request, self.kernel
        inputs = kernel.inputs
        ys, grad_ys = kernel.to_state(ys), kernel.to_state(grad_ys)
        y_start, a_start = (ys[-1], grad_ys[-1]) if r.save_ts else (ys, grad_ys)
        shape, n = y_start.shape, y_start.numel()
        sizes = [x.numel() for x in inputs] if not self.seminorm else []
        t_start = r.save_ts[-1] if r.save_ts else r.t1
        if sizes:  # the full norm: the flat state [y, a, a_args, a_params]
            z = torch.cat([y_start.reshape(-1), a_start.reshape(-1), y_start.new_zeros(sum(sizes))])
            n_args = sum(sizes[: len(kernel.arg_tensors)])
            ends = [n, 2 * n, 2 * n + n_args, 2 * n + sum(sizes)]
            segments = [(a, b) for a, b in zip([0, *ends], ends, strict=False) if b > a]
        else:  # [y, a] stacked on a new first axis
            z = torch.stack([y_start, a_start])
            segments = [(0, n), (n, 2 * n)]
        adjoint = _AdjointKernel(kernel, shape, n, sizes)
        if t_start == r.t0:  # saveat == [t0]: nothing to integrate
            return [kernel.from_state(adjoint.parts(z)[1]), *([None] * len(inputs))]

        def on_save(i: int, t: float, z: torch.Tensor) -> torch.Tensor:
            z = z.clone()
            y, a = adjoint.parts(z)
            y.copy_(ys[i])
            a.add_(grad_ys[i])
            return z

        sums = GradientSum(kernel)
        b = r.solver.coefficients(z).b_floats

        def on_accept(step: Step) -> None:  # the seminorm's a_x: the stages' VJPs, -h b_i each
            folded = False
            for i, b_i in enumerate(b):
                if b_i != 0.0:
                    folded |= sums.add(step.saved[i], -(step.t1 - step.t0) * b_i)
            if folded:  # pending records are the last step's; a FSAL next step reads its last
                stepper.release(keep_last=True)

        record = not sizes and bool(inputs)
        stepper = Stepper(
            adjoint,
            r.solver,
            z,
            tolerances=r.controller.tolerances,
            norm=mixed_rms_norm(segments),
            record=record,
            on_accept=on_accept if record else None,
        )
        reset = on_save if r.save_ts else None
        z, counts = integrate(stepper, r.controller, z, t_start, r.t0, r.save_ts, r.jump_ts, reset)
        z = stepper.finish(z)
        r.stats.nfe_backward += counts.nfe
        grad_y0 = kernel.from_state(adjoint.parts(z)[1])
        if sizes:
            flat = z[2 * n :].split(sizes)
            return [grad_y0, *(g.view_as(x) for g, x in zip(flat, inputs, strict=True))]
        grads = sums.result() if record else []
        stepper.release()
        return [grad_y0, *grads]


class _AdjointKernel:
    """The adjoint system as the stepper's right-hand side (it is never differentiated):
    `[f(t, y), -a df/dy]` on `[y, a]` stacked on a first axis, through a field's kernel; with
    `sizes` (the full norm) `[f, -a df/dy, -a df/dx...]` on the flat `[y, a, a_x...]`. Saves
    the VJP record, from which the field's kernel forms the integrands `-a df/dx`."""

    keeps_inputs = False  # each evaluation's VJP comes at once

    def __init__(self, kernel: AbstractStageKernel, shape: torch.Size, n: int, sizes: list[int]):
        self.kernel, self.shape, self.n, self.sizes = kernel, shape, n, sizes

    def parts(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The views `(y, a)` of an adjoint state `z`."""
        if not self.sizes:
            return z.unbind(0)
        n = self.n
        return z[:n].view(self.shape), z[n : 2 * n].view(self.shape)

    def evaluate(self, t, z, out, save):
        if out is None:
            out = torch.empty_like(z)
        y, a = self.parts(z)
        f_out, a_out = self.parts(out)
        _, saved = self.kernel.evaluate(t, y, f_out, True)
        _, record = self.kernel.vjp(saved, a, a_out, negate=True)
        if self.sizes:
            grads = self.kernel.gradients([record], None)
            for g, part in zip(grads, out[2 * self.n :].split(self.sizes), strict=True):
                if g is None:
                    part.zero_()
                else:
                    torch.neg(g.reshape(-1), out=part)
        return out, (record if save else None)

    def evaluate_first(self, t, z, save):
        return self.evaluate(t, z, None, save)
