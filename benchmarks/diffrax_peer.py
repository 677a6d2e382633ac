"""diffrax (JAX) as a peer: the benchmark's ODE block and classifier solved and trained by diffrax
0.7.2 with equinox and optax, starting from the torch model's weights.

What is the same as for the torch libraries: the field `[z, t] -> W1 -> ReLU -> W2 -> ReLU -> W3`
(t the last input column) with the weights copied from the pyanode model, the zero augmentation,
the output layer, the batches (handed over from torch), Dopri5 on [0, 1] with
`PIDController(rtol, atol)` and Adam (optax) at the same learning rate. The error norm is
diffrax's default, `optimistix.rms_norm` of `err / (atol + rtol max(|y0|, |y1|))` over the whole
batch, i.e. sqrt(sum e_i^2 / n) over every element: the same as pyanode's `rms_norm`
(tests/test_benchmarks_diffrax.py compares the two on one array). Backprop is
`RecursiveCheckpointAdjoint`; the adjoint is `BacksolveAdjoint` with `adjoint_rms_seminorm` (error
control on the state and its adjoint only, as the torch peers' seminorm) at the same tolerances.

XLA runs on one thread (`XLA_FLAGS`, set by `benchmarks/__init__.py` before jax is imported, as
torch runs one thread); it runs beside the Python thread, so the CPU time of the timing helpers
(this thread's) leaves it out: compare diffrax on wall time. Every program is compiled by
`eqx.filter_jit` once per shape; that time is measured apart (`compile_s`) and kept out of the
timed epochs and calls. Field evaluations are counted by a host callback in separate, untimed
copies of the programs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
from torch import nn

from benchmarks._timing import Stopwatch

Layers = list  # [(W, b), ...] as jax arrays, W of shape (out, in) as in torch


def versions() -> str:
    flags = os.environ.get("XLA_FLAGS", "")
    return f"diffrax {diffrax.__version__}, jax {jax.__version__} (XLA_FLAGS={flags!r})"


def layers_of(net: nn.Sequential, dtype=None) -> Layers:
    """The `nn.Linear` weights of a torch MLP as jax arrays (copied)."""
    return [
        tuple(jnp.asarray(p.detach().cpu().numpy(), dtype=dtype) for p in (m.weight, m.bias))
        for m in net
        if isinstance(m, nn.Linear)
    ]


class Counter:
    """Field evaluations, counted by a host callback (only in the untimed, counting programs)."""

    def __init__(self):
        self.calls = 0

    def tick(self) -> None:
        self.calls += 1


def field(t, z, layers: Layers, counter: Counter | None = None):
    """The MLP on `[z, t]`, ReLU between layers."""
    if counter is not None:
        jax.debug.callback(counter.tick)
    h = jnp.concatenate([z, jnp.broadcast_to(jnp.asarray(t, z.dtype), (z.shape[0], 1))], axis=1)
    for k, (w, b) in enumerate(layers):
        h = h @ w.T + b
        if k < len(layers) - 1:
            h = jax.nn.relu(h)
    return h


def make_solve(
    gradient: str, rtol: float, atol: float, counter: Counter | None = None, t1: float = 1.0
) -> Callable:
    """`solve(layers, z0) -> (z(t1), steps)`: Dopri5 on [0, t1], `gradient` `"backprop"`
    (`RecursiveCheckpointAdjoint`) or `"adjoint"` (`BacksolveAdjoint`, seminorm)."""
    controller = diffrax.PIDController(rtol=rtol, atol=atol)
    if gradient == "backprop":
        adjoint = diffrax.RecursiveCheckpointAdjoint()
    elif gradient == "adjoint":
        backward = diffrax.PIDController(rtol=rtol, atol=atol, norm=diffrax.adjoint_rms_seminorm)
        adjoint = diffrax.BacksolveAdjoint(stepsize_controller=backward)
    else:
        raise ValueError(f"gradient={gradient!r}; accepted: 'backprop', 'adjoint'")
    term = diffrax.ODETerm(lambda t, z, layers: field(t, z, layers, counter))

    def solve(layers: Layers, z0):
        sol = diffrax.diffeqsolve(
            term, diffrax.Dopri5(), 0.0, t1, None, z0, args=layers,
            stepsize_controller=controller, adjoint=adjoint, saveat=diffrax.SaveAt(t1=True),
            max_steps=100_000,
        )  # fmt: skip
        return sol.ys[-1], sol.stats["num_steps"]

    return solve


def first_call(fn: Callable, *args) -> tuple[object, float]:
    """Call `fn` once (compiling it) and return its result and the seconds it took."""
    start = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    return out, time.perf_counter() - start


# -- one solve of the ODE block -------------------------------------------------------------
@dataclass
class SolveCalls:
    """diffrax's single-solve calls per mode, their compile times and NFE (forward, backward)."""

    calls: dict[str, Callable[[], None]]
    compile_s: dict[str, float]
    nfe: dict[str, tuple[int, int]]


