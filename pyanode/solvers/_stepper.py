"""Steppers: how a controller's loop evaluates the vector field and takes Runge–Kutta steps.

The controllers decide the steps; a stepper does the arithmetic. Two of them:

- `GraphStepper`: the solver's own `step`, one out-of-place op per tableau term, so that
  autograd records the steps (`Backprop` of a plain vector field).
- `BufferStepper`: no graph (grad disabled: the adjoint's solves, inference). The stages go into
  one buffer and every stage sum is one matrix product against the tableau row.
  The right-hand side is a stage kernel that writes into the buffer: a plain field
  (`PlainKernel`) or a fused one (`AbstractFusedKernel`), which can also keep a tape of the
  accepted steps with what it saved, for a hand-written backward pass.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

import torch

from pyanode.solvers._fused import AbstractStageKernel
from pyanode.solvers._solver import AbstractSolver, VectorField

Norm = Callable[[torch.Tensor], float]


class AbstractStepper(abc.ABC):
    """Evaluates `f` and takes steps for a controller; `step` returns an opaque step state."""

    fsal: bool

    @abc.abstractmethod
    def evaluate(self, t: float, y: torch.Tensor) -> torch.Tensor:
        """`f(t, y)` used as the first stage of the next step."""

    @abc.abstractmethod
    def probe(self, t: float, y: torch.Tensor) -> torch.Tensor:
        """`f(t, y)` for the initial step selection: not part of the solution."""

    @abc.abstractmethod
    def step(
        self, t0: float, t1: float, y0: torch.Tensor, k0: torch.Tensor, t1_eval: float | None
    ) -> tuple[torch.Tensor, Any]:
        """One step from `(t0, y0)` to `t1` with first stage `k0` (see `AbstractSolver.step`).

        **Returns:** `(y1, state)`; `state` goes to `last_stage`, `error_ratio` and `accept`.
        """

    @abc.abstractmethod
    def last_stage(self, state: Any) -> torch.Tensor:
        """The step's last stage (for FSAL methods `f(t1, y1)`)."""

    @abc.abstractmethod
    def error_ratio(
        self,
        state: Any,
        h: float,
        ay0: torch.Tensor,
        y1: torch.Tensor,
        rtol: float,
        atol: float,
        norm: Norm,
    ) -> tuple[float, torch.Tensor]:
        """`norm(err / (atol + rtol max(|y0|, |y1|)))` of a step of size `h`, and `|y1|`."""

    @abc.abstractmethod
    def accept(self, state: Any) -> None:
        """The controller accepted the step."""

    @abc.abstractmethod
    def keep(self, y: torch.Tensor) -> torch.Tensor:
        """`y`, copied if it lives in a buffer that later steps overwrite (for saved states)."""

    @abc.abstractmethod
    def finish(self, y: torch.Tensor) -> torch.Tensor:
        """The final state as a tensor of its own; the stepper's buffers may be recycled."""


class GraphStepper(AbstractStepper):
    """Steps through `AbstractSolver.step`, differentiable by autograd."""

    def __init__(self, f: VectorField, args: Any, solver: AbstractSolver, make_t):
        self.f, self.args, self.solver, self.make_t = f, args, solver, make_t
        self.fsal = solver.fsal

    def evaluate(self, t: float, y: torch.Tensor) -> torch.Tensor:
        return self.f(self.make_t(t), y, self.args)

    def probe(self, t: float, y: torch.Tensor) -> torch.Tensor:
        return self.f(self.make_t(t), y, self.args)

    def step(self, t0, t1, y0, k0, t1_eval):
        return self.solver.step(self.f, self.args, t0, t1, y0, k0, self.make_t, t1_eval)

    def last_stage(self, state: list[torch.Tensor]) -> torch.Tensor:
        return state[-1]

    def error_ratio(self, state, h, ay0, y1, rtol, atol, norm):
        with torch.no_grad():
            err = self.solver.error_estimate(state, h)
            ay1 = y1.abs()
            scale = torch.maximum(ay0, ay1).mul_(rtol).add_(atol)
            return norm(err.div_(scale)), ay1

    def accept(self, state: Any) -> None:
        return None

    def keep(self, y: torch.Tensor) -> torch.Tensor:
        return y

    def finish(self, y: torch.Tensor) -> torch.Tensor:
        return y


