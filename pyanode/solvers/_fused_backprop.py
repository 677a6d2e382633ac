"""`Backprop` of a fused field: one autograd node per solve, the steps' VJP written by hand.

The forward solve runs without a graph and keeps a tape of the accepted steps (stage inputs and
what the kernel saved). Backward runs the steps in reverse: for a step `y1 = y0 + h sum_i b_i
k_i` with stages `k_i = f(t_i, y0 + h sum_j a_ij k_j)`, given `gbar = dL/dy1`,

    dL/dk_j = h (b_j gbar + sum_{i>j} a_ij gY_i) (+ the next step's dL/dk_0 for FSAL's last),
    gY_j    = VJP of f at stage j applied to dL/dk_j,
    dL/dy0  = gbar + sum_{i>0} gY_i (+ the VJP of a freshly evaluated first stage),

the same discretise-then-optimise gradient autograd computes through the ops, to round-off.
The parameter gradients of the VJPs are summed in chunks (`GradientSum`).
"""

from __future__ import annotations

import weakref

import torch

from pyanode.solvers._fused import AbstractFusedKernel, GradientSum
from pyanode.solvers._problem import Counts, SolveRequest, integrate_forward
from pyanode.solvers._stepper import BufferStepper, FusedStep, give, take


class _Run:
    """What the autograd Function keeps between forward and backward."""

    def __init__(self, request: SolveRequest, kernel: AbstractFusedKernel):
        self.request = request
        self.kernel = kernel
        self.tape: list[FusedStep] = []
        self.saves_after: dict[int, list[int]] = {}  # accepted steps -> save indices there
        self.counts = Counts()


def fused_backprop(
    request: SolveRequest, kernel: AbstractFusedKernel
) -> tuple[torch.Tensor, Counts]:
    """Solve `request` with `kernel`; backward is the hand-written VJP of the recorded steps."""
    run = _Run(request, kernel)
    ys = _FusedBackprop.apply(run, request.y0, *kernel.arg_tensors, *kernel.params)
    return ys, run.counts


def fused_forward(
    request: SolveRequest, kernel: AbstractFusedKernel
) -> tuple[torch.Tensor, Counts]:
    """Solve `request` with `kernel` without recording anything (no gradient needed)."""
    r = request
    x0 = kernel.to_state(r.y0)
    stepper = BufferStepper(kernel, r.solver, x0)
    x1, saved, counts = integrate_forward(
        stepper, x0, r.solver, r.controller, r.t0, r.t1, r.save_ts, r.jump_ts
    )
    return kernel.from_state(torch.stack(saved) if r.save_ts else x1), counts


class _FusedBackprop(torch.autograd.Function):
    @staticmethod
    def forward(ctx, run: _Run, y0: torch.Tensor, *tensors: torch.Tensor):
        r = run.request
        kernel = run.kernel
        x0 = kernel.to_state(y0)
        stepper = BufferStepper(kernel, r.solver, x0, record=True)

        def on_save(i: int, t: float, y: torch.Tensor) -> None:
            run.saves_after.setdefault(len(stepper.tape), []).append(i)

        x1, saved, counts = integrate_forward(
            stepper, x0, r.solver, r.controller, r.t0, r.t1, r.save_ts, r.jump_ts, on_save
        )
        run.tape = stepper.tape
        run.counts = counts
        # the tape's buffers go back to the pool when the graph (and this ctx) is freed
        weakref.finalize(run, give, [step.ws for step in run.tape])
        ctx.run = run
        return kernel.from_state(torch.stack(saved) if r.save_ts else x1)

    @staticmethod
    def backward(ctx, grad_ys: torch.Tensor):
        if torch.is_grad_enabled():
            raise RuntimeError(
                "solve(...) of a fused vector field (e.g. MLPField) has first-order gradients "
                "only, but backward was called with create_graph=True; for higher-order "
                "gradients pass the field as a plain function, lambda t, y, args: field(t, y, "
                "args), so that autograd records the solve"
            )
        run: _Run = ctx.run
        kernel = run.kernel
        r = run.request
        tape = run.tape
        grads = kernel.to_state(grad_ys)
        if r.save_ts:
            grad_rows = grads.view(len(r.save_ts), -1)
            g = torch.zeros_like(grad_rows[0:1])
            at_t0 = set(range(len(r.save_ts)))
            for indices in run.saves_after.values():
                at_t0.difference_update(indices)
        else:
            grad_rows = None
            g = grads.view(1, -1)
            at_t0 = ()
        coef = r.solver._plan.coefficients(grads)
        like = grads[0] if r.save_ts else grads
        sums = GradientSum(kernel)
        workspaces = []
        extra = None  # dL/d(last stage) from the next step's use of it as its first stage
        for n in range(len(tape) - 1, -1, -1):
            step = tape[n]
            for i in run.saves_after.get(n + 1, ()):
                g = g + grad_rows[i : i + 1]
            ws = take(len(coef.c), like)
            workspaces.append(ws)
            g, folded = _step_vjp(step, g, extra, coef, kernel, ws, sums)
            if step.fresh:
                # the first stage was evaluated at this step's y0: its VJP adds to dL/dy0
                folded |= sums.add(kernel.vjp(step.saved[0], ws.a.sel[0], ws.b.sel[0])[1])
                g.add_(ws.b.row[0])
                extra = None
            else:
                extra = ws.a
            if folded:  # the pending records are this step's: recycle the earlier buffers
                give(workspaces[:-1])
                workspaces = workspaces[-1:]
        for i in at_t0:
            g = g + grad_rows[i : i + 1]
        param_grads, arg_grads = sums.result()
        give(workspaces)
        grad_y0 = kernel.from_state(g.view(like.shape))
        return (None, grad_y0, *arg_grads, *param_grads)


def _step_vjp(step: FusedStep, g, extra, coef, kernel, ws, sums: GradientSum):
    """`(dL/dy0, folded)`: dL/dy0 (a new (1, N) row) of one step from `g` = dL/dy1 (1, N);
    writes dL/dk_j into `ws.a` (row 0: dL/dk_0) and the stage inputs' gradients into `ws.b`;
    adds the VJP records to `sums` (`folded`: whether that summed them). `extra` is the next
    step's `ws.a` when its first stage is this step's last."""
    s = len(coef.c)
    h = step.h
    b = coef.b_floats
    gk, gy = ws.a, ws.b
    saved = step.saved
    folded = False
    for j in range(s - 1, 0, -1):
        if j == s - 1:
            if b[j] != 0.0:
                torch.mul(g, h * b[j], out=gk.row[j])
                if extra is not None:
                    gk.row[j].add_(extra.row[0])
            elif extra is not None:
                gk.row[j].copy_(extra.row[0])
            else:
                gy.sel[j].zero_()  # the last stage feeds nothing (FSAL's unused last stage)
                continue
        elif b[j] == 0.0 and not coef.feeds[j]:
            gy.sel[j].zero_()
            continue
        else:
            torch.addmm(g, coef.cols[j], gy.tail[j], beta=h * b[j], alpha=h, out=gk.row[j])
        folded |= sums.add(kernel.vjp(saved[j], gk.sel[j], gy.sel[j])[1])
    if s == 1:
        torch.mul(g, h * b[0], out=gk.row[0])
        return g.clone(), folded
    torch.addmm(g, coef.cols[0], gy.tail[0], beta=h * b[0], alpha=h, out=gk.row[0])
    return torch.addmm(g, coef.ones, gy.tail[0]), folded