def solve_calls(
    net: nn.Sequential,
    z0: torch.Tensor,
    weight: torch.Tensor,
    *,
    rtol: float,
    atol: float,
    gradients: tuple[str, ...] = ("backprop", "adjoint"),
) -> SolveCalls:
    """The modes of `single_solve`: `forward` (the solve), and per gradient method the solve and
    the gradient of `sum(z1 * weight)` with respect to `z0` and the weights; in the dtype of
    `z0`."""
    layers = layers_of(net, dtype=np.dtype(str(z0.dtype).removeprefix("torch.")))
    z = jnp.asarray(z0.detach().cpu().numpy())
    w = jnp.asarray(weight.detach().cpu().numpy())

    def programs(counter):
        forward = make_solve("backprop", rtol, atol, counter)
        out = {"forward": eqx.filter_jit(lambda layers, z: forward(layers, z)[0])}
        for gradient in gradients:
            solve = make_solve(gradient, rtol, atol, counter)
            loss = lambda layers, z, s=solve: jnp.sum(s(layers, z)[0] * w)  # noqa: E731
            out[gradient] = eqx.filter_jit(jax.grad(loss, argnums=(0, 1)))
        return out

    timed, counter = programs(None), Counter()
    counting = programs(counter)
    calls, compile_s, nfe = {}, {}, {}
    for mode, fn in timed.items():
        compile_s[mode] = first_call(fn, layers, z)[1]
        calls[mode] = lambda fn=fn: jax.block_until_ready(fn(layers, z))
        first_call(counting[mode], layers, z)
        counter.calls = 0
        jax.block_until_ready(counting[mode](layers, z))
        nfe[mode] = counter.calls
    forward = nfe["forward"]
    return SolveCalls(
        calls, compile_s, {mode: (forward, n - forward if mode != "forward" else 0)
                           for mode, n in nfe.items()},
    )  # fmt: skip


