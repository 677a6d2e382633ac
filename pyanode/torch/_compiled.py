"""The compiled path of `MLPField`: whole Runge–Kutta steps and their VJPs as numba kernels.

`MLPKernel` evaluates the field in a handful of BLAS calls, but a Dopri5 step still issues some
fifty torch operations (stage sums, the MLP's products and activations at six stages, the
error norm), each paying a dispatch that costs more than its arithmetic at Neural ODE sizes.
Here one call of a compiled kernel takes the whole step (`rk_step`) and one more its VJP
(`rk_step_vjp`), summing the parameter gradients as it goes; the loop, the controller, the
tape and both gradient methods are unchanged (`CompiledStepper` is a `Stepper`).

Around those calls a solve still spends most of its time in Python (the loop, the controller,
the conversions), so a solve with no stop between `t0` and `t1` and a `PIController`
(inference, the forwards of `Backprop`, with its tape, and of the adjoints, the backsolve
adjoint's backward solve) goes through `adaptive_solve` instead (`Stepper.whole`):
`_loop.integrate`'s algorithm, step for step, in one compiled call; `Backprop`'s reverse sweep
over such a tape is one call of `tape_vjp`.
`tests/test_compiled_loop.py` holds it to bit-identical results against the Python loop
(`WHOLE_SOLVES = False` turns only it off).

`compiled_applies` is the one place that decides when: CPU, float32/float64, ReLU, a small
evaluation (where dispatch, not arithmetic, is the cost), the default RMS error norm with
scalar tolerances, and numba importable (an optional dependency: without it
everything runs the torch path). `PYANODE_COMPILED=0` in the environment turns it off. The
kernels are compiled on first use and cached on disk (see `_compiled_kernels`).
"""

from __future__ import annotations

import functools
import math
import os
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from pyanode.solvers._controller import PIController
from pyanode.solvers._loop import Counts
from pyanode.solvers._step import Step, Stepper, take

if TYPE_CHECKING:
    from pyanode.torch._fused import MLPKernel

ENV_SWITCH = "PYANODE_COMPILED"
# whether a whole solve may go through `adaptive_solve` (False: the Python loop takes every
# solve's steps; the tests compare the two)
WHOLE_SOLVES = True


@functools.cache
def kernels() -> ModuleType | None:
    """The numba kernels module, or None when numba (or scipy, whose BLAS numba's `np.dot`
    calls) cannot be imported or `PYANODE_COMPILED=0`."""
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return None
    try:
        import scipy.linalg.cython_blas  # noqa: F401  (numba's np.dot needs it)

        from pyanode.torch import _compiled_kernels
    except ImportError:
        return None
    return _compiled_kernels


# The activations the compiled path takes. The kernels have tanh too, but numba's scalar libm
# tanh costs ~10 ns an element against torch's vectorised one, which makes the compiled step
# slower than the torch one for tanh fields.
ACTIVATIONS = ("relu",)

# Where the compiled steps pay: they remove the per-operation dispatch that dominates small
# evaluations, but their element-wise loops and scipy's BLAS lose to torch's vectorised kernels
# and MKL on large ones. Above this many hidden activations per evaluation (batch x width), or
# this width, the torch path is faster (benchmarks/scaling.py shapes, one core).
MAX_ACTIVATIONS, MAX_WIDTH = 32768, 128


def compiled_applies(kernel: MLPKernel, like: torch.Tensor, options: dict[str, Any]) -> bool:
    """Whether the steps of a solve of `kernel` on states `like` (its `(d, B)` layout) with
    the stepper `options` go through the compiled kernels."""
    tolerances = options.get("tolerances")
    return (
        ("relu" if kernel.relu else "tanh") in ACTIVATIONS
        and like.device.type == "cpu"
        and like.dtype in (torch.float32, torch.float64)
        and like.ndim == 2
        and kernel.w0z.shape[0] <= MAX_WIDTH
        and like.shape[1] * kernel.w0z.shape[0] <= MAX_ACTIVATIONS
        and options.get("norm") is None
        and (tolerances is None or not isinstance(tolerances[1], torch.Tensor))
        and kernels() is not None
    )


