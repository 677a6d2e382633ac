"""The continuous adjoints: backsolve (Chen et al. 2018) and interpolating (as SciMLSensitivity's
`InterpolatingAdjoint`), one backward solve for both.

Backward integrates, from the last output time to `t0`, with the same loop and step as the
forward (and by default the same solver and controller),

    da/dt = -a df/dy,   da_x/dt = -a df/dx for each input x (args, parameters),

through one stage kernel: each evaluation is one `f` and one VJP of the field's kernel (fused or
autograd). The two differ in where `y(t)` comes from: the backsolve adjoint integrates `dy/dt =
f` backwards beside `a` (no memory, but a field unstable backwards loses accuracy); the
interpolating adjoint keeps the forward's accepted steps and reads `y(t)` from their continuous
extension (the tableau's dense output), so `y` is never integrated backwards. With the seminorm
the `a_x` do not steer the steps, so they are the accepted stages' VJP records summed with the
steps' weights `-h b_i` (what the Runge–Kutta method computes for a quadrature); with the full
norm `a_x` is part of the state.
"""

from __future__ import annotations

import bisect
import weakref
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch.autograd.function import once_differentiable

from pyanode.solvers._controller import AbstractStepSizeController
from pyanode.solvers._kernel import AbstractStageKernel, GradientSum, stage_kernel
from pyanode.solvers._loop import forward, integrate
from pyanode.solvers._problem import AbstractGradientMethod, SolveRequest
from pyanode.solvers._step import Step, Stepper, give, mixed_rms_norm
from pyanode.solvers._tableau import AbstractSolver


@dataclass(frozen=True)
class AbstractAdjoint(AbstractGradientMethod):
    """A continuous adjoint; a final subclass says where `y(t)` comes from (`interpolate`).

    Arguments:
        seminorm: measure the backward error on `y` and `a` only, not on the `a_x` integrals
            (Kidger, Chen & Lyons 2021, "Hey, that's not an ODE"); usually fewer backward steps
            at the same gradient accuracy. False uses the largest RMS norm over `y`, `a`, the
            `args` integrals and the parameter integrals.
        solver: the backward solve's method (None: the forward's).
        controller: the backward solve's controller and tolerances (None: the forward's).

    Raises:
        TypeError: if `seminorm` is not a bool, or `solver`/`controller` not a solver/controller.
    """

    seminorm: bool = True
    solver: AbstractSolver | None = None
    controller: AbstractStepSizeController | None = None
    interpolate: ClassVar[bool]

    def __post_init__(self) -> None:
        name = type(self).__name__
        if not isinstance(self.seminorm, bool):
            raise TypeError(f"{name} seminorm must be True or False, got {self.seminorm!r}")
        if self.solver is not None and not isinstance(self.solver, AbstractSolver):
            raise TypeError(
                f"{name} solver must be a solver such as Dopri5() or None, got {self.solver!r}"
            )
        if self.controller is not None:
            if not isinstance(self.controller, AbstractStepSizeController):
                raise TypeError(
                    f"{name} controller must be a controller such as PIController(rtol, atol) "
                    f"or None, got {self.controller!r}"
                )
            if self.solver is not None:
                self.controller.check_solver(self.solver)

    def run(self, request: SolveRequest) -> torch.Tensor:
        return _run(request, self, self.interpolate)


@dataclass(frozen=True)
class Adjoint(AbstractAdjoint):
    """The backsolve adjoint of Chen et al. (2018), "Neural Ordinary Differential Equations".

    The forward solve keeps no graph. Backward integrates `[y, a, a_x]` from `t1` to `t0`:
    `dy/dt = f`, `da/dt = -a df/dy`, `da_x/dt = -a df/dx`, one vector-Jacobian product per
    evaluation, landing on the `saveat` times, where the state is reset to the saved forward
    value and that time's incoming gradient is added to `a`. Gradients reach `y0` and the
    tensors `x` that `Backprop` differentiates: the tensors of `args` that require grad, the
    parameters of `f` (an `nn.Module`) and the leaf tensors a closure `f` reaches.
    Higher-order gradients are not supported. Arguments: those of `AbstractAdjoint`.

    The backward solve recomputes `y` backwards in time, so for a vector field that is unstable
    backwards the gradients lose accuracy (a known weakness of the backsolve adjoint); use
    `InterpolatingAdjoint` or `Backprop` when in doubt.
    """

    interpolate: ClassVar[bool] = False


