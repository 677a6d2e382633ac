"""Peak memory of one forward + backward pass, and how it grows with the number of steps.

`python -m benchmarks.memory` runs the study of the issue: a NODE on a batch of 1024, fixed RK4
steps on [0, 1] from 8 to 256, backprop and adjoint in each library. Backprop keeps every
step's stages for the backward pass, so its memory grows with the steps; the adjoint keeps the
final state only and stays flat.

The measure (`peak_mib`): on CPU, the highest total of tensor memory created during the pass and
not yet freed, from the allocation timeline of torch's memory profiler (what
`torch.profiler.profile.export_memory_timeline` plots; a private module of torch 2.x): what the
pass adds on top of the weights and data, independent of the process's allocator; on CUDA,
`torch.cuda.max_memory_allocated` over the pass. pyanode's pool of step buffers is emptied
first, so that the buffers it would reuse are counted as allocations.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch

from benchmarks.peers import LIBRARIES, contenders
from pyanode import SolverSpec
from pyanode.data import three_spheres
from pyanode.experiments.studies import PeakMemory


def peak_mib(step: Callable[[], object], device: torch.device) -> float:
    """MiB of peak memory that one call of `step` allocates on top of what exists before it
    (`PeakMemory`: the allocator's running total, the solver's workspace pool emptied first)."""
    step()  # warm-up: lazily built state (kernels, caches) is not counted
    with PeakMemory(device) as memory:
        step()
    return memory.peak / 2**20


def training_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    """One forward + backward of the cross-entropy of `model` on `(x, y)`."""

    def step() -> None:
        model.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()

    return step


def study(
    steps: list[int], batch: int, hidden: int, device: torch.device, libraries: tuple[str, ...]
) -> list[dict]:
    """Peak MiB per (number of RK4 steps, library, gradient) for a NODE on three spheres."""
    data = three_spheres(n=batch, seed=0)
    x = torch.as_tensor(data.x, device=device)
    y = torch.as_tensor(data.y, device=device)
    rows = []
    for n in steps:
        for gradient in ("backprop", "adjoint"):
            solver = SolverSpec(solver="rk4", dt=1.0 / n, gradient=gradient)
            for c in contenders("node", 0, hidden, 2, 3, solver, 0, libraries):
                peak = peak_mib(training_step(c.model.to(device), x, y), device)
                rows.append({"steps": n, "library": c.library, "gradient": gradient, "mib": peak})
    return rows


def table(rows: list[dict], libraries: tuple[str, ...]) -> str:
    """The study as a markdown table, one row per number of steps."""
    columns = [(lib, g) for lib in libraries for g in ("backprop", "adjoint")]
    header = ["RK4 steps", *(f"{lib} {g}" for lib, g in columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    peaks = {(r["steps"], r["library"], r["gradient"]): r["mib"] for r in rows}
    for n in sorted({r["steps"] for r in rows}):
        cells = [str(n), *(f"{peaks[n, lib, g]:.1f}" for lib, g in columns)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[8, 16, 32, 64, 128, 256])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--libraries", nargs="+", default=list(LIBRARIES), choices=LIBRARIES)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    libraries = tuple(args.libraries)
    device = torch.device(args.device)
    rows = study(args.steps, args.batch, args.hidden, device, libraries)
    print(
        f"Peak memory (MiB) of one forward + backward of a NODE (batch {args.batch}, width "
        f"{args.hidden}, fixed RK4 steps on [0, 1], device {args.device}):\n"
    )
    print(table(rows, libraries))


if __name__ == "__main__":
    main()
