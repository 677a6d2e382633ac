"""Where pyanode's training batch spends its time: one batch (forward, loss, backward, Adam) of
`benchmarks.training` under cProfile, its self time grouped by where the code lives.

The batch is the benchmark's own: the model, data, batches and optimiser come from
`benchmarks.training` (`datasets`, `_Run`) and `benchmarks.peers.contenders`, and the batches
run through `_Run.epoch`. After `--warmup` epochs (the compiled kernels' first calls), `--epochs`
epochs are timed without the profiler (the median epoch over its batches is the batch time) and
then `--epochs` more run under cProfile, both from the same weights and Adam state (training
changes the NFE). Every configuration runs again with `Adam(fused=True)` right after.

Each profiled function's self time (`tottime`) goes to the category of its file (`CATEGORIES`);
a function outside them (a builtin such as a torch op, the standard library, numpy) is charged to
its callers' categories in proportion to the self time of each call edge, so the categories sum
to the profile's total. The per-batch milliseconds are each category's share of that total times
the unprofiled batch time: cProfile adds a fixed cost per Python call, so the shares of the
Python-heavy categories are upper bounds and the compiled kernels' a lower bound.

    python -m benchmarks.profile --json results/benchmarks/profile.json
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import gc
import json
import os
import pstats
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from benchmarks._timing import LoadMeter
from benchmarks.peers import contenders
from benchmarks.training import Result, _Run, datasets
from pyanode import SolverSpec
from pyanode.torch import batch_order

# (name, path fragments of the files whose functions it holds); the first match wins
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("compiled kernels (numba)", ("pyanode/torch/_compiled_kernels.py", "/numba/")),
    ("compiled path's wrapper (tensors to arrays, buffers)", ("pyanode/torch/_compiled.py",)),
    ("step loop + controller", ("pyanode/solvers/_loop.py", "pyanode/solvers/_controller.py",
                                "pyanode/solvers/_step.py")),
    ("solve entry, validation, autograd Function",
     ("pyanode/solvers/", "pyanode/_validate.py", "pyanode/_names.py", "pyanode/_errors.py",
      "pyanode/specs", "torch/autograd/function.py")),
    ("torch autograd engine", ("torch/autograd/", "torch/_tensor.py")),
    ("optimiser (torch.optim Adam)", ("torch/optim/",)),
    ("model and loss (pyanode modules, torch.nn)",
     ("pyanode/torch/", "benchmarks/peers.py", "torch/nn/")),
    ("benchmark loop", ("benchmarks/",)),
)  # fmt: skip
OTHER = "other"
NAMES = (*(name for name, _ in CATEGORIES), OTHER)
CONFIGS = (("node", "backprop"), ("node", "adjoint"), ("anode", "backprop"), ("anode", "adjoint"))

Key = tuple[str, int, str]  # pstats' (file, line, function)


def _own_category(key: Key) -> str | None:
    path = key[0].replace(os.sep, "/")
    for name, fragments in CATEGORIES:
        if any(fragment in path for fragment in fragments):
            return name
    return None


def group(stats: pstats.Stats) -> dict[str, float]:
    """Seconds of self time per category (`NAMES`) of a profile; they sum to its total.

    A function in none of `CATEGORIES` takes its callers' categories, split by the self time
    it spent under each caller (a function without callers: `other`).
    """
    table = stats.stats  # type: ignore[attr-defined]
    shares: dict[Key, dict[str, float]] = {}

    def share(key: Key, seen: frozenset[Key]) -> dict[str, float]:
        """The fraction of `key`'s self time in each category."""
        if key in shares:
            return shares[key]
        own = _own_category(key)
        if own is not None:
            out = {own: 1.0}
        else:
            callers = {c: edge[2] for c, edge in table[key][4].items() if c not in seen}
            weight = sum(callers.values())
            out = {}
            if not callers:
                out = {OTHER: 1.0}
            for caller, tt in callers.items():
                w = tt / weight if weight > 0 else 1.0 / len(callers)
                for name, f in share(caller, seen | {key}).items():
                    out[name] = out.get(name, 0.0) + w * f
        if not seen:  # only memoise results that no cycle cut short
            shares[key] = out
        return out

    seconds = dict.fromkeys(NAMES, 0.0)
    for key, (_, _, tt, _, _) in table.items():
        for name, f in share(key, frozenset()).items():
            seconds[name] += tt * f
    return seconds