def stepper(kernel: MLPKernel, solver: Any, like: torch.Tensor, **options: Any) -> Stepper:
    """The stepper of a solve of `kernel`: compiled where `compiled_applies`, else generic."""
    if compiled_applies(kernel, like, options):
        return CompiledStepper(kernel, solver, like, **options)
    return Stepper(kernel, solver, like, **options)


def adjoint_stepper(
    kernel: MLPKernel, system: Any, solver: Any, like: torch.Tensor, **options: Any
) -> Stepper:
    """The stepper of the backward solve of an adjoint of `kernel` (`system`, on states
    `like`): compiled for the backsolve adjoint with the seminorm where `compiled_applies`
    (the error norm is then computed in the kernel), else generic. `system` is the adjoint's
    `_AdjointKernel`: no `tape` for the backsolve adjoint, no `sizes` for the seminorm."""
    backsolve_seminorm = system.tape is None and not system.sizes and options.get("record")
    plain = {**options, "norm": None}
    if backsolve_seminorm and compiled_applies(kernel, like[0], plain):
        return CompiledAdjointStepper(kernel, system, solver, like, **options)
    return Stepper(system, solver, like, **options)


_TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


def _buffer(shape: Any, dtype: np.dtype, zero: bool = False) -> np.ndarray:
    """A numpy array in memory from torch's allocator (so that torch's memory accounting,
    `PeakMemory` and the profiler see the compiled path's tape as they see the torch path's)."""
    make = torch.zeros if zero else torch.empty
    return make(shape, dtype=_TORCH_DTYPES[np.dtype(dtype)]).numpy()


def _np(x: torch.Tensor) -> np.ndarray:
    """A C-contiguous numpy view (or copy, if not contiguous) of a CPU tensor."""
    return x.detach().contiguous().numpy()


class _Tableau:
    """A solver's tableau as the float64 numpy arrays the kernels read."""

    def __init__(self, solver: Any):
        tab = solver.tableau
        s = tab.stages
        self.a = np.zeros((s, s), dtype=np.float64)
        for i, row in enumerate(tab.a):
            self.a[i, : len(row)] = row
        self.b = np.array(tab.b, dtype=np.float64)
        self.b_err = np.array(tab.b_err if tab.b_err is not None else [0.0] * s, np.float64)
        self.c = np.array(tab.c, dtype=np.float64)


@functools.cache
def _tableau(solver: Any) -> _Tableau:
    return _Tableau(solver)


def compiled_weights(kernel: MLPKernel) -> CompiledWeights:
    """`kernel`'s packed weights, made once per kernel (per solve: its forward and, for the
    backsolve adjoint, its backward solve share them)."""
    w = kernel.__dict__.get("_compiled_weights")
    if w is None:
        w = kernel._compiled_weights = CompiledWeights(kernel)
    return w


class CompiledWeights:
    """An `MLPKernel`'s weights copied into the packed layout of `_compiled_kernels` (once per
    solve: a solve's steps and VJPs, and an adjoint's backward solve, see the weights of its
    start)."""

    def __init__(self, kernel: MLPKernel):
        w0, _, w1, b1, w2, b2 = (p.detach().numpy() for p in kernel.params)  # b0: in bias0
        hidden, d = w0.shape[0], kernel.w0z.shape[1]
        nb = kernels()
        self.packed = np.empty(nb.weights_size(d, hidden), w0.dtype)
        nb.pack(w0, d, kernel.w_t is not None, w1, b1, w2, b2, self.packed)
        self.bias0 = np.ascontiguousarray(kernel.bias0.numpy())
        self.act = 0 if kernel.relu else 1
        self.d, self.hidden = d, hidden


# `adaptive_solve`'s outcomes as `_loop.failure_error` kinds (None: solved)
_FAILURES = (None, "max_steps", "dt_underflow", "nonfinite", "nonfinite_state",
             "nonfinite_field", "nonfinite_start")  # fmt: skip


@functools.cache
def _control(controller: PIController) -> np.ndarray:
    """A `PIController`'s settings in the order `adaptive_solve` reads them (NaN for None)."""
    c = controller
    values = (c.pcoeff, c.icoeff, c.safety, c.factormin, c.factormax, c.dt0, c.dtmin, c.dtmax)
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


