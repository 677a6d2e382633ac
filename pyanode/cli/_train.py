"""`pyanode train`: one model on one dataset, stored under --out."""

from __future__ import annotations

import argparse
from pathlib import Path

from pyanode.specs import (
    ACTIVATIONS,
    GRADIENT_NAMES,
    MODEL_KINDS,
    SOLVER_NAMES,
    RunSpec,
)

# CLI option -> (spec section, field)
FIELDS = {
    "model": ("model", "kind"),
    "hidden": ("model", "hidden"),
    "augment_dim": ("model", "augment_dim"),
    "activation": ("model", "activation"),
    "degree": ("model", "degree"),
    "n_pieces": ("model", "n_pieces"),
    "depth": ("model", "depth"),
    "solver": ("solver", "solver"),
    "rtol": ("solver", "rtol"),
    "atol": ("solver", "atol"),
    "gradient": ("solver", "gradient"),
    "dt": ("solver", "dt"),
    "max_steps": ("solver", "max_steps"),
    "epochs": ("train", "epochs"),
    "batch_size": ("train", "batch_size"),
    "lr": ("train", "lr"),
    "weight_decay": ("train", "weight_decay"),
    "seed": ("train", "seed"),
    "device": ("train", "device"),
    "threads": ("train", "threads"),
}


def add_spec_options(parser: argparse.ArgumentParser) -> None:
    """Options for every RunSpec field; unset ones keep the spec file's or the default value."""
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", help="dataset name (default: three-spheres)")
    data.add_argument("--test-fraction", type=float, help="held-out fraction (default: 0.2)")
    data.add_argument("--backend", choices=("torch", "julia", "auto"), help="default: torch")
    model = parser.add_argument_group("model")
    model.add_argument("--model", choices=MODEL_KINDS, help="model kind (default: node)")
    model.add_argument("--hidden", type=int, help="hidden width of the vector field")
    model.add_argument("--augment-dim", type=int, help="zeros appended (anode) / extra latents")
    model.add_argument("--activation", choices=ACTIVATIONS)
    model.add_argument("--degree", type=int, help="basis size of chebyshev/fourier")
    model.add_argument("--n-pieces", type=int, help="pieces of a stacked NODE")
    model.add_argument("--depth", type=int, help="residual blocks of a resnet")
    solver = parser.add_argument_group("solver")
    solver.add_argument("--solver", choices=SOLVER_NAMES, help="default: dp5")
    solver.add_argument("--rtol", type=float)
    solver.add_argument("--atol", type=float)
    solver.add_argument("--gradient", choices=GRADIENT_NAMES, help="default: backprop")
    solver.add_argument("--dt", type=float, help="fixed step (euler, midpoint, rk4)")
    solver.add_argument("--max-steps", type=int, help="step budget of one solve")
    train = parser.add_argument_group("training")
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--lr", type=float)
    train.add_argument("--weight-decay", type=float)
    train.add_argument("--seed", type=int)
    train.add_argument("--device", choices=("cpu", "cuda"))
    train.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")


def spec_from_args(args: argparse.Namespace, base: RunSpec | None = None) -> RunSpec:
    """`base` (or the defaults) overridden by every option given on the command line."""
    data = (base or RunSpec()).to_dict()
    for option, (section, name) in FIELDS.items():
        value = getattr(args, option, None)
        if value is not None:
            data[section][name] = value
    for name in ("dataset", "test_fraction", "backend"):
        if getattr(args, name, None) is not None:
            data[name] = getattr(args, name)
    return RunSpec.from_dict(data)


def add_parser(sub, name: str) -> None:
    parser = sub.add_parser(
        name,
        help="train one model on one dataset",
        description="Train one model on one dataset and store its spec (spec.toml), per-epoch "
        "history (history.jsonl) and final metrics (result.json) under --out.",
        epilog="example: pyanode train --dataset three-spheres --model anode --augment-dim 5 "
        "--solver dp5 --gradient backprop --epochs 5 --out results/anode",
    )
    parser.add_argument("--config", type=Path, help="a RunSpec TOML file; options override it")
    parser.add_argument("--out", type=Path, help="folder for the results (default: print only)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_spec_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pyanode.experiments import run as run_spec

    base = RunSpec.from_toml(args.config.read_text()) if args.config else None
    spec = spec_from_args(args, base)
    result = run_spec(spec, args.out, progress=False if args.no_progress else None)
    for row in result.fitted.history:
        print(_format_row(row))
    m = result.metrics
    print(
        f"{spec.model.kind}: {m['n_parameters']} parameters, "
        f"{m['seconds_per_epoch']:.3f} s/epoch"
        + (f", test accuracy {m['test_acc']:.4f}" if "test_acc" in m else "")
        + (f"; stored in {args.out}" if args.out else "")
    )
    return 0


def _format_row(row: dict) -> str:
    keys = ("loss", "train_acc", "test_acc", "nfe_forward", "nfe_backward", "seconds")
    parts = [f"{k}={row[k]:.4g}" for k in keys if k in row]
    return f"epoch {row['epoch']}: " + " ".join(parts)
