"""`pyanode train`: one model on one dataset, as a trial stored under --out (resumable)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from pyanode._errors import JuliaUnavailable, SpecError
from pyanode.cli._options import add_options, build, given, output_path
from pyanode.specs import ModelSpec, RunSpec, SolverSpec, TrainSpec, read_config

SECTIONS = {"model": ModelSpec, "solver": SolverSpec, "train": TrainSpec}


def add_spec_options(parser: argparse.ArgumentParser) -> None:
    """Options for every RunSpec field; unset ones keep the spec file's or the default value."""
    add_options(parser, RunSpec, prefix="spec.", title="data")
    for name, cls in SECTIONS.items():
        add_options(parser, cls, prefix=f"{name}.", title=name)


def spec_from_args(args: argparse.Namespace, base: RunSpec | None = None) -> RunSpec:
    """`base` (or the defaults) overridden by every option given on the command line; dataset
    and test arguments are added to the base's."""
    data = (base or RunSpec()).to_dict()
    for key, value in given(args, RunSpec, prefix="spec.").items():
        data[key] = {**(data[key] or {}), **value} if isinstance(value, dict) else value
    for name, cls in SECTIONS.items():
        data[name].update(given(args, cls, prefix=f"{name}."))
    return RunSpec.from_dict(data)


def add_arguments(parser: argparse.ArgumentParser, words: list[str]) -> None:
    from pyanode.experiments.runner import RunOptions

    parser.description = (
        "Train one model on one dataset. With --out the run is a trial folder: its spec, "
        "per-epoch history, checkpoint, final weights and result; running the same command "
        "again returns the finished trial, or resumes an interrupted one where it stopped."
    )
    parser.epilog = (
        "example: pyanode train --dataset three-spheres --model anode --augment-dim 5 "
        "--solver dp5 --gradient backprop --epochs 5 --out results/anode"
    )
    parser.add_argument("--config", type=Path, help="a RunSpec TOML file; options override it")
    parser.add_argument("--out", type=output_path,
                        help="trial folder (default: none, print only)")  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_options(parser, RunOptions, prefix="options.", title="running")
    add_spec_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pyanode.experiments.runner import RunOptions
    from pyanode.experiments.runner import run as run_spec  # `run` is this command's name

    base = None
    if args.config:
        text = read_config(args.config)
        try:
            base = RunSpec.from_toml(text)
        except SpecError as err:
            raise SpecError(f"config {str(args.config)!r}: {err}") from None
    spec = spec_from_args(args, base)
    options = build(RunOptions, args, prefix="options.")
    raising = dataclasses.replace(options, on_failure="raise")
    try:
        result = run_spec(
            spec, args.out, options=raising, progress=False if args.no_progress else None
        )
    except JuliaUnavailable:
        raise  # not a failure of the trial: main() prints the fix on one line
    except RuntimeError as err:  # stored as failed before
        print(f"pyanode train: {err}; run with --retry-failed to train it again", file=sys.stderr)
        return 1
    for row in result.fitted.history:
        print(_format_row(row))
    m = result.metrics
    resumed = m.get("resumed_epoch")
    print(
        f"{spec.model.kind}: {m['n_parameters']} parameters, "
        f"{m['seconds_per_epoch']:.3f} s/epoch"
        + (f", test accuracy {m['test_acc']:.4f}" if m.get("test_acc") is not None else "")
        + (f"; resumed at epoch {resumed + 1}" if resumed is not None else "")
        + (f"; trial {m['trial_id']} in {args.out}" if args.out else "")
    )
    return 0


def _format_row(row: dict) -> str:
    keys = ("loss", "train_acc", "test_acc", "nfe_forward", "nfe_backward", "seconds")
    parts = [f"{k}={row[k]:.4g}" for k in keys if row.get(k) is not None]
    return f"epoch {row['epoch']}: " + " ".join(parts)
