"""`pyanode.odeint` against `torchdiffeq.odeint` on the same call: a torchdiffeq user's code run
by both, unchanged.

The field is what a torchdiffeq user writes, an `nn.Module` with `forward(t, y)` (the MLP
`[y, t] -> Linear(d+1, h) -> tanh -> Linear(h, h) -> tanh -> Linear(h, d)`), the same weights
and the same batch for both; `t` has ten output times on [0, 1]; dopri5 at the given rtol/atol.
Three modes: `odeint` under `no_grad` ("forward"), `odeint` then backward of `sum(ys * w)`
("backprop"), `odeint_adjoint` then backward ("adjoint", the default full norm of both).
pyanode runs this field through autograd (it is not one of its fused fields), so the row
measures the solver machinery, not a hand-written kernel. NFE: the field's calls (for the
adjoints those of the forward and the backward solve; backprop's VJPs are not calls).
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

import torch
from torch import nn

from benchmarks._timing import Samples, alternate, device_sync
from pyanode.data import three_spheres

MODES = ("forward", "backprop", "adjoint")
LIBRARIES = ("pyanode", "torchdiffeq")


class CountedField(nn.Module):
    """A torchdiffeq-style field `f(t, y)` that counts its calls."""

    def __init__(self, dim: int, hidden: int, seed: int):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.net = nn.Sequential(
            nn.Linear(dim + 1, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
            nn.Linear(hidden, dim),
        )  # fmt: skip
        with torch.no_grad():
            for p in self.net.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[-1] ** 0.5)
        self.calls = 0

    def forward(self, t, y):
        self.calls += 1
        return self.net(torch.cat([y, t.expand(y.shape[0], 1)], dim=1))


@dataclass
class OdeintResult:
    """One library's times (seconds per call) and field calls of one mode."""

    library: str
    mode: str
    times: Samples
    nfe: int


def run(
    *,
    batch: int,
    hidden: int,
    rtol: float,
    atol: float,
    seed: int,
    device: torch.device,
    rounds: int = 15,
    reps: int = 10,
) -> list[OdeintResult]:
    """Time every library and mode on the same field, batch and output times."""
    import torchdiffeq

    import pyanode

    solvers = {
        "pyanode": (pyanode.odeint, pyanode.odeint_adjoint),
        "torchdiffeq": (torchdiffeq.odeint, torchdiffeq.odeint_adjoint),
    }
    data = three_spheres(n=batch, seed=seed)
    y0 = torch.as_tensor(data.x, device=device)
    t = torch.linspace(0.0, 1.0, 10, device=device)
    weight = torch.randn((len(t), *y0.shape), generator=torch.Generator().manual_seed(seed))
    weight = weight.to(device)
    sync = device_sync(device)
    fields, fns = {}, {}
    for library, (odeint, odeint_adjoint) in solvers.items():
        field = fields[library] = CountedField(y0.shape[1], hidden, seed).to(device)

        def forward(odeint=odeint, field=field):
            with torch.no_grad():
                odeint(field, y0, t, rtol=rtol, atol=atol, method="dopri5")
            sync()

        def backward(solve, field=field):
            def call():
                z0 = y0.detach().requires_grad_()
                (
                    solve(field, z0, t, rtol=rtol, atol=atol, method="dopri5") * weight
                ).sum().backward()
                sync()

            return call

        fns[library, "forward"] = forward
        fns[library, "backprop"] = backward(odeint)
        fns[library, "adjoint"] = backward(odeint_adjoint)
    gc.collect()
    samples = alternate(fns, rounds=rounds, reps=reps)
    results = []
    for (library, mode), times in samples.items():
        field = fields[library]
        field.calls = 0
        fns[library, mode]()
        results.append(OdeintResult(library, mode, times, field.calls))
    return results


def table(results: list[OdeintResult]) -> str:
    """The markdown rows: per mode, each library's median times, NFE and pyanode / library."""
    mine = {r.mode: r for r in results if r.library == "pyanode"}
    lines = [
        "| mode | library | ms (wall) | ms (CPU) | noise | NFE | pyanode / library (wall) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in sorted(results, key=lambda r: (MODES.index(r.mode), LIBRARIES.index(r.library))):
        ratio = mine[r.mode].times.median / r.times.median
        lines.append(
            f"| odeint {r.mode} | {r.library} | {r.times.median * 1e3:.2f} | "
            f"{r.times.median_cpu * 1e3:.2f} | {r.times.spread:.2f} | {r.nfe} | "
            f"{ratio:.3f} ({1 / ratio:.1f}x) |"
        )
    return "\n".join(lines)