class PlainKernel(AbstractStageKernel):
    """A plain vector field `f(t, y, args)` as a stage kernel (times made by `make_t`)."""

    def __init__(self, f: VectorField, args: Any, make_t):
        self.f, self.args, self.make_t = f, args, make_t

    def evaluate(self, t, y, out, save):
        k = self.f(self.make_t(t), y, self.args)
        if out is None:
            return k, None
        return out.copy_(k), None


class StageBuffer:
    """An `(s, *shape)` buffer with the views a step needs, made once (a view costs an op).

    `sel[i]` is row `i` in the state's shape, `row[i]` the same as a `(1, N)` row, `head[i]`
    rows `0..i-1` and `tail[i]` rows `i+1..s-1` as `(·, N)` matrices.
    """

    __slots__ = ("data", "flat", "sel", "row", "head", "tail")

    def __init__(self, s: int, shape: torch.Size, dtype: torch.dtype, device: torch.device):
        self.data = torch.empty((s, *shape), dtype=dtype, device=device)
        self.flat = flat = self.data.view(s, -1)
        self.sel = tuple(self.data[i] for i in range(s))
        self.row = tuple(flat[i : i + 1] for i in range(s))
        self.head = tuple(flat[:i] for i in range(s + 1))
        self.tail = tuple(flat[i + 1 :] for i in range(s))


class Workspace:
    """Two stage buffers (a step's stages and stage inputs, or their gradients in backward)
    and an error row, recycled across steps and solves through `take`/`give`."""

    __slots__ = ("key", "a", "b", "err_row", "err")

    def __init__(self, key, s: int, shape: torch.Size, dtype: torch.dtype, device):
        self.key = key
        self.a = StageBuffer(s, shape, dtype, device)
        self.b = StageBuffer(s, shape, dtype, device)
        self.err_row = torch.empty((1, self.a.flat.shape[1]), dtype=dtype, device=device)
        self.err = self.err_row.view(shape)


_POOL: dict[tuple, list[Workspace]] = {}
_POOL_MAX_BYTES = 1 << 22  # larger states are not pooled: their views cost nothing in comparison
_POOL_MAX_FREE = 32  # per key


def take(s: int, like: torch.Tensor) -> Workspace:
    """A workspace for `s` stages of states shaped like `like`, from the pool if one is free."""
    key = (s, like.shape, like.dtype, like.device)
    free = _POOL.get(key)
    if free:
        try:
            return free.pop()
        except IndexError:  # emptied by another thread
            pass
    return Workspace(key, s, like.shape, like.dtype, like.device)


def give(workspaces) -> None:
    """Return workspaces to the pool; nothing may use them or their views afterwards."""
    for ws in workspaces:
        if ws.a.data.numel() * ws.a.data.element_size() > _POOL_MAX_BYTES:
            continue
        free = _POOL.setdefault(ws.key, [])
        if len(free) < _POOL_MAX_FREE:
            free.append(ws)


class FusedStep:
    """One recorded step of a `BufferStepper`.

    `ws.a` holds the stages k_0..k_{s-1} and `ws.b` the stage inputs (`ws.b` row 0 unused:
    stage 0's input is `y0`), `saved[i]` what the kernel saved at stage `i` (`saved[0]` for the
    first stage, which a FSAL method takes from the previous step) and `fresh` whether the
    first stage was evaluated for this step (else it is the previous step's last stage).
    """

    __slots__ = ("h", "ws", "saved", "fresh")

    def __init__(self, h: float, ws: Workspace, saved, fresh: bool):
        self.h, self.ws, self.saved, self.fresh = h, ws, saved, fresh