# -- training -----------------------------------------------------------------------------------
class TrainRun:
    """diffrax's training state for `training.compare`: the same methods as its torch runs.

    Arguments:
        model: the pyanode `NeuralODE` whose weights are copied.
        augment_dim: zeros appended to the input (ANODE), 0 for NODE.
        gradient: `"backprop"` or `"adjoint"`.
        rtol, atol, lr: tolerances and Adam's learning rate.
        result: the `training.Result` to fill in.
    """

    def __init__(self, model, augment_dim: int, gradient: str, rtol: float, atol: float,
                 lr: float, result) -> None:  # fmt: skip
        self.params = {
            "field": layers_of(model.block.field.net),
            "out": layers_of(nn.Sequential(model.output_map))[0],
        }
        self.optimizer = optax.adam(lr)
        self.opt_state = self.optimizer.init(self.params)
        self.result = result
        self.counter = Counter()
        self.steps_to_nfe = 1  # NFE = 6 steps + this, read off the counting program
        pad = augment_dim

        def loss_fn(solve):
            def loss(params, x, y):
                z0 = jnp.pad(x, ((0, 0), (0, pad))) if pad else x
                z1, steps = solve(params["field"], z0)
                w, b = params["out"]
                logits = z1 @ w.T + b
                return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), steps

            return loss

        loss = loss_fn(make_solve(gradient, rtol, atol))
        counted = loss_fn(make_solve(gradient, rtol, atol, self.counter))
        optimizer = self.optimizer

        @eqx.filter_jit
        def step(params, opt_state, x, y):
            (value, steps), grads = jax.value_and_grad(loss, has_aux=True)(params, x, y)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, value, steps

        self._step = step
        self._count_forward = eqx.filter_jit(counted)
        self._count_both = eqx.filter_jit(jax.grad(lambda p, x, y: counted(p, x, y)[0]))
        self._predict = eqx.filter_jit(self._predictor(pad, gradient, rtol, atol))

    @staticmethod
    def _predictor(pad, gradient, rtol, atol):
        solve = make_solve(gradient, rtol, atol)

        def predict(params, x):
            z0 = jnp.pad(x, ((0, 0), (0, pad))) if pad else x
            w, b = params["out"]
            return jnp.argmax(solve(params["field"], z0)[0] @ w.T + b, axis=1)

        return predict

    @staticmethod
    def _jax(batches) -> list[tuple[jax.Array, jax.Array]]:
        return [(jnp.asarray(x.cpu().numpy()), jnp.asarray(y.cpu().numpy())) for x, y in batches]

    def compile(self, batches) -> None:
        """Compile the training step for every batch shape (the time goes to `compile_s`); the
        counting programs are compiled too, untimed."""
        shapes = {}
        for xb, yb in self._jax(batches):
            shapes.setdefault(xb.shape, (xb, yb))
        seconds = 0.0
        for xb, yb in shapes.values():
            seconds += first_call(self._step, self.params, self.opt_state, xb, yb)[1]
            jax.block_until_ready(self._count_forward(self.params, xb, yb))
            jax.block_until_ready(self._count_both(self.params, xb, yb))
        self.result.compile_s = seconds

    def _nfe(self, xb, yb) -> tuple[int, int]:
        """Forward and backward field evaluations of one batch (host callback, untimed)."""
        self.counter.calls = 0
        _, steps = jax.block_until_ready(self._count_forward(self.params, xb, yb))
        forward = self.counter.calls
        self.steps_to_nfe = forward - 6 * int(steps)
        self.counter.calls = 0
        jax.block_until_ready(self._count_both(self.params, xb, yb))
        return forward, self.counter.calls - forward

    def epoch(self, batches, sync, *, count: bool) -> None:
        """One epoch; timed unless `count` (then the evaluations are counted, untimed)."""
        batches = self._jax(batches)  # the conversion is not timed (torch's batches are built
        steps = []  # outside its timed epoch too)
        if count:
            self._first = np.zeros(2)
            for xb, yb in batches:
                self._first += self._nfe(xb, yb)
                self.params, self.opt_state, *_ = self._step(self.params, self.opt_state, xb, yb)
            return
        with Stopwatch() as epoch:
            for xb, yb in batches:
                with Stopwatch() as solve:
                    self.params, self.opt_state, loss, n = self._step(
                        self.params, self.opt_state, xb, yb
                    )
                    float(loss)  # as torch's loss.item(): wait for the batch
                self.result.solves.add(solve.wall, solve.cpu)
                steps.append(n)
        self.result.epochs.add(epoch.wall, epoch.cpu)
        self.result.nfe_timed.append(
            float(np.mean([6 * int(n) + self.steps_to_nfe for n in steps]))
        )

    def record_first(self, batches: int) -> None:
        """Keep the NFE per batch counted in the warm-up epoch."""
        self.result.nfe_first = tuple(float(v) for v in self._first / batches)

    def count_nfe(self, batches) -> tuple[float, float]:
        """NFE per batch of forward + backward on `batches`, without updating the weights."""
        nfe = np.mean([self._nfe(xb, yb) for xb, yb in self._jax(batches)], axis=0)
        return float(nfe[0]), float(nfe[1])

    def accuracy(self, x: torch.Tensor, y: torch.Tensor) -> float:
        predicted = np.asarray(self._predict(self.params, jnp.asarray(x.cpu().numpy())))
        return float((predicted == y.cpu().numpy()).mean())