# the accepted steps of the last taped solve per (stages, state shape, width, dtype, controller,
# tolerances): the rows of the next one's tape (a solve that needs more runs again, with as many
# as it counted; one that needs fewer leaves rows unused)
_TAPE_ROWS: dict[tuple, int] = {}


def _whole(stepper: Any, adjoint: bool, controller: Any, z0: torch.Tensor, t0, t1, floor,
           dtmin, grads: tuple, scratch: np.ndarray):  # fmt: skip
    """`Stepper.whole` through `adaptive_solve` for a state `z0` (u, d, B), keeping a tape
    when the stepper records: None unless the controller is a `PIController` with the
    stepper's scalar tolerances."""
    if not WHOLE_SOLVES or type(controller) is not PIController or stepper.tolerances is None:
        return None
    nb, w, tab, s = stepper.nb, stepper.weights, stepper.tab, stepper.s
    dtype, shape, record = w.packed.dtype, z0.shape, stepper.record
    acts_shape = (2, s, w.hidden, shape[-1])
    key = (s, shape, w.hidden, dtype, controller, stepper.tolerances)
    rows = max(_TAPE_ROWS.get(key, 8), 2) if record else 2
    k_first, trial = np.empty((2, *shape), dtype)
    acts = np.empty((2, *acts_shape[:1], *acts_shape[2:]), dtype)
    z1 = torch.empty(shape, dtype=z0.dtype)
    info = np.empty(6)
    rtol, atol = stepper.tolerances
    while True:
        stages, inputs = _buffer((2, rows, s, *shape), dtype)
        times = np.empty((rows if record else 0, 4))
        if record:
            step_acts = _buffer((rows, *acts_shape), dtype)
        else:  # the adjoint's steps keep none
            step_acts = stepper._acts[None] if not adjoint else np.empty((0,) * 5, dtype)
        status = nb.adaptive_solve(
            adjoint, record, _np(z0), t0, t1, tab.a, tab.b, tab.b_err, tab.c, stepper.fsal,
            stepper.order, w.packed, w.bias0, w.act, stages, inputs, step_acts, times, acts,
            k_first, trial, *grads, scratch, rtol, atol, _control(controller),
            controller.max_steps, floor, dtmin, z1.numpy(), info,
        )  # fmt: skip
        if status != nb.NEED_ROOM:
            break
        rows = int(info[3])
        stages = inputs = step_acts = None  # freed before the larger tape is made
    if status:
        return None, None, (_FAILURES[status], float(info[0]), float(info[1]), int(info[2]))
    nfe, accepted, rejected, nfe_graph = (int(x) for x in info[2:])
    if record:
        _TAPE_ROWS[key] = accepted
        stepper.tape = _tape(stepper, z0[0], stages, inputs, step_acts, times, accepted)
        stepper.rows = (inputs.reshape(rows, s, *shape[1:]), step_acts, times[:accepted], z0[0])
    return z1, Counts(nfe, accepted, rejected, nfe_graph), None


class _Rows:
    """One step's rows of a compiled tape where `Step.ws` has them: `a.data` the stages, `b.data`
    the stage inputs; `key` None, so `give` never pools them."""

    __slots__ = ("key", "a", "b", "data")

    def __init__(self, data, a=None, b=None):
        self.key, self.data, self.a, self.b = None, data, a, b


def _tape(stepper, x0, stages, inputs, step_acts, times, n: int) -> list[Step]:
    """The `Step`s of the first `n` rows of a tape of `adaptive_solve` (from `x0`)."""
    stages, inputs = torch.from_numpy(stages)[:, :, 0], torch.from_numpy(inputs)[:, :, 0]
    tape, y0 = [], x0
    for i, (t0, t1, t_end, t_first) in enumerate(times[:n].tolist()):
        fresh = not math.isnan(t_first)  # else the previous step's last stage
        ws = _Rows(None, _Rows(stages[i]), _Rows(inputs[i]))
        saved = (step_acts[i], y0 if fresh else None)
        tape.append(Step(t0, t1, t_end, t_first if fresh else None, ws, saved, fresh))
        y0 = inputs[i, stepper.last]
    return tape