@dataclass(frozen=True)
class InterpolatingAdjoint(AbstractAdjoint):
    """The interpolating adjoint: the continuous adjoint with `y(t)` read from the forward.

    The forward solve keeps its accepted steps (the stages, no graph) and backward integrates
    only `[a, a_x]` from `t1` to `t0`, evaluating `f` and its VJP at `y(t)` from the steps'
    continuous extension (order 4 for Dopri5 and Tsit5, 3 for Bosh3 and RK4; see
    `ButcherTableau.b_dense`). No backward solve of `y`, so a field that is unstable backwards
    (a dissipative flow) keeps its gradient accuracy, and the backward state is half the
    backsolve's; the memory is the forward's stages, as for `Backprop` but without graphs.
    Gradients reach what `Adjoint` differentiates; first-order only. Arguments: those of
    `AbstractAdjoint` (a backward `solver` steps the backward solve; the interpolation always
    uses the forward's method).
    """

    interpolate: ClassVar[bool] = True


def _run(request: SolveRequest, method: Any, interpolate: bool) -> torch.Tensor:
    """The forward solve (keeping its steps for `interpolate`) as one autograd node."""
    r = request
    kernel = stage_kernel(r.f, r.y0, r.args, keeps_inputs=False)
    x0 = kernel.to_state(r.y0)
    keep = interpolate and torch.is_grad_enabled()
    stepper = r.stepper(_ValuesOnly(kernel) if keep else kernel, x0, record=keep)
    xs, counts = forward(stepper, r, x0)
    r.stats.nfe_forward = counts.nfe
    r.stats.n_accepted = counts.n_accepted
    r.stats.n_rejected = counts.n_rejected
    ys = kernel.from_state(xs)
    inputs = kernel.inputs
    times = r.times or (None, None, None)
    if not torch.is_grad_enabled() or not any(
        x is not None and x.requires_grad for x in (r.y0, *inputs, *times)
    ):
        stepper.release()
        if kernel.discovers:  # nothing to differentiate at t0: make sure none appears later
            x_end = xs[-1] if r.save_ts else xs
            t_end = r.save_ts[-1] if r.save_ts else r.t1
            r.stats.nfe_forward += 1
            kernel.check_complete(kernel.evaluate(t_end, x_end, None, True)[1], t_end)
        return ys
    tape = None
    if keep:
        tape = _DenseTape(stepper, x0)
        weakref.finalize(tape, give, [step.ws for step in stepper.tape])
    backward = _Backward(r, kernel, method, tape, ys)
    return _AdjointFunction.apply(backward, r.y0, *times, *inputs)


class _ValuesOnly(AbstractStageKernel):
    """A kernel's evaluations without what a VJP needs: the forward of the interpolating
    adjoint records its steps' stages, not graphs (the first stages still discover inputs)."""

    def __init__(self, kernel: AbstractStageKernel):
        self.kernel = kernel
        self.arg_tensors, self.params = kernel.arg_tensors, kernel.params

    def evaluate(self, t, y, out, save):
        return self.kernel.evaluate(t, y, out, False)[0], None

    def evaluate_first(self, t, y, save):
        return self.kernel.evaluate_first(t, y, False)[0], None

    def vjp(self, saved, g, out, negate=False):
        raise RuntimeError("internal error: _ValuesOnly has no VJP")

    def gradients(self, records, weights):
        raise RuntimeError("internal error: _ValuesOnly has no gradients")


