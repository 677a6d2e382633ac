"""`Backprop`: differentiate the computed solution through its steps, by one reverse sweep.

The forward solve runs without autograd and keeps a tape of the accepted steps (stage inputs,
stages, and what the kernel saved at each stage). The solve is one autograd node whose backward
runs the steps' VJP in reverse (`Stepper.step_vjp`) with the kernel's VJPs, summing their
parameter gradients in chunks (`GradientSum`). It is the one backward of every field: a fused
kernel's VJPs are hand-written, an `AutogradKernel`'s are `torch.autograd.grad` through the
graph of each evaluation alone. A stepper that took the whole solve in one call
(`Stepper.whole`, the compiled `MLPField` path) may take the reverse sweep in one call too
(`Stepper.tape_vjp`) when no state is saved before the last step ends: the same VJPs in the
same order.

Higher-order gradients (`create_graph=True`) of a plain field: the sweep's VJPs start from
detached stage inputs, so the gradients it returns are not differentiable through the steps.
Rather than a second, differentiable sweep, backward under `create_graph` replays the recorded
steps (the same times and step sizes, `Stepper.graph_step`) with out-of-place operations that
autograd records, and differentiates the replay with `create_graph=True`: the same gradients to
round-off, now differentiable, for one more forward pass, paid only when asked for. A fused
kernel has no graph to replay: its gradients are first-order only.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch

from pyanode.solvers._kernel import AbstractStageKernel, AutogradKernel, GradientSum, stage_kernel
from pyanode.solvers._loop import forward
from pyanode.solvers._problem import AbstractGradientMethod, SolveRequest, SolverStats
from pyanode.solvers._step import Stepper, give, take


@dataclass(frozen=True)
class Backprop(AbstractGradientMethod):
    """Differentiate through the operations of the solver ("discretise-then-optimise").

    Exact gradients of the computed solution, at the memory cost of keeping every accepted
    step's stages; the step-size decisions are not differentiated. Rejected steps and the
    initial step selection are not in the gradient. `SolverStats.nfe_backward` counts the
    vector-Jacobian products through `f` when backward runs. Gradients reach `y0`, the tensors
    of `args`, the parameters of `f` (an `nn.Module`) and the leaf tensors a closure `f`
    reaches (see `AutogradKernel`).

    A field with a fused kernel (`AbstractFusedField`, e.g. `MLPField`) computes its VJPs by
    hand, the same gradients to round-off at a fraction of the cost; higher-order gradients then
    raise (pass the field as a plain function for them).
    """

    def run(self, request: SolveRequest) -> torch.Tensor:
        r = request
        kernel = stage_kernel(r.f, r.y0, r.args, keeps_inputs=True)
        record = torch.is_grad_enabled() and (
            kernel.discovers
            or r.times is not None
            or any(x.requires_grad for x in (r.y0, *kernel.inputs))
        )
        x0 = kernel.to_state(r.y0)
        stepper = r.stepper(kernel, x0, record=record)
        tape = _Tape(r, kernel, stepper)
        xs, counts = forward(stepper, r, x0, tape.saved_at if record else None)
        if record:  # a closure that starts using a tensor later would lose its gradient
            last = stepper.tape[-1]
            kernel.check_complete(last.saved[-1], last.t_end)
        ys = kernel.from_state(xs)
        stats = r.stats
        stats.nfe_forward = counts.nfe
        stats.n_accepted = counts.n_accepted
        stats.n_rejected = counts.n_rejected
        inputs = kernel.inputs
        times = r.times or (None, None, None)
        if not record or not any(
            x is not None and x.requires_grad for x in (r.y0, *inputs, *times)
        ):
            stepper.release()
            return ys
        # the tape's buffers go back to the pool when the graph (and so the tape) is freed
        weakref.finalize(tape, give, [step.ws for step in stepper.tape])
        tape.ys = ys
        ys = _BackpropFunction.apply(tape, r.y0, *times, *inputs)
        ys.register_hook(_CountBackward(stats, counts.nfe_graph))
        return ys


class _Tape:
    """The accepted steps of one solve and where its states were saved, for the backward."""

    def __init__(self, request: SolveRequest, kernel: AbstractStageKernel, stepper: Stepper):
        self.request, self.kernel, self.stepper = request, kernel, stepper
        self.saves_after: dict[int, list[int]] = {}  # accepted steps -> save indices there
        self.ys: torch.Tensor | None = None  # the forward's result, until the node takes it

    def saved_at(self, i: int) -> None:
        self.saves_after.setdefault(len(self.stepper.tape), []).append(i)

    def at_t0(self) -> list[int]:
        """The save indices at `t0` (their states are `y0` itself)."""
        later = {i for indices in self.saves_after.values() for i in indices}
        return [i for i in range(len(self.request.save_ts)) if i not in later]

    def sweep(self, ys: torch.Tensor, grad_ys: torch.Tensor) -> list[torch.Tensor | None]:
        """The gradients for `(y0, t0, t1, saveat, *kernel.inputs)`: the steps' VJPs in
        reverse, then the times'."""
        r, kernel, stepper = self.request, self.kernel, self.stepper
        grads = kernel.to_state(grad_ys)
        if r.save_ts:
            grad_rows = grads.reshape(len(r.save_ts), -1)
            like = grads[0]
            g = torch.zeros_like(grad_rows[0:1])
        else:
            grad_rows, like = None, grads
            g = grads.reshape(1, -1)
        sums = GradientSum(kernel)
        workspaces = []
        extra = None  # dL/d(last stage) from the next step's use of it as its first stage
        end = len(stepper.tape)
        steps = range(end - 1, -1, -1)
        at_end = self.saves_after.get(end, ())
        whole = (
            end > 0
            and set(self.saves_after) <= {end}  # no save before the last step ends
            and all(r.save_ts[i] == stepper.tape[-1].t1 for i in at_end)
        )
        if whole:  # the steps' VJPs in one call, where the stepper has it
            g_end = g
            for i in at_end:
                g_end = g_end + grad_rows[i : i + 1]
            swept = stepper.tape_vjp(g_end)
            if swept is not None:
                g, steps = swept, ()
        for n in steps:
            step = stepper.tape[n]
            inside = []  # saves interpolated inside this step
            for i in self.saves_after.get(n + 1, ()):
                if r.save_ts[i] == step.t1:
                    g = g + grad_rows[i : i + 1]
                else:
                    inside.append(i)
            seed = None
            if inside:  # dL/dk_j += h b_j(theta) g_i, dL/dy0 += g_i
                h = step.t1 - step.t0
                weights = stepper.coef.dense_weights([(r.save_ts[i] - step.t0) / h for i in inside])
                g_inside = grad_rows[inside]
                seed = torch.mm(weights.T, g_inside).mul_(h)
            ws = take(stepper.s, like)
            workspaces.append(ws)
            g, folded = stepper.step_vjp(step, g, extra, ws, sums, seed)
            if inside:
                g.add_(g_inside.sum(0, keepdim=True))
            extra = None if step.fresh else ws.a
            if folded:  # the pending records are this step's: recycle the earlier buffers
                give(workspaces[:-1])
                workspaces = workspaces[-1:]
        for i in self.at_t0():
            g = g + grad_rows[i : i + 1]
        input_grads = stepper.input_gradients(sums)
        give(workspaces)
        x0_grad = g.view(like.shape)
        times = r.time_gradients(kernel, kernel.to_state(ys), grads, x0_grad)
        return [kernel.from_state(x0_grad), *times, *input_grads]

    def replay(
        self, ys: torch.Tensor, grad_ys: torch.Tensor, saved: tuple
    ) -> list[torch.Tensor | None]:
        """The gradients of `sweep`, differentiable: autograd through a replay of the steps
        (the times' gradients are computed as in `sweep`, first-order only)."""
        kernel, stepper = self.kernel, self.stepper
        if not isinstance(kernel, AutogradKernel):
            raise RuntimeError(
                "solve(...) of a fused vector field (e.g. MLPField) has first-order gradients "
                "only, but backward was called with create_graph=True; for higher-order "
                "gradients pass the field as a plain function, lambda t, y, args: field(t, y, "
                "args), so that autograd records the solve"
            )

        def f(t: float, y: torch.Tensor) -> torch.Tensor:
            return kernel.f(kernel.make_t(t), y, kernel.args)

        save_ts = self.request.save_ts
        y0 = saved[0] if saved[0].requires_grad else saved[0].detach().requires_grad_()
        y, k = y0, None
        states = [y0] * len(save_ts)
        for n, step in enumerate(stepper.tape):
            if step.fresh:
                k = f(step.t_first, y)
            y_start, h = y, step.t1 - step.t0
            y, stages = stepper.graph_step(f, step.t0, step.t1, y, k, step.t_end)
            k = stages[-1].view_as(y)
            for i in self.saves_after.get(n + 1, ()):
                if save_ts[i] == step.t1:
                    states[i] = y
                else:
                    w = stepper.coef.dense_weights([(save_ts[i] - step.t0) / h])
                    states[i] = torch.addmm(y_start.reshape(1, -1), w, stages, alpha=h)
                    states[i] = states[i].view_as(y)
        replayed = torch.stack(states) if states else y
        saved = (y0, *saved[1:])
        wanted = [x for x in saved if x.requires_grad]
        found = torch.autograd.grad(replayed, wanted, grad_ys, create_graph=True, allow_unused=True)
        found = iter(found)
        grads = [next(found) if x.requires_grad else None for x in saved]
        with torch.no_grad():
            x0_grad = torch.zeros_like(y0) if grads[0] is None else grads[0]
            times = self.request.time_gradients(
                kernel, kernel.to_state(ys), kernel.to_state(grad_ys), kernel.to_state(x0_grad)
            )
        y0_grad = grads[0] if self.request.y0.requires_grad else None
        return [y0_grad, *times, *grads[1:]]


class _BackpropFunction(torch.autograd.Function):
    """The solve as one autograd node: forward hands over the tape's result, backward sweeps."""

    @staticmethod
    def forward(ctx, tape: _Tape, y0: torch.Tensor, t0, t1, saveat, *inputs: torch.Tensor):
        ctx.tape = tape
        ys, tape.ys = tape.ys, None
        ctx.save_for_backward(ys, y0, *inputs)  # y0, inputs read only by a replay
        return ys

    @staticmethod
    def backward(ctx, grad_ys: torch.Tensor):
        tape: _Tape = ctx.tape
        ys, *saved = ctx.saved_tensors
        if torch.is_grad_enabled():
            return (None, *tape.replay(ys, grad_ys, tuple(saved)))
        return (None, *tape.sweep(ys, grad_ys))


class _CountBackward:
    """A tensor hook adding the graph's vector-field evaluations to `nfe_backward`."""

    def __init__(self, stats: SolverStats, nfe: int):
        self.stats, self.nfe = stats, nfe

    def __call__(self, grad: torch.Tensor) -> None:
        self.stats.nfe_backward += self.nfe