def profile_config(
    kind: str,
    gradient: str,
    *,
    points: int = 1024,
    batch_size: int = 96,
    hidden: int = 32,
    augment_dim: int = 5,
    rtol: float = 1e-3,
    atol: float = 1e-3,
    lr: float = 1e-3,
    seed: int = 0,
    warmup: int = 2,
    epochs: int = 50,
    fused_adam: bool = False,
) -> dict:
    """Time then profile pyanode's training batches on three spheres for one configuration;
    both phases start from the same weights and Adam state (training changes the NFE)."""
    train, _ = datasets("three-spheres", points, seed)
    solver = SolverSpec(solver="dp5", rtol=rtol, atol=atol, gradient=gradient)
    aug = augment_dim if kind == "anode" else 0
    classes = int(train.y.max()) + 1
    (contender,) = contenders(kind, aug, hidden, train.x.shape[1], classes, solver, seed,
                              ("pyanode",))  # fmt: skip
    run = _Run(contender, lr, fused_adam, torch.device("cpu"))
    x, y = torch.as_tensor(train.x), torch.as_tensor(train.y)
    order = torch.as_tensor(batch_order(seed, 0, len(x)))
    batches = [(x[order[i : i + batch_size]], y[order[i : i + batch_size]])
               for i in range(0, len(x), batch_size)]  # fmt: skip

    def sync() -> None:
        pass

    gc.collect()
    gc.freeze()
    for _ in range(warmup):
        run.epoch(batches, sync, count=False)
    start = copy.deepcopy((run.model.state_dict(), run.opt.state_dict()))

    def restart() -> None:  # in both phases: loading a state's one-time costs hit neither
        run.model.load_state_dict(start[0])
        # a copy: Adam keeps the loaded state's tensors and updates them in place
        run.opt.load_state_dict(copy.deepcopy(start[1]))

    restart()
    run.epoch(batches, sync, count=False)
    restart()
    result = run.result = Result("pyanode")
    for _ in range(epochs):
        run.epoch(batches, sync, count=False)
    walls, nfe = result.epochs.wall, statistics.mean(result.nfe_timed)
    restart()
    result.nfe_timed.clear()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(epochs):
        run.epoch(batches, sync, count=False)
    profiler.disable()
    stats = pstats.Stats(profiler)
    seconds = group(stats)
    n = epochs * len(batches)
    q = statistics.quantiles(walls, n=4)
    return {
        "batches_per_epoch": len(batches),
        "ms_per_batch": statistics.median(walls) / len(batches) * 1e3,
        "spread": (q[2] - q[0]) / statistics.median(walls),
        "cpu_ms_per_batch": statistics.median(result.epochs.cpu) / len(batches) * 1e3,
        "nfe_forward": nfe,  # per batch, mean of the timed epochs
        "profiled_nfe_forward": statistics.mean(result.nfe_timed),
        "profiled_batches": n,
        "profiled_ms_per_batch": stats.total_tt / n * 1e3,  # type: ignore[attr-defined]
        "self_seconds": seconds,
        "total_self_seconds": stats.total_tt,  # type: ignore[attr-defined]
    }


def main(argv: Sequence[str] | None = None, log: Callable[[str], None] = print) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=50, help="timed and profiled epochs each")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--points", type=int, default=1024)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    load = LoadMeter()
    out = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "settings": "three spheres, batch 96, width 32, dopri5 rtol = atol = 1e-3, Adam 1e-3 "
                    "(not fused, as benchmarks.run by default; fused_adam: the same with "
                    "Adam(fused=True)), one torch thread",
        "compiled": os.environ.get("PYANODE_COMPILED", "1") != "0",
        "categories": [{"name": name, "files": list(files)} for name, files in CATEGORIES],
        "configs": {},
        "fused_adam": {},
    }  # fmt: skip
    for kind, gradient in CONFIGS:
        name = f"{kind}/{gradient}"
        for fused, into in ((False, out["configs"]), (True, out["fused_adam"])):
            # fused: what benchmarks.run --fused-adam would give, right after the default
            result = into[name] = profile_config(
                kind, gradient, points=args.points, warmup=args.warmup, epochs=args.epochs,
                fused_adam=fused)  # fmt: skip
            per = result["ms_per_batch"] / result["total_self_seconds"]
            parts = ", ".join(f"{c} {s * per:.3f}" for c, s in result["self_seconds"].items())
            log(f"{name}{', Adam(fused=True)' if fused else ''}: {result['ms_per_batch']:.3f} ms "
                f"per batch ({result['profiled_ms_per_batch']:.3f} profiled): {parts}")  # fmt: skip
    out["load"] = load.summary()
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return out


if __name__ == "__main__":
    main()