class BufferStepper(AbstractStepper):
    """Steps without autograd: stages in a recycled buffer, each stage sum one `addmm`.

    The right-hand side is a stage kernel that writes into the buffer (`PlainKernel` for a
    plain vector field). The states it returns are views of its buffers: call `finish` on the
    final state. With `record`, the kernel saves what its VJP needs and the accepted steps are
    kept, with those records, in `tape` (their buffers are not recycled; `release` does), and
    `on_accept(step)` is called after each is appended.
    """

    def __init__(
        self,
        kernel: AbstractStageKernel,
        solver: AbstractSolver,
        like: torch.Tensor,
        *,
        record: bool = False,
        on_accept: Callable[[FusedStep], None] | None = None,
    ):
        self.kernel = kernel
        self.record = record
        self.on_accept = on_accept
        self.fsal = solver.fsal
        self.coef = coef = solver._plan.coefficients(like)
        self.s = len(coef.c)
        self.c_new = tuple(enumerate(coef.c[1:], start=1))
        self.tape: list[FusedStep] = []
        self._fresh: tuple[torch.Tensor, Any] | None = None
        self._current: Workspace | None = None  # holds the current state (not recording)
        self._spare: Workspace | None = None  # where the next step writes

    def evaluate(self, t: float, y: torch.Tensor) -> torch.Tensor:
        k, saved = self.kernel.evaluate(t, y, None, self.record)
        if self.record:
            self._fresh = (k, saved)
        return k

    def probe(self, t: float, y: torch.Tensor) -> torch.Tensor:
        return self.kernel.evaluate(t, y, None, False)[0]

    def step(self, t0, t1, y0, k0, t1_eval):
        coef = self.coef
        s = self.s
        h = t1 - t0
        t_end = t1 if t1_eval is None else t1_eval
        ws = self._spare
        if ws is None:
            ws = self._spare = take(s, y0)
        stages, inputs = ws.a, ws.b
        current = self._current
        if current is not None and y0 is current.b.sel[s - 1]:
            y0f = current.b.row[s - 1]  # the view exists already
        else:
            y0f = y0.reshape(1, -1)
        stages.sel[0].copy_(k0)
        rows, head, row_out = coef.rows, stages.head, inputs.row
        k_sel, y_sel = stages.sel, inputs.sel
        evaluate, record = self.kernel.evaluate, self.record
        saved = [None] * s
        for i, c in self.c_new:
            torch.addmm(y0f, rows[i], head[i], alpha=h, out=row_out[i])
            _, saved[i] = evaluate(t_end if c == 1.0 else t0 + c * h, y_sel[i], k_sel[i], record)
        if record:
            saved[0], fresh = self._first_saved(k0)
            state = FusedStep(h, ws, saved, fresh)
        else:
            state = ws
        if self.fsal:
            return y_sel[s - 1], state
        # a non-FSAL step's y1 goes into inputs row 0 (stage 0's input is y0, never stored)
        torch.addmm(y0f, coef.b, stages.flat, alpha=h, out=row_out[0])
        return y_sel[0], state

    def _first_saved(self, k0: torch.Tensor) -> tuple[Any, bool]:
        """What the kernel saved for `k0`: a fresh evaluation, or the last accepted stage."""
        if self._fresh is not None and k0 is self._fresh[0]:
            return self._fresh[1], True
        last = self.tape[-1] if self.tape else None
        if last is None or not self.fsal or k0.data_ptr() != last.ws.a.data[-1].data_ptr():
            raise RuntimeError("internal error: the first stage of a step has no recorded source")
        return last.saved[-1], False

    def last_stage(self, state) -> torch.Tensor:
        ws = state.ws if isinstance(state, FusedStep) else state
        return ws.a.sel[self.s - 1]

    def error_ratio(self, state, h, ay0, y1, rtol, atol, norm):
        ws = state.ws if isinstance(state, FusedStep) else state
        torch.mm(self.coef.b_err, ws.a.flat, out=ws.err_row)
        ay1 = y1.abs()
        # e / (atol + rtol m) = (e / rtol) / (atol / rtol + m), and the norms are absolutely
        # homogeneous: norm(c e) = |c| norm(e); so h and rtol are applied to the float
        scale = torch.maximum(ay0, ay1).add_(atol / rtol)
        return norm(ws.err.div_(scale)) * (abs(h) / rtol), ay1

    def accept(self, state) -> None:
        if self.record:
            self.tape.append(state)
            self._spare, self._current = None, state.ws
            if self.on_accept is not None:
                self.on_accept(state)
        else:
            self._spare, self._current = self._current, state

    def keep(self, y: torch.Tensor) -> torch.Tensor:
        return y.clone() if self._owns(y) else y

    def finish(self, y: torch.Tensor) -> torch.Tensor:
        y = self.keep(y)
        recycle = [self._spare] if self.record else [self._spare, self._current]
        self._spare = self._current = None
        give([ws for ws in recycle if ws is not None])
        return y

    def _owns(self, y: torch.Tensor) -> bool:
        ws = self._current
        return ws is not None and y.untyped_storage().data_ptr() == ws.b.data.data_ptr()

    def release(self, keep_last: bool = False) -> None:
        """Recycle the buffers of `tape` (after the backward pass that read them); with
        `keep_last`, all but the last step's (which a FSAL next step still reads)."""
        keep = self.tape[-1:] if keep_last else []
        give([step.ws for step in self.tape[: len(self.tape) - len(keep)]])
        self.tape = keep
