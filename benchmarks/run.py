"""pyanode against torchdiffeq, torchdyn and diffrax: one command, identical data, weights and
tolerances.

    .venv/bin/python -m benchmarks.run            # everything (about 10 minutes on one core)
    .venv/bin/python -m benchmarks.run --quick    # a smoke run
    .venv/bin/python -m benchmarks.run --device cuda

Prints the single-solve microbenchmark, the arithmetic floor of one forward solve (`floor.py`),
the training table (NODE and ANODE x backprop and adjoint x three spheres and concentric spheres)
with the ratios pyanode / peer, and the issues' targets. The libraries take turns (rotating
order) inside this one process; times are medians over rounds or epochs, as wall clock and as
this thread's CPU time (the steadier of the two on a shared machine, but blind to XLA's thread:
compare diffrax on wall time); "noise" is the interquartile range over the median of the wall
times. diffrax's compilation is timed apart, before the timed calls and epochs.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
from dataclasses import asdict
from statistics import median as statistics_median

import torch

from benchmarks import floor, odeint, single_solve, training
from benchmarks._timing import LoadMeter
from benchmarks.peers import LIBRARIES as TORCH_LIBRARIES

LIBRARIES = (*TORCH_LIBRARIES, "diffrax")

DATASETS = ("three-spheres", "concentric-spheres")
CONFIGS = tuple(
    training.Config(dataset, kind, gradient)
    for dataset in DATASETS
    for kind in ("node", "anode")
    for gradient in ("backprop", "adjoint")
)


def _require_peers() -> None:
    """Exit with one line naming a peer library that cannot be imported, and the extra."""
    for name in ("torchdiffeq", "torchdyn"):
        try:
            importlib.import_module(name)
        except ImportError as err:
            sys.exit(
                f"benchmarks: cannot import {name} ({err}); install the bench extra: "
                "pip install -e '.[bench]' && pip install --no-deps torchdyn==1.0.6 "
                "(see benchmarks/README.md)"
            )


def _diffrax_missing() -> str | None:
    """Why the diffrax column cannot run here (None when it can)."""
    for name in ("jax", "diffrax", "equinox", "optax"):
        try:
            importlib.import_module(name)
        except ImportError as err:
            return (f"cannot import {name} ({err}); install the bench extra: "
                    "pip install -e '.[bench]' (see benchmarks/README.md)")  # fmt: skip
    return None


def available(libraries: tuple[str, ...]) -> tuple[str, ...]:
    """The `libraries` that can run here: exits naming a torch peer that cannot be imported;
    leaves diffrax out, saying why, when jax (or diffrax, equinox, optax) cannot."""
    _require_peers()
    if "diffrax" in libraries and (reason := _diffrax_missing()):
        print(f"benchmarks: the diffrax column is skipped: {reason}")
        return tuple(lib for lib in libraries if lib != "diffrax")
    return libraries


def finish(data: dict, load: LoadMeter, path: str | None) -> None:
    """Print the machine's load during the run, and write `data` (with it) to `path`."""
    data["load"] = load.summary()
    print(f"\nMachine during the run: {data['load']}")
    if path:
        with open(path, "w") as f:
            json.dump(data, f, indent=1, default=str)


def _versions(libraries) -> str:
    import torchdiffeq
    import torchdyn

    import pyanode

    jax = ""
    if "diffrax" in libraries:
        from benchmarks.diffrax_peer import versions

        jax = versions() + ", "
    return (
        f"pyanode {pyanode.__version__}, torchdiffeq {torchdiffeq.__version__}, torchdyn "
        f"{getattr(torchdyn, '__version__', '1.0.6')}, {jax}torch {torch.__version__}, Python "
        f"{platform.python_version()}, {platform.processor() or platform.machine()}"
    )


def _ratio(mine: float, theirs: float) -> str:
    return f"{mine / theirs:.3f} ({theirs / mine:.1f}x)"


