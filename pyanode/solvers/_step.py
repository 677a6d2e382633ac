"""The one Runge–Kutta step: stage sums, error estimate and error norm on recycled buffers, and
the step's vector–Jacobian product.

A step of a tableau `(c, a, b, b_err)` from `(t0, y0)` with first stage `k_0`:

    Y_i = y0 + h sum_{j<i} a_ij k_j,   k_i = f(t0 + c_i h, Y_i),   y1 = y0 + h sum_i b_i k_i,

with error ratio `norm(h sum_i b_err_i k_i / (atol + rtol max(|y0|, |y1|)))`. The stages live in
one `(s, N)` buffer, so every stage sum is one `addmm` against a tableau row; the right-hand side
is a stage kernel that writes into that buffer (`_kernel.py`). A step that the loop accepts can
be kept on a tape, with what the kernel saved at each stage, for the reverse sweep of `Backprop`.

The step's VJP, given `gbar = dL/dy1` (and, for FSAL, the next step's `dL/dk_0` of its last
stage):

    dL/dk_j = h (b_j gbar + sum_{i>j} a_ij gY_i),   gY_j = VJP of f at stage j of dL/dk_j,
    dL/dy0  = gbar + sum_{i>0} gY_i (+ the VJP of a freshly evaluated first stage),

the same discretise-then-optimise gradient autograd computes through the operations, to
round-off. A state interpolated inside the step, `y0 + h sum_j b_j(theta) k_j` (the continuous
extension of the tableau), adds `h b_j(theta) dL/dy(theta)` to `dL/dk_j` (the VJP's `seed`) and
its gradient to `dL/dy0`. `graph_step` is the same step with out-of-place operations, recorded
by autograd: it serves only higher-order gradients (see `_backprop.py`).

A compiled kernel that takes a whole step at once (all stage sums, every evaluation, the error
norm) and its VJP plugs in as a subclass of `Stepper` overriding `step` and `step_vjp`, returned
by its `AbstractStageKernel.stepper`; the loop and both gradient methods call only these.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from pyanode.solvers._kernel import AbstractStageKernel
    from pyanode.solvers._tableau import AbstractSolver

Norm = Callable[[torch.Tensor], float]


def rms_norm(n: int) -> Norm:
    """The root-mean-square norm of a tensor of `n` elements, as a Python float (one host sync)."""
    inv_sqrt_n = 1.0 / math.sqrt(max(n, 1))

    def norm(e: torch.Tensor) -> float:
        return torch.linalg.vector_norm(e).item() * inv_sqrt_n

    return norm


def mixed_rms_norm(segments: list[tuple[int, int]]) -> Norm:
    """The largest RMS norm over the slices `e[a:b]` of a flat tensor, as a Python float.

    Slices outside `segments` are ignored: with only the state and adjoint slices listed this is
    the seminorm of Kidger et al. (2021), "Hey, that's not an ODE".
    """
    scales = [1.0 / math.sqrt(max(b - a, 1)) for a, b in segments]
    size = segments[0][1] - segments[0][0]
    if all(a == i * size and b == a + size for i, (a, b) in enumerate(segments)):
        # consecutive blocks of one size: one norm over the rows of a (blocks, size) view
        blocks, end, scale = len(segments), len(segments) * size, scales[0]

        def block_norm(e: torch.Tensor) -> float:
            rows = (
                e.view(blocks, size) if e.numel() == end else e.reshape(-1)[:end].view(blocks, size)
            )
            return torch.linalg.vector_norm(rows, dim=1).max().item() * scale

        return block_norm

    def norm(e: torch.Tensor) -> float:
        flat = e.reshape(-1)
        pairs = zip(segments, scales, strict=True)
        parts = [torch.linalg.vector_norm(flat[a:b]) * s for (a, b), s in pairs]
        return torch.stack(parts).max().item()

    return norm


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
    """Two stage buffers (a step's stages and stage inputs, or their gradients in the VJP)
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


def clear_pool() -> None:
    """Drop every pooled workspace (a memory measurement then sees all that a pass allocates)."""
    _POOL.clear()


def give(workspaces) -> None:
    """Return workspaces to the pool; nothing may use them or their views afterwards (those
    without a `key`, rows of a compiled tape, are not pooled)."""
    for ws in workspaces:
        if ws.key is None:
            continue
        if ws.a.data.numel() * ws.a.data.element_size() > _POOL_MAX_BYTES:
            continue
        free = _POOL.setdefault(ws.key, [])
        if len(free) < _POOL_MAX_FREE:
            free.append(ws)


class Step:
    """One accepted step on the tape, for its VJP (and its replay under `create_graph`).

    `ws.a` holds the stages k_0..k_{s-1} and `ws.b` the stage inputs (`ws.b` row 0 unused:
    stage 0's input is `y0`), `saved[i]` what the kernel saved at stage `i` (`saved[0]` for the
    first stage, which a FSAL method takes from the previous step), `fresh` whether the first
    stage was evaluated for this step, at `t_first` (else it is the previous step's last), and
    `t_end` the time of the stages with `c == 1` (`t1`, or the float below a jump).
    """

    __slots__ = ("t0", "t1", "t_end", "t_first", "ws", "saved", "fresh")

    def __init__(self, t0, t1, t_end, t_first, ws: Workspace, saved, fresh: bool):
        self.t0, self.t1, self.t_end, self.t_first = t0, t1, t_end, t_first
        self.ws, self.saved, self.fresh = ws, saved, fresh


class Stepper:
    """Takes the Runge–Kutta steps of one solve for the loop, without autograd.

    The states it returns are views of its buffers: call `finish` on the final state (and
    `keep` on a state kept past the next step). With `record`, the kernel saves what its VJP
    needs and the accepted steps are kept in `tape` (their buffers are not recycled;
    `release` does) and passed to `on_accept`.

    Arguments:
        kernel: the right-hand side.
        solver: the Runge–Kutta method.
        like: a state (shape, dtype and device of the buffers).
        tolerances: `(rtol, atol)` of the error ratio, or None for steps without one.
        norm: the error norm of a scaled error (absolutely homogeneous); RMS by default.
        record: keep the accepted steps for their VJP.
        on_accept: called with each recorded step after it is appended to `tape`.
    """

    def __init__(
        self,
        kernel: AbstractStageKernel,
        solver: AbstractSolver,
        like: torch.Tensor,
        *,
        tolerances: tuple[float, float] | None = None,
        norm: Norm | None = None,
        record: bool = False,
        on_accept: Callable[[Step], None] | None = None,
    ):
        self.kernel = kernel
        self.record = record
        self.on_accept = on_accept
        self.fsal = solver.fsal
        self.order = solver.order
        self.coef = coef = solver.coefficients(like)
        self.s = len(coef.c)
        self.n_new = self.s - 1  # evaluations per step besides the first stage
        self.c_new = tuple(enumerate(coef.c[1:], start=1))
        self.last = self.s - 1 if self.fsal else 0  # the inputs row that holds y1
        self.own_inputs = record and kernel.keeps_inputs
        self._no_rows = (None,) * self.s
        self.tolerances = tolerances
        if tolerances is not None:
            self.rtol, atol = tolerances
            self._atol_rtol = atol / self.rtol
        self.norm = rms_norm(like.numel()) if norm is None else norm
        self.tape: list[Step] = []
        self._fresh: tuple[torch.Tensor, Any, float] | None = None
        self._current: Workspace | None = None  # holds the current state (not recording)
        self._spare: Workspace | None = None  # where the next step writes
        self._ay: torch.Tensor | None = None  # |y| of the current state
        self._ay1: torch.Tensor | None = None  # |y1| of the last step
        self._scale: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None)  # scaled_norm

    def evaluate(self, t: float, y: torch.Tensor) -> torch.Tensor:
        """`f(t, y)`: a freshly evaluated first stage, at a (new) current state `y`."""
        k, saved = self.kernel.evaluate_first(t, y, self.record)
        if self.record:
            self._fresh = (k, saved, t)
        if self.tolerances is not None:
            self._ay = y.abs()
        return k

    def scaled_norm(self, x: torch.Tensor, y0: torch.Tensor) -> float:
        """`norm(x / (atol + rtol |y0|))`, the measure of the initial step selection
        (`_loop.initial_step`); the scale is computed once per `y0`."""
        if self._scale[0] is not y0:
            rtol, atol = self.tolerances
            self._scale = (y0, y0.abs().mul_(rtol).add_(atol))
        return self.norm(x / self._scale[1])

    def probe(self, t: float, y: torch.Tensor, k: torch.Tensor, h: float) -> torch.Tensor:
        """`f(t + h, y + h k)`, the trial evaluation of the initial step selection: not part
        of the solution."""
        return self.kernel.evaluate(t + h, torch.add(y, k, alpha=h), None, False)[0]

    def whole(self, controller, y0: torch.Tensor, t0: float, t1: float, floor, dtmin):
        """The whole solve from `(t0, y0)` to `t1` with no stop between, as `_loop.integrate`
        takes it (`floor` and `dtmin` its minimum step), in one call: `(y1, counts, failure)`
        with `failure` None or `_loop.failure_error`'s arguments; or None where this stepper
        has no such call (the generic one: the loop then takes the steps)."""
        return None

    def step(
        self, t0: float, t1: float, y0: torch.Tensor, k0: torch.Tensor, t_end: float
    ) -> tuple[torch.Tensor, float | None, Any]:
        """One step from `(t0, y0)` to `t1` with first stage `k0`; `t_end` is the time handed to
        `f` for the stages with `c == 1` (`t1`, or the float below a jump).

        **Returns:** `(y1, ratio, record)`: the error ratio (None without tolerances) and the
        record that `accept` and `last_stage` take.
        """
        coef, s = self.coef, self.s
        h = t1 - t0
        ws = self._spare
        if ws is None:
            ws = self._spare = take(s, y0)
        stages, inputs = ws.a, ws.b
        current = self._current
        if current is not None and y0 is current.b.sel[self.last]:
            y0f = current.b.row[self.last]  # the view exists already
        else:
            y0f = y0.reshape(1, -1)
        stages.sel[0].copy_(k0)
        rows, head, k_sel = coef.rows, stages.head, stages.sel
        evaluate, record, own = self.kernel.evaluate, self.record, self.own_inputs
        # stage inputs: rows of `inputs`, or (when the kernel keeps them) tensors of their own
        row_out, y_sel = (self._no_rows, None) if own else (inputs.row, inputs.sel)
        saved = [None] * s
        for i, c in self.c_new:
            y_i = torch.addmm(y0f, rows[i], head[i], alpha=h, out=row_out[i])
            y_i = y_i.view(y0.shape) if own else y_sel[i]
            _, saved[i] = evaluate(t_end if c == 1.0 else t0 + c * h, y_i, k_sel[i], record)
        if self.fsal:
            y1 = y_i
        else:  # y1 goes into inputs row 0 (stage 0's input is y0, never stored)
            y1 = torch.addmm(y0f, coef.b, stages.flat, alpha=h, out=row_out[0])
            y1 = y1.view(y0.shape) if own else inputs.sel[0]
        ratio = None
        if self.tolerances is not None:
            torch.mm(coef.b_err, stages.flat, out=ws.err_row)
            self._ay1 = ay1 = y1.abs()
            # e / (atol + rtol m) = (e / rtol) / (atol / rtol + m), and the norm is absolutely
            # homogeneous: norm(c e) = |c| norm(e); so h and rtol are applied to the float
            scale = torch.maximum(self._ay, ay1).add_(self._atol_rtol)
            ratio = self.norm(ws.err.div_(scale)) * (abs(h) / self.rtol)
        if not record:
            return y1, ratio, ws
        saved[0], fresh, t_first = self._first_saved(k0)
        return y1, ratio, Step(t0, t1, t_end, t_first, ws, saved, fresh)

    def _first_saved(self, k0: torch.Tensor) -> tuple[Any, bool, float | None]:
        """What the kernel saved for `k0`: a fresh evaluation, or the last accepted stage."""
        if self._fresh is not None and k0 is self._fresh[0]:
            return self._fresh[1], True, self._fresh[2]
        last = self.tape[-1] if self.tape else None
        if last is None or not self.fsal or k0.data_ptr() != last.ws.a.data[-1].data_ptr():
            raise RuntimeError("internal error: the first stage of a step has no recorded source")
        return last.saved[-1], False, None

    def interpolate(
        self, record, y0: torch.Tensor, t0: float, t1: float, ts: list[float]
    ) -> torch.Tensor:
        """The continuous extension of the step of `record` (from `(t0, y0)` to `t1`) at the
        times `ts` inside it: `y0 + h sum_i b_i(theta) k_i`, stacked on a new first axis."""
        h = t1 - t0
        weights = self.coef.dense_weights([(t - t0) / h for t in ts])
        stages = (record.ws if isinstance(record, Step) else record).a.flat
        return torch.addmm(y0.reshape(1, -1), weights, stages, alpha=h).view(len(ts), *y0.shape)

    def last_stage(self, record) -> torch.Tensor:
        """The step's last stage (for FSAL methods `f(t1, y1)`)."""
        ws = record.ws if isinstance(record, Step) else record
        return ws.a.sel[self.s - 1]

    def accept(self, record) -> None:
        """The loop accepted the step of `record`."""
        self._ay = self._ay1
        if self.record:
            self.tape.append(record)
            self._spare, self._current = None, record.ws
            if self.on_accept is not None:
                self.on_accept(record)
        else:
            self._spare, self._current = self._current, record

    def keep(self, y: torch.Tensor) -> torch.Tensor:
        """`y`, copied if it lives in a buffer that later steps overwrite (for saved states)."""
        ws = self._current
        owned = ws is not None and y.untyped_storage().data_ptr() == ws.b.data.data_ptr()
        return y.clone() if owned else y

    def finish(self, y: torch.Tensor) -> torch.Tensor:
        """The final state as a tensor of its own; the buffers not on the tape are recycled."""
        y = self.keep(y)
        recycle = [self._spare] if self.record else [self._spare, self._current]
        self._spare = self._current = None
        give([ws for ws in recycle if ws is not None])
        return y

    def release(self, keep_last: bool = False) -> None:
        """Recycle the buffers of `tape` (after the backward pass that read them); with
        `keep_last`, all but the last step's (which a FSAL next step still reads)."""
        keep = self.tape[-1:] if keep_last else []
        give([step.ws for step in self.tape[: len(self.tape) - len(keep)]])
        self.tape = keep

    def step_vjp(self, step: Step, g: torch.Tensor, extra, ws: Workspace, sums, seed=None) -> tuple:
        """The VJP of one recorded step (see the module docstring).

        **Arguments:** `g` = dL/dy1 as a `(1, N)` row; `extra` the next step's gradient
        workspace when its first stage is this step's last (else None); `ws` a workspace for
        this step's gradients (`ws.a` gets dL/dk_j, `ws.b` the stage inputs' gradients); `sums`
        the `GradientSum` that gets the stages' VJP records; `seed` None, or an `(s, N)` tensor
        added to dL/dk_j (the states interpolated inside the step: `h sum b_j(theta) dL/dy`).

        **Returns:** `(dL/dy0, folded)`: a new `(1, N)` row, and whether `sums` folded.
        """
        coef, kernel = self.coef, self.kernel
        s, h, b = self.s, step.t1 - step.t0, coef.b_floats
        gk, gy = ws.a, ws.b
        saved = step.saved
        seeded = coef.dense_used if seed is not None else (False,) * s
        folded = False
        for j in range(s - 1, 0, -1):
            row = gk.row[j]
            if j == s - 1:
                if b[j] != 0.0:
                    torch.mul(g, h * b[j], out=row)
                    if extra is not None:
                        row.add_(extra.row[0])
                elif extra is not None:
                    row.copy_(extra.row[0])
                elif seeded[j]:
                    row.zero_()
                else:
                    gy.sel[j].zero_()  # the last stage feeds nothing (FSAL's unused last stage)
                    continue
            elif b[j] == 0.0 and not coef.feeds[j] and not seeded[j]:
                gy.sel[j].zero_()
                continue
            else:
                torch.addmm(g, coef.cols[j], gy.tail[j], beta=h * b[j], alpha=h, out=row)
            if seeded[j]:
                row.add_(seed[j : j + 1])
            folded |= sums.add(kernel.vjp(saved[j], gk.sel[j], gy.sel[j])[1])
        if s == 1:
            torch.mul(g, h * b[0], out=gk.row[0])
            g = g.clone()
        else:
            torch.addmm(g, coef.cols[0], gy.tail[0], beta=h * b[0], alpha=h, out=gk.row[0])
            g = torch.addmm(g, coef.ones, gy.tail[0])
        if seeded[0]:
            gk.row[0].add_(seed[0:1])
        if step.fresh:  # the first stage was evaluated at y0: its VJP adds to dL/dy0
            folded |= sums.add(kernel.vjp(saved[0], gk.sel[0], gy.sel[0])[1])
            g.add_(gy.row[0])
        return g, folded

    def tape_vjp(self, g: torch.Tensor) -> torch.Tensor | None:
        """dL/dy0 from `g` = dL/dy1 of the last step: `step_vjp` over the whole tape in reverse
        (no state saved inside it) in one call; or None where this stepper has no such call
        (the generic one: the sweep then takes the steps one at a time)."""
        return None

    def input_gradients(self, sums) -> list:
        """The gradients for `kernel.inputs` over the VJPs of one backward sweep: `sums.result()`
        (a compiled stepper sums them inside its `step_vjp` instead)."""
        return sums.result()

    def graph_step(self, f, t0: float, t1: float, y0, k0, t_end: float):
        """The step of `step` with out-of-place operations on `f(t, y)`, recorded by autograd.

        **Returns:** `(y1, stages)`, the stages as an `(s, N)` matrix (the last one is the next
        step's first for FSAL methods).
        """
        coef, h = self.coef, t1 - t0
        y0f = y0.reshape(1, -1)
        ks = [k0.reshape(-1)]
        for i, c in self.c_new:
            y_i = torch.addmm(y0f, coef.rows[i], torch.stack(ks), alpha=h).view_as(y0)
            ks.append(f(t_end if c == 1.0 else t0 + c * h, y_i).reshape(-1))
        stages = torch.stack(ks)
        if self.fsal:
            return y_i, stages
        return torch.addmm(y0f, coef.b, stages, alpha=h).view_as(y0), stages