class CompiledStepper(Stepper):
    """`Stepper` with each step one `rk_step` call and each step's VJP one `rk_step_vjp` call.

    The parameter gradients of a backward sweep are summed inside the VJP kernel (not as
    records in `sums`) and handed over by `input_gradients`.
    """

    def __init__(self, kernel: MLPKernel, solver: Any, like: torch.Tensor, **options: Any):
        Stepper.__init__(self, kernel, solver, like, **options)
        self.nb = kernels()
        self.weights = w = compiled_weights(kernel)
        self.tab = _tableau(solver)
        self.batch = like.shape[1]
        self.acts_shape = (2, self.s, w.hidden, self.batch)
        dtype = w.packed.dtype
        self._acts = _buffer(self.acts_shape, dtype)  # scratch when not recording
        self._acts1 = np.empty((2, w.hidden, self.batch), dtype)  # probe's
        self._none1 = np.empty(0, dtype)
        self._none2 = np.empty((0, 0), dtype)
        self._none3 = np.empty((0, 0, 0), dtype)
        self._grads: np.ndarray | None = None
        self._scratch: np.ndarray | None = None
        self.rows: tuple | None = None  # the tape's arrays when `adaptive_solve` kept it
        self.rtol_atol = (0.0, 0.0) if self.tolerances is None else self.tolerances

    def evaluate(self, t: float, y: torch.Tensor) -> torch.Tensor:
        w = self.weights
        k = torch.empty_like(y, memory_format=torch.contiguous_format)
        acts = _buffer(self.acts_shape[:1] + self.acts_shape[2:], w.packed.dtype)
        self.nb.evaluate(t, _np(y), w.packed, w.bias0, w.act, acts[0], acts[1], k.numpy())
        if self.record:
            self._fresh = (k, (acts, y), t)
        return k

    def scaled_norm(self, x: torch.Tensor, y0: torch.Tensor) -> float:
        rtol, atol = self.tolerances
        return self.nb.scaled_norm(_np(x).ravel(), _np(y0).ravel(), rtol, atol, 1)

    def probe(self, t: float, y: torch.Tensor, k: torch.Tensor, h: float) -> torch.Tensor:
        w, none, shape = self.weights, self._none1, (1, *y.shape)
        out = torch.empty_like(y, memory_format=torch.contiguous_format)
        self.nb.probe(
            False, t, _np(y).reshape(shape), _np(k).reshape(shape), h, w.packed, w.bias0,
            w.act, out.numpy().reshape(shape), self._acts1, none, none,
        )  # fmt: skip
        return out

    def whole(self, controller, y0, t0, t1, floor, dtmin):
        if self.on_accept is not None:
            return None
        z0 = y0.reshape(1, *y0.shape)
        done = _whole(self, False, controller, z0, t0, t1, floor, dtmin, (self._none1,) * 5,
                      self._none1)  # fmt: skip
        if done is None or done[0] is None:
            return done
        return done[0][0], *done[1:]

    def step(self, t0, t1, y0, k0, t_end):
        h = t1 - t0
        ws = self._spare
        if ws is None:
            ws = self._spare = take(self.s, y0)
        record, w, tab = self.record, self.weights, self.tab
        fresh = record and self._fresh is not None and k0 is self._fresh[0]
        acts = _buffer(self.acts_shape, w.packed.dtype) if record else self._acts
        if fresh:
            acts[:, 0] = self._fresh[1][0]
        rtol, atol = self.rtol_atol
        x0 = _np(y0)
        ratio = self.nb.rk_step(
            x0, _np(k0), t0, h, t_end, tab.a, tab.b, tab.b_err, tab.c, self.fsal,
            w.packed, w.bias0, w.act, ws.a.data.numpy(), ws.b.data.numpy(), acts, rtol, atol,
        )  # fmt: skip
        y1 = ws.b.sel[self.last]
        ratio = None if self.tolerances is None else ratio
        if not record:
            return y1, ratio, ws
        if fresh:
            saved, t_first = (acts, self._fresh[1][1]), self._fresh[2]
        else:
            last = self.tape[-1] if self.tape else None
            if last is None or not self.fsal or k0.data_ptr() != last.ws.a.data[-1].data_ptr():
                raise RuntimeError("internal error: the first stage of a step has no source")
            saved, t_first = (acts, None), None
        return y1, ratio, Step(t0, t1, t_end, t_first, ws, saved, fresh)

    def step_vjp(self, step, g, extra, ws, sums, seed=None):
        w, tab = self.weights, self.tab
        d, batch = w.d, self.acts_shape[3]
        if self._grads is None or step is self.tape[-1]:  # a new backward sweep
            self._grads = _buffer(self.nb.grads_size(d, w.hidden, batch), w.packed.dtype, zero=True)
            self._scratch = _buffer(self.nb.scratch_size(d, w.hidden, batch), w.packed.dtype)
        acts, y0 = step.saved
        g0 = torch.empty_like(g)
        self.nb.rk_step_vjp(
            _np(g).reshape(d, batch),
            self._none2 if extra is None else extra.data[0].numpy(),
            self._none3 if seed is None else _np(seed).reshape(self.s, d, batch),
            step.fresh, self._none2 if y0 is None else _np(y0),
            step.t0, step.t1 - step.t0, step.t_end, 0.0 if step.t_first is None else step.t_first,
            tab.a, tab.b, tab.c, w.packed, w.act, step.ws.b.data.numpy(), acts,
            ws.a.data.numpy(), ws.b.data.numpy(), self._scratch, self._grads,
            g0.numpy().reshape(d, batch),
        )  # fmt: skip
        return g0, False

    def release(self, keep_last: bool = False) -> None:
        self.rows = None
        Stepper.release(self, keep_last)

    def tape_vjp(self, g: torch.Tensor) -> torch.Tensor | None:
        """The VJPs of a tape of `adaptive_solve` in one `tape_vjp` call (None for a tape the
        Python loop recorded)."""
        if self.rows is None or not WHOLE_SOLVES:
            return None
        inputs, acts, times, x0 = self.rows
        w, tab, nb = self.weights, self.tab, self.nb
        d, batch, dtype = w.d, self.batch, w.packed.dtype
        self._grads = _buffer(nb.grads_size(d, w.hidden, batch), dtype, zero=True)
        self._scratch = _buffer(nb.scratch_size(d, w.hidden, batch), dtype)
        gk, gy = np.empty((2, self.s, d, batch), dtype), np.empty((self.s, d, batch), dtype)
        g0 = torch.empty_like(g)
        nb.tape_vjp(
            _np(g).reshape(d, batch), _np(x0), inputs, acts, times, self.last, tab.a, tab.b,
            tab.c, w.packed, w.act, gk, gy, self._scratch, self._grads,
            g0.numpy().reshape(d, batch),
        )  # fmt: skip
        return g0

    def input_gradients(self, sums: Any) -> list[torch.Tensor | None]:
        """The gradients for `kernel.inputs` summed by the VJPs of the sweep."""
        w = self.weights
        if self._grads is None:
            size = self.nb.grads_size(w.d, w.hidden, self.batch)
            self._grads = _buffer(size, w.packed.dtype, zero=True)
        grads, self._grads = self._grads, None
        return _input_gradients(self.kernel, w, grads, self.batch)