def single_solve_tables(args, device) -> tuple[str, dict]:
    lines, data = [], {}
    for kind in ("node", "anode"):
        results, cost = single_solve.run(
            kind=kind, augment_dim=args.augment_dim, batch=args.batch_size, hidden=args.hidden,
            rtol=args.rtol, atol=args.atol, seed=args.seed, device=device,
            libraries=args.libraries, rounds=args.rounds, reps=args.reps,
        )  # fmt: skip
        dim = 2 + (args.augment_dim if kind == "anode" else 0)
        mlp, vjp = cost.forward.median, cost.forward_vjp.median
        lines += [
            f"\n{kind.upper()} (state dim {dim}, batch {args.batch_size}, width {args.hidden}): "
            f"bare MLP forward {mlp * 1e3:.3f} ms, forward + VJP {vjp * 1e3:.3f} ms "
            f"(noise {cost.forward.spread:.2f}, {cost.forward_vjp.spread:.2f})\n",
            "| mode | library | ms (wall) | ms (CPU) | noise | NFE f/b | solve / (NFE x MLP) "
            "| pyanode / library |",
            "|---|---|---|---|---|---|---|---|",
        ]
        mine = {r.mode: r for r in results if r.library == "pyanode"}
        for r in sorted(results, key=lambda r: (single_solve.MODES.index(r.mode), r.library)):
            nfe = r.nfe[0] + (r.nfe[1] if r.mode != "forward" else 0)
            floor = r.times.median / (nfe * mlp)
            versus = _ratio(mine[r.mode].times.median, r.times.median) if r.mode in mine else "-"
            compiled = "" if r.compile_s is None else f" (compile {r.compile_s:.2f} s)"
            lines.append(
                f"| {r.mode} | {r.library}{compiled} | {r.times.median * 1e3:.3f} | "
                f"{r.times.median_cpu * 1e3:.3f} | {r.times.spread:.2f} | {r.nfe[0]}/{r.nfe[1]} | "
                f"{floor:.2f} | {versus} |"
            )
        data[kind] = {
            "mlp_forward_s": mlp,
            "mlp_forward_vjp_s": vjp,
            "results": [
                {"library": r.library, "mode": r.mode, "nfe": r.nfe, "compile_s": r.compile_s,
                 **asdict(r.times)}
                for r in results
            ],
        }  # fmt: skip
    return "\n".join(lines), data


def training_tables(args, device) -> tuple[str, dict]:
    lines = [
        "| configuration | library | s/epoch (wall) | s/epoch (CPU) | noise | ms/solve | "
        "NFE f/b epoch 0 | NFE f timed | NFE f/b last | train acc | test acc | peak MiB | "
        "pyanode / library (wall) | (CPU) |",
        "|" + "---|" * 14,
    ]
    data = {}
    for config in args.configs:
        results = training.compare(
            config, epochs=args.epochs, points=args.points, batch_size=args.batch_size,
            hidden=args.hidden, augment_dim=args.augment_dim, rtol=args.rtol, atol=args.atol,
            lr=args.lr, fused_adam=args.fused_adam, seed=args.seed, device=device,
            libraries=args.libraries, memory=args.memory,
        )  # fmt: skip
        mine = next((r for r in results if r.library == "pyanode"), None)
        for r in results:
            timed = sum(r.nfe_timed) / len(r.nfe_timed)
            wall, cpu = r.epochs.median, r.epochs.median_cpu
            peak = "-" if r.peak_mb is None else f"{r.peak_mb:.1f}"
            versus = ("-", "-")
            if mine is not None:
                versus = (_ratio(mine.epochs.median, wall), _ratio(mine.epochs.median_cpu, cpu))
            library = r.library + ("" if r.compile_s is None else f" (compile {r.compile_s:.1f} s)")
            lines.append(
                f"| {config.name} | {library} | {wall:.4f} | {cpu:.4f} | {r.epochs.spread:.2f} "
                f"| {r.solves.median * 1e3:.2f} | {r.nfe_first[0]:.1f}/{r.nfe_first[1]:.1f} | "
                f"{timed:.1f} | {r.nfe_last[0]:.1f}/{r.nfe_last[1]:.1f} | {r.train_acc:.3f} | "
                f"{r.test_acc:.3f} | {peak} | {versus[0]} | {versus[1]} |"
            )
        data[config.name] = [
            {
                "library": r.library,
                "epochs": asdict(r.epochs),
                "solves_median_s": r.solves.median,
                "nfe_first": r.nfe_first,
                "nfe_timed": r.nfe_timed,
                "nfe_last": r.nfe_last,
                "train_acc": r.train_acc,
                "test_acc": r.test_acc,
                "peak_mib": r.peak_mb,
                "compile_s": r.compile_s,
            }
            for r in results
        ]
    return "\n".join(lines), data


