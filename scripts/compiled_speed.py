"""Time per training batch (forward + loss + backward + Adam) of MLPField's torch path against
its compiled path (`pyanode/torch/_compiled.py`), in one process, the variants taking turns.

NODE and ANODE (augment_dim 5) x backprop and the backsolve adjoint, three spheres (1024 points,
11 batches of 96), width 32, dp5 rtol = atol = 1e-3, Adam lr 1e-3, one torch thread. Variants:
the torch path with torch's per-parameter Adam loop (before issue 14), the torch path with
fused Adam, the compiled path with fused Adam. Prints the median and interquartile range of
this thread's CPU time (`--wall`: wall clock) over `--reps` repetitions of the 11 batches, the
first two dropped. Pin it to a core on a shared machine:

    taskset -c 1 python scripts/compiled_speed.py [--reps 20] [--wall] [--json OUT]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import torch
from torch import nn

from pyanode import ModelSpec, SolverSpec
from pyanode.data import three_spheres
from pyanode.torch import _compiled, batch_order, build_model


def _torch_path(kernel, like, options) -> bool:
    return False


VARIANTS = {
    "torch path, Adam loop": (_torch_path, False),
    "torch path, fused Adam": (_torch_path, True),
    "compiled, fused Adam": (_compiled.compiled_applies, True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--wall", action="store_true", help="wall clock, not CPU time")
    parser.add_argument("--json", help="write the medians and quartiles here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    clock = time.perf_counter if args.wall else time.thread_time
    data = three_spheres(n=1024, seed=0)
    x, y = torch.as_tensor(data.x, dtype=torch.float32), torch.as_tensor(data.y)
    order = batch_order(0, 0, len(x))
    batches = [(x[order[i : i + 96]], y[order[i : i + 96]]) for i in range(0, 96 * 11, 96)]
    choose = _compiled.compiled_applies
    results = {}
    for kind, augment_dim in (("node", 0), ("anode", 5)):
        for gradient in ("backprop", "adjoint"):
            solver = SolverSpec(solver="dp5", rtol=1e-3, atol=1e-3, gradient=gradient)
            spec = ModelSpec(kind=kind, hidden=32, augment_dim=augment_dim)
            reference = build_model(spec, 2, 3, solver, seed=0)
            runs = {}
            for name, (choice, fused) in VARIANTS.items():
                model = copy.deepcopy(reference)
                adam = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused or None)
                runs[name] = (model, adam, choice, [])
            try:
                for rep in range(args.reps + 2):
                    for model, adam, choice, times in runs.values():
                        _compiled.compiled_applies = choice
                        start = clock()
                        for xb, yb in batches:
                            adam.zero_grad(set_to_none=True)
                            loss = nn.functional.cross_entropy(model(xb), yb)
                            loss.backward()
                            adam.step()
                            loss.item()
                        if rep >= 2:
                            times.append((clock() - start) / len(batches) * 1e3)
            finally:
                _compiled.compiled_applies = choose
            row = {}
            for name, (*_, times) in runs.items():
                q1, _, q3 = statistics.quantiles(times, n=4)
                row[name] = {"ms": statistics.median(times), "q1": q1, "q3": q3}
            results[f"{kind}/{gradient}"] = row
            base = row["torch path, Adam loop"]["ms"]
            cells = [
                f"{name} {r['ms']:.3f} ms [{r['q1']:.3f}, {r['q3']:.3f}] ({base / r['ms']:.2f}x)"
                for name, r in row.items()
            ]
            print(f"{kind}/{gradient}: " + "; ".join(cells), flush=True)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=1)


if __name__ == "__main__":
    main()