class _DenseTape:
    """The forward's accepted steps as the continuous solution `y(t)` (in the kernel's layout)."""

    def __init__(self, stepper: Stepper, x0: torch.Tensor):
        self.stepper, self.steps = stepper, stepper.tape
        self.direction = 1.0 if self.steps[-1].t1 >= self.steps[0].t0 else -1.0
        # step starts in increasing order of direction * t, for the search
        self.keys = [self.direction * step.t0 for step in self.steps]
        self.starts = [x0] + [step.ws.b.sel[stepper.last] for step in self.steps[:-1]]

    def __call__(self, t: float) -> torch.Tensor:
        n = max(bisect.bisect_right(self.keys, self.direction * t) - 1, 0)
        step = self.steps[n]
        return self.stepper.interpolate(step, self.starts[n], step.t0, step.t1, [t])[0]


class _AdjointFunction(torch.autograd.Function):
    """The forward solve as one autograd node (its result computed already); backward is the
    adjoint solve."""

    @staticmethod
    def forward(ctx, backward: _Backward, y0: torch.Tensor, t0, t1, saveat, *inputs):
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

    def __init__(self, request: SolveRequest, kernel: AbstractStageKernel, method, tape, ys):
        self.request, self.kernel, self.method, self.tape = request, kernel, method, tape
        self.ys: torch.Tensor | None = ys  # the forward's result, until the node takes it

    def __call__(self, ys: torch.Tensor, grad_ys: torch.Tensor) -> list[torch.Tensor | None]:
        """The gradients for `(y0, t0, t1, saveat, *kernel.inputs)` from the forward's `ys`."""
        r, kernel, method, tape = self.request, self.kernel, self.method, self.tape
        inputs = kernel.inputs
        xs, gxs = kernel.to_state(ys), kernel.to_state(grad_ys)
        y_start, a_start = (xs[-1], gxs[-1]) if r.save_ts else (xs, gxs)
        sizes = [x.numel() for x in inputs] if not method.seminorm else []
        adjoint = _AdjointKernel(kernel, y_start.shape, sizes, tape)
        z, segments = adjoint.start(y_start, a_start, len(kernel.arg_tensors))
        t_start = r.save_ts[-1] if r.save_ts else r.t1
        if t_start == r.t0:  # saveat == [t0]: nothing to integrate
            grad_x0, grads = adjoint.parts(z)[1], [None] * len(inputs)
        else:
            grad_x0, grads = self._solve(adjoint, z, segments, t_start, xs, gxs)
        times = r.time_gradients(kernel, xs, gxs, grad_x0)
        return [kernel.from_state(grad_x0), *times, *grads]

    def _solve(self, adjoint, z, segments, t_start, xs, gxs):
        """Integrate the adjoint state `z` from `t_start` back to `t0`: `(dL/dx0, input grads)`."""
        r, kernel, method = self.request, self.kernel, self.method
        solver = method.solver or r.solver
        controller = method.controller or r.controller

        def on_save(i: int, t: float, z: torch.Tensor) -> torch.Tensor:
            z = z.clone()
            y, a = adjoint.parts(z)
            if y is not None:
                y.copy_(xs[i])
            a.add_(gxs[i])
            return z

        sums = GradientSum(kernel)
        b = solver.coefficients(z).b_floats

        def on_accept(step: Step) -> None:  # the seminorm's a_x: the stages' VJPs, -h b_i each
            folded = False
            for i, b_i in enumerate(b):
                if b_i != 0.0:
                    folded |= sums.add(step.saved[i], -(step.t1 - step.t0) * b_i)
            if folded:  # pending records are the last step's; a FSAL next step reads its last
                stepper.release(keep_last=True)

        record = not adjoint.sizes and bool(kernel.inputs)
        stepper = kernel.adjoint_stepper(
            adjoint,
            solver,
            z,
            tolerances=controller.tolerances,
            norm=mixed_rms_norm(segments),
            record=record,
            on_accept=on_accept if record else None,
        )
        reset = on_save if r.save_ts else None
        z, counts = integrate(
            stepper, controller, z, t_start, r.t0, r.save_ts, r.jump_ts, reset, step_ts=r.step_ts
        )
        z = stepper.finish(z)
        r.stats.nfe_backward += counts.nfe
        grad_x0 = adjoint.parts(z)[1]
        if adjoint.sizes:
            flat = adjoint.integrals(z).split(adjoint.sizes)
            grads = [g.view_as(x) for g, x in zip(flat, kernel.inputs, strict=True)]
        else:
            grads = stepper.input_gradients(sums) if record else []
        stepper.release()
        return grad_x0, grads


