"""The commands that run trials and collect them: `pyanode train` (one model on one dataset, as a
trial stored under --out, resumable), `pyanode sweep CONFIG.toml` (a grid of trials on a local pool
or Dask, into one folder) and `pyanode collect DIR` (the trials under any results folder as one
CSV)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections import Counter
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


def add_train(parser: argparse.ArgumentParser, words: list[str]) -> None:
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
    parser.set_defaults(run=run_train)


def run_train(args: argparse.Namespace) -> int:
    from pyanode.experiments.runner import RunOptions
    from pyanode.experiments.runner import run as run_spec

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


def add_sweep(parser: argparse.ArgumentParser, words: list[str]) -> None:
    from pyanode.experiments.engines import EngineOptions
    from pyanode.experiments.runner import RunOptions

    parser.description = (
        "Expand the [grid] of a sweep config over its [base] spec and train every trial into "
        "OUT/<trial id>/ (spec.toml, history.jsonl, checkpoint.pt, weights.npy, result.json). "
        "Finished trials are skipped and interrupted ones resume, so re-running the same "
        "command completes a sweep. A failed trial (solver failure, diverged loss, a worker "
        "that keeps dying) is recorded and the others go on; a damaged trial folder is "
        "reported and left alone; the exit code is 1 if any trial failed or is damaged. See "
        "docs/sweeps.md."
    )
    parser.epilog = (
        "example: pyanode sweep scripts/sweep_example.toml --out results/sweep --workers 2"
    )
    parser.add_argument("config", type=Path, help="sweep config (TOML with [base] and [grid])")
    parser.add_argument("--out", type=output_path, required=True, help="results folder")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list the trials (each once) and their state in OUT, and stop",
    )
    parser.add_argument("--csv", type=output_path,
                        help="collected table (default: OUT/results.csv)")  # fmt: skip
    add_options(parser, EngineOptions, prefix="engine.", title="engine")
    add_options(parser, RunOptions, prefix="options.", title="running")
    parser.set_defaults(run=run_sweep)


def run_sweep(args: argparse.Namespace) -> int:
    from pyanode.experiments import batch, runner, sweep
    from pyanode.experiments.engines import EngineOptions
    from pyanode.experiments.store import check_output

    config = sweep.load_sweep(args.config)
    engine = build(EngineOptions, args, prefix="engine.").build()
    options = build(runner.RunOptions, args, prefix="options.")
    if args.dry_run:
        return _dry_run(config.as_trials(), args.out, engine)
    batch.unique_trials(config.as_trials())  # every trial and its data, the engine, and
    engine.check()  # both outputs, before anything is written
    csv = check_output(args.csv, file=True) if args.csv else None
    check_output(args.out)
    csv = csv or check_output(args.out / "results.csv", file=True)
    try:
        report = sweep.run_sweep(config, args.out, engine=engine, options=options)
    except batch.TrialFailed as err:
        print(f"pyanode sweep: failed: {err}; stored in {args.out / err.trial}", file=sys.stderr)
        _write_csv(args.out, csv)
        return 1
    except KeyboardInterrupt:
        _write_csv(args.out, csv)
        raise
    print(report.summary())
    return max(_write_csv(args.out, csv), 1 if report.failed or report.damaged else 0)


def _dry_run(trials: list, out: Path, engine) -> int:
    """List the trials as the run would: each once (by id), with its state in `out`."""
    from pyanode.experiments.batch import trial_status, unique_trials
    from pyanode.experiments.store import label_of

    unique = unique_trials(trials)
    for i, trial in unique.items():
        state = trial_status(out / i, trial)[0] if (out / i).is_dir() else "pending"
        print(f"{i} {state:<11} {label_of(trial.key)}")
    repeated = len(trials) - len(unique)
    same = f" ({repeated} grid point(s) repeat another's trial: run once)" if repeated else ""
    print(f"{len(unique)} trial(s){same}; {engine.describe()}")
    return 0


def _write_csv(out: Path, csv: Path) -> int:
    """Collect `out` into `csv`; 0, or 1 with one line if the disk refuses it."""
    from pyanode._errors import StoreError
    from pyanode.experiments.store import collect, write_csv

    if not out.is_dir():
        return 0
    try:
        write_csv(collect(out), csv)
    except StoreError as err:
        print(f"pyanode sweep: the table {csv} was not written: {err}", file=sys.stderr)
        return 1
    return 0


def add_collect(parser: argparse.ArgumentParser, words: list[str]) -> None:
    parser.description = (
        "Write one CSV row per trial folder at or below DIR (a sweep, a reproduction, a "
        "trained model, or a folder of them): trial id, label, status (ok, failed, "
        "interrupted, pending, damaged), folder, the spec's fields and the stored result."
    )
    parser.add_argument("dir", type=Path, help="a results folder")
    parser.add_argument("--csv", type=output_path, help="output file (default: DIR/results.csv)")
    parser.set_defaults(run=run_collect)


def run_collect(args: argparse.Namespace) -> int:
    from pyanode.experiments.store import check_output, collect, write_csv

    rows = collect(args.dir)
    csv = check_output(args.csv or args.dir / "results.csv", file=True)
    if not rows:
        print(f"pyanode collect: no trial folder at or below {args.dir}", file=sys.stderr)
        return 1
    path = write_csv(rows, csv)
    counts = Counter(row["status"] for row in rows)
    detail = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    print(f"{len(rows)} trial(s) ({detail}) -> {path}")
    return 0
