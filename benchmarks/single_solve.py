"""One solve of the ODE block, against the cost of the vector field it evaluates.

The block alone (no output layer, no optimiser): `z1 = block(z0)` under `torch.no_grad()`
("forward"), and `block(z0)` then backward of `sum(z1 * w)` with backprop and with the adjoint.
The reference is the bare field: the `nn.Sequential` MLP on a `(B, d + 1)` input, forward under
`no_grad` and forward + VJP with autograd, on the same weights and batch.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

import torch
from torch import nn

from benchmarks._timing import Samples, alternate, device_sync
from benchmarks.peers import LIBRARIES, contenders
from pyanode import SolverSpec
from pyanode.data import three_spheres


@dataclass
class SolveResult:
    """One library's single-solve times (seconds per call) and NFE."""

    library: str
    mode: str  # "forward" | "backprop" | "adjoint"
    times: Samples
    nfe: tuple[int, int]
    compile_s: float | None = None  # diffrax: compiling this mode's program


@dataclass
class FieldCost:
    """The bare vector field's cost (seconds per call)."""

    forward: Samples
    forward_vjp: Samples


MODES = ("forward", "backprop", "adjoint")


def run(
    *,
    kind: str,
    augment_dim: int,
    batch: int,
    hidden: int,
    rtol: float,
    atol: float,
    seed: int,
    device: torch.device,
    libraries: tuple[str, ...] = LIBRARIES,
    rounds: int = 15,
    reps: int = 20,
) -> tuple[list[SolveResult], FieldCost]:
    """Time one solve per library and mode, alternating libraries round by round."""
    data = three_spheres(n=batch, seed=seed)
    x = torch.as_tensor(data.x, device=device)
    aug = augment_dim if kind == "anode" else 0
    blocks, counters = {}, {}
    torch_libraries = tuple(lib for lib in libraries if lib != "diffrax")
    for gradient in ("backprop", "adjoint"):
        solver = SolverSpec(solver="dp5", rtol=rtol, atol=atol, gradient=gradient)
        for c in contenders(kind, aug, hidden, x.shape[1], 3, solver, seed, torch_libraries):
            model = c.model.to(device)
            inner = getattr(model, "inner", model)  # pyanode's counting wrapper
            blocks[c.library, gradient] = inner.block
            counters[c.library, gradient] = c.counter
            z0 = inner.input_map(x)
    weight = torch.randn(z0.shape, generator=torch.Generator().manual_seed(seed)).to(device)
    sync = device_sync(device)

    def forward(block):
        def call():
            with torch.no_grad():
                block(z0)
            sync()

        return call

    def forward_backward(block, counter):
        z = z0.detach().requires_grad_()

        def call():
            loss = (block(z) * weight).sum()
            counter.in_backward = True  # the peers' counters tell backward evaluations apart
            loss.backward()
            counter.in_backward = False
            sync()

        return call

    fns = {}
    for library in torch_libraries:
        fns[library, "forward"] = forward(blocks[library, "backprop"])
        for gradient in ("backprop", "adjoint"):
            key = (library, gradient)
            fns[key] = forward_backward(blocks[key], counters[key])
    solver = SolverSpec(solver="dp5", rtol=rtol, atol=atol)
    reference = contenders(kind, aug, hidden, x.shape[1], 3, solver, seed, ("pyanode",))[0]
    net = reference.model.inner.block.field.net.to(device)
    jax_calls = None
    if "diffrax" in libraries:  # compiled (and its evaluations counted) before the timing
        from benchmarks.diffrax_peer import solve_calls

        jax_calls = solve_calls(net, z0, weight, rtol=rtol, atol=atol)
        fns.update({("diffrax", mode): call for mode, call in jax_calls.calls.items()})
    gc.collect()
    gc.freeze()  # see training.compare
    samples = alternate(fns, rounds=rounds, reps=reps)
    results = []
    for (library, mode), times in samples.items():
        if library == "diffrax":
            results.append(SolveResult(library, mode, times, jax_calls.nfe[mode],
                                       jax_calls.compile_s[mode]))  # fmt: skip
            continue
        gradient = "adjoint" if mode == "adjoint" else "backprop"
        nfe = _count(fns[library, mode], counters[library, gradient], blocks[library, gradient])
        results.append(SolveResult(library, mode, times, nfe))
    return results, _field_cost(net, z0, rounds, reps * 10, sync)


def _count(call, counter, block) -> tuple[int, int]:
    """Forward and backward NFE of one call (VJPs counted through tensor hooks)."""
    counter.reset()
    counter.enabled = True
    try:
        call()
    finally:
        counter.enabled = False
    stats = getattr(block, "last_stats", None)
    if stats is not None:  # pyanode: its own statistics
        return stats.nfe_forward, stats.nfe_backward
    return counter.forward, counter.backward


def _field_cost(net: nn.Sequential, z0, rounds, reps, sync) -> FieldCost:
    """The bare MLP (the pyanode field's `net`, [z, t] input) forward, and forward + VJP."""
    inputs = torch.cat([z0, torch.full_like(z0[:, :1], 0.5)], dim=1)
    g = torch.ones(z0.shape, device=z0.device)
    leaf = inputs.detach().requires_grad_()

    def forward():
        with torch.no_grad():
            net(inputs)
        sync()

    def forward_vjp():
        torch.autograd.grad(net(leaf), (leaf, *net.parameters()), g)
        sync()

    samples = alternate({"f": forward, "vjp": forward_vjp}, rounds=rounds, reps=reps)
    return FieldCost(samples["f"], samples["vjp"])