def targets(data: dict) -> str:
    """The issue's targets, checked on what was measured (the rows `pyanode report` renders)."""
    from pyanode.experiments.report_tables.benchmarks import bench_target_rows
    from pyanode.experiments.report_tables.common import table

    return table(["target", "measured", "met"], bench_target_rows(data), "lrl")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="timed epochs (after 1 warm-up)")
    parser.add_argument("--points", type=int, default=1024, help="training points")
    parser.add_argument("--batch-size", type=int, default=96)
    parser.add_argument("--hidden", type=int, default=32, help="width of the vector field")
    parser.add_argument("--augment-dim", type=int, default=5, help="zeros appended by ANODE")
    parser.add_argument("--rtol", type=float, default=1e-3)
    parser.add_argument("--atol", type=float, default=1e-3)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument(
        "--fused-adam",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Adam(fused=True) for every torch library, as pyanode's trainer uses it",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--libraries", nargs="+", default=list(LIBRARIES), choices=LIBRARIES)
    parser.add_argument(
        "--configs", nargs="+", default=[c.name for c in CONFIGS],
        choices=[c.name for c in CONFIGS], metavar="KIND/GRADIENT/DATASET",
    )  # fmt: skip
    parser.add_argument("--rounds", type=int, default=15, help="single-solve rounds")
    parser.add_argument("--reps", type=int, default=20, help="single-solve calls per round")
    parser.add_argument("--no-memory", dest="memory", action="store_false")
    parser.add_argument("--no-training", dest="training", action="store_false")
    parser.add_argument("--no-single-solve", dest="single_solve", action="store_false")
    parser.add_argument("--no-odeint", dest="odeint", action="store_false")
    parser.add_argument(
        "--no-floor",
        dest="floor",
        action="store_false",
        help="skip measuring the GEMM rate (the arithmetic floor)",
    )
    parser.add_argument("--quick", action="store_true", help="3 epochs, 2 configs, 5 rounds")
    parser.add_argument("--json", help="also write every measurement to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.rounds, args.reps, args.memory = 3, 5, 10, False
        args.configs = ["node/backprop/three-spheres", "node/adjoint/three-spheres"]
    by_name = {c.name: c for c in CONFIGS}
    args.configs = [by_name[name] for name in args.configs]
    args.libraries = tuple(args.libraries)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    args.libraries = available(args.libraries)
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device is available")
    if args.device == "cuda" and "diffrax" in args.libraries:
        print("benchmarks: the diffrax column is skipped: the bench extra installs jax for the CPU")
        args.libraries = tuple(lib for lib in args.libraries if lib != "diffrax")
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    load = LoadMeter()
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print(f"# pyanode vs {', '.join(lib for lib in args.libraries if lib != 'pyanode')}\n")
    print(
        f"{_versions(args.libraries)}; device {device}, {args.threads} thread(s), CPU affinity "
        f"{affinity}; "
        f"dp5 rtol={args.rtol:g} atol={args.atol:g}, batch {args.batch_size}, width "
        f"{args.hidden}, {args.points} points, Adam lr {args.lr:g}"
        f"{' (fused)' if args.fused_adam else ''}, seed {args.seed}"
    )
    data: dict = {"args": {k: str(v) for k, v in vars(args).items()}}
    if args.single_solve:
        text, data["single_solve"] = single_solve_tables(args, device)
        print("\n## One solve of the ODE block\n" + text)
    if args.floor:
        data["floor"] = floor.measure(args.batch_size, args.hidden, (2, 2 + args.augment_dim))
        forward = {}
        for kind, dim in (("node", 2), ("anode", 2 + args.augment_dim)):
            for r in data.get("single_solve", {}).get(kind, {}).get("results", []):
                if r["library"] == "pyanode" and r["mode"] == "forward":
                    forward[dim] = (r["nfe"][0], statistics_median(r["wall"]))
        peak = data["floor"]["peak"]["macs_per_s"]
        print(
            f"\n## The arithmetic floor of one forward solve (torch.mm, one thread; peak "
            f"{peak / 1e9:.1f} GMAC/s)\n\n" + floor.table(data["floor"], forward)
        )
    if args.odeint:
        rows = odeint.run(batch=args.batch_size, hidden=args.hidden, rtol=args.rtol,
                          atol=args.atol, seed=args.seed, device=device, rounds=args.rounds,
                          reps=args.reps)  # fmt: skip
        print("\n## odeint: one torchdiffeq call, run by each library\n\n" + odeint.table(rows))
        data["odeint"] = [{"library": r.library, "mode": r.mode, "nfe": r.nfe, **asdict(r.times)}
                          for r in rows]  # fmt: skip
    if args.training:
        text, data["training"] = training_tables(args, device)
        print(
            f"\n## Training ({args.epochs} timed epochs after one warm-up, "
            f"{-(-args.points // args.batch_size)} batches each)\n\n{text}"
        )
    print("\n## Targets of the issue\n\n" + targets(data))
    finish(data, load, args.json)


if __name__ == "__main__":
    main()