def _input_gradients(kernel: MLPKernel, w: CompiledWeights, flat: np.ndarray, batch: int):
    """The gradients for `kernel.inputs` from the kernels' flat gradient array `flat`."""
    nb = kernels()
    gw0z, gwt, gw1, gb1, gw2, gb2, gbias0 = (
        torch.from_numpy(x) for x in nb.unpack_grads(flat, w.d, w.hidden, batch)
    )
    parts, arg_grads = [gw0z], []
    if kernel.control is not None:
        parts.append(gbias0 @ kernel.control)
        arg_grads.append(gbias0.t() @ kernel.w0x)
    if kernel.w_t is not None:
        parts.append(gwt.unsqueeze(1))
    grad_w0 = torch.cat(parts, dim=1) if len(parts) > 1 else gw0z
    return [*arg_grads, grad_w0, gbias0.sum(1), gw1, gb1, gw2, gb2]


class CompiledAdjointStepper(Stepper):
    """The backward solve of the backsolve adjoint (seminorm) with each step one
    `adjoint_step` call; the parameter integrals are summed over the accepted steps here
    (`input_gradients`), not kept on a tape."""

    def __init__(self, kernel: MLPKernel, system: Any, solver: Any, like, **options: Any):
        options = {**options, "record": False, "on_accept": None}  # the norm: initial_step
        Stepper.__init__(self, system, solver, like, **options)
        self.nb = nb = kernels()
        self.field = kernel
        self.weights = w = compiled_weights(kernel)
        self.tab = _tableau(solver)
        _, d, self.batch = like.shape
        dtype = w.packed.dtype
        size = nb.grads_size(d, w.hidden, self.batch)
        self._total = _buffer(size, dtype, zero=True)
        # the integrands of a fresh first stage, a step, its last stage, the last accepted one
        self._g_fresh, self._g_step, self._g_last, self._g_prev = (
            _buffer(size, dtype, zero=True) for _ in range(4)
        )
        self._acts = _buffer((2, w.hidden, self.batch), dtype)
        self._scratch = _buffer(nb.scratch_size(d, w.hidden, self.batch), dtype)
        self._fresh_k: torch.Tensor | None = None
        self._h = 0.0

    def evaluate(self, t: float, z: torch.Tensor) -> torch.Tensor:
        w = self.weights
        k = torch.empty_like(z, memory_format=torch.contiguous_format)
        self.nb.adjoint_evaluate(
            t, _np(z), w.packed, w.bias0, w.act, k.numpy(), self._acts, self._g_fresh,
            self._scratch,
        )  # fmt: skip
        self._fresh_k = k
        return k

    def scaled_norm(self, x: torch.Tensor, z0: torch.Tensor) -> float:
        rtol, atol = self.tolerances  # the seminorm: the largest over y and a
        return self.nb.scaled_norm(_np(x).ravel(), _np(z0).ravel(), rtol, atol, 2)

    def probe(self, t: float, z: torch.Tensor, k: torch.Tensor, h: float) -> torch.Tensor:
        w = self.weights
        out = torch.empty_like(z, memory_format=torch.contiguous_format)
        # g_last as scratch: probe runs before the first step, which overwrites it
        self.nb.probe(
            True, t, _np(z), _np(k), h, w.packed, w.bias0, w.act, out.numpy(), self._acts,
            self._g_last, self._scratch,
        )  # fmt: skip
        return out

    def whole(self, controller, z0, t0, t1, floor, dtmin):
        grads = (self._total, self._g_fresh, self._g_step, self._g_last, self._g_prev)
        return _whole(self, True, controller, z0, t0, t1, floor, dtmin, grads, self._scratch)

    def step(self, t0, t1, z0, k0, t_end):
        h = t1 - t0
        ws = self._spare
        if ws is None:
            ws = self._spare = take(self.s, z0)
        w, tab = self.weights, self.tab
        g_first = self._g_fresh if k0 is self._fresh_k else self._g_prev
        rtol, atol = (0.0, 0.0) if self.tolerances is None else self.tolerances
        ratio = self.nb.adjoint_step(
            _np(z0), _np(k0), t0, h, t_end, tab.a, tab.b, tab.b_err, tab.c, self.fsal,
            w.packed, w.bias0, w.act, ws.a.data.numpy(), ws.b.data.numpy(), self._acts,
            g_first, self._g_step, self._g_last, self._scratch, rtol, atol,
        )  # fmt: skip
        self._h = h
        ratio = None if self.tolerances is None else ratio
        return ws.b.sel[self.last], ratio, ws

    def accept(self, record) -> None:
        self.nb.add_scaled(self._total, self._g_step, -self._h)  # the integrands, -h b_i each
        self._g_prev, self._g_last = self._g_last, self._g_prev
        Stepper.accept(self, record)

    def input_gradients(self, sums: Any) -> list[torch.Tensor | None]:
        """The gradients for the field's inputs: the parameter integrals of the solve."""
        return _input_gradients(self.field, self.weights, self._total, self.batch)