class _AdjointKernel:
    """The adjoint system as the stepper's right-hand side (it is never differentiated).

    The state `z` holds `a` (and, for the backsolve adjoint, `y` before it), stacked on a first
    axis, or with `sizes` (the full norm) flat with the integrals `a_x` after them; the
    right-hand side is `[f(t, y), -a df/dy, -a df/dx...]` through a field's kernel, with `y(t)`
    from `tape` for the interpolating adjoint. Saves the VJP record, from which the field's
    kernel forms the integrands `-a df/dx`.
    """

    keeps_inputs = False  # each evaluation's VJP comes at once

    def __init__(self, kernel: AbstractStageKernel, shape: torch.Size, sizes, tape):
        self.kernel, self.shape, self.sizes, self.tape = kernel, shape, sizes, tape
        self.n = shape.numel()
        self.checked = False  # whether the first evaluation (at t1) was checked for new tensors
        self.blocks = 1 if tape is not None else 2  # [a] or [y, a]

    def start(self, y: torch.Tensor, a: torch.Tensor, n_args: int):
        """The state at the start of the backward solve, and the segments of its norm."""
        n, parts = self.n, ([a] if self.tape is not None else [y, a])
        if self.sizes:
            flat = [p.reshape(-1) for p in parts]
            z = torch.cat([*flat, y.new_zeros(sum(self.sizes))])
            lead = self.blocks * n
            ends = [*(n * (i + 1) for i in range(self.blocks)), lead + sum(self.sizes[:n_args])]
            ends.append(lead + sum(self.sizes))
            return z, [(a, b) for a, b in zip([0, *ends], ends, strict=False) if b > a]
        z = torch.stack(parts)
        return z, [(i * n, (i + 1) * n) for i in range(self.blocks)]

    def parts(self, z: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """The views `(y, a)` of an adjoint state `z` (`y` None for the interpolating one)."""
        n, shape = self.n, self.shape
        if self.sizes:
            views = [z[i * n : (i + 1) * n].view(shape) for i in range(self.blocks)]
        else:
            views = list(z.unbind(0))
        return (None, views[0]) if self.tape is not None else (views[0], views[1])

    def integrals(self, z: torch.Tensor) -> torch.Tensor:
        """The flat `a_x` of a full-norm state."""
        return z[self.blocks * self.n :]

    def evaluate(self, t, z, out, save):
        if out is None:
            out = torch.empty_like(z)
        y, a = self.parts(z)
        f_out, a_out = self.parts(out)
        if y is None:  # interpolating: y(t) from the forward's steps
            y = self.tape(t)
        _, saved = self.kernel.evaluate(t, y, f_out, True)
        if not self.checked:  # a closure that starts using a tensor later: raise, not lose it
            self.kernel.check_complete(saved, t)
            self.checked = True
        _, record = self.kernel.vjp(saved, a, a_out, negate=True)
        if self.sizes:
            grads = self.kernel.gradients([record], None)
            for g, part in zip(grads, self.integrals(out).split(self.sizes), strict=True):
                if g is None:
                    part.zero_()
                else:
                    torch.neg(g.reshape(-1), out=part)
        return out, (record if save else None)

    def evaluate_first(self, t, z, save):
        return self.evaluate(t, z, None, save)
